"""Rotation prediction (Gidaris et al., ICLR 2018).

Each image is rotated by 0, 90, 180 or 270 degrees in a plane (the in-plane axes of a 3D patch);
the network classifies the rotation. Rotations by 90 degrees need a square plane: the input is
the central square of the plane's side ``min(H, W)``. Target: class indices 0-3.

Compared with ``rotate_img`` in ``dataloader.py`` of github.com/gidariss/FeatureLearningRotNet at
commit edafaba6561003292017d0a44272414356c959ff by ``benchmarks/pretext_fidelity.py``: label k is
their rotation by 90 k degrees (the same direction), exactly. On purpose: one rotation drawn per
sample (theirs puts all four rotations of an image in the batch; nnU-Net's transform makes one
sample of one, and the labels are uniform all the same), and the central square of a
non-square plane.
"""
from __future__ import annotations

from typing import Any

import torch

from nnunet_transfer.pretext.base import Pretext, PretextBatch, randint


class RotationPrediction(Pretext):
    """Four-way rotation classification in the last two (in-plane) axes."""

    name = "rotation"

    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        return {"k": randint(generator, 0, 4, shape[0])}

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        h, w = x.shape[-2:]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = x[..., top:top + side, left:left + side]
        rotated = torch.stack([torch.rot90(img, int(k), dims=(-2, -1)) for img, k in zip(square, params["k"])])
        return PretextBatch(input=rotated.contiguous(), target=params["k"].clone())
