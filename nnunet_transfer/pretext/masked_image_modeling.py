"""Masked image modelling for CNNs (SimMIM, Xie et al., CVPR 2022; MAE, He et al., CVPR 2022).

The image is divided into blocks; a random fraction of them is set to zero in the input. Target:
the original image; the loss covers the masked voxels only (``PretextBatch.mask``).

Compared with ``data/data_simmim.py`` (``MaskGenerator``) of github.com/microsoft/SimMIM at commit
d3e29bcac950b83edc34ca33fe4404f38309052c by ``benchmarks/pretext_fidelity.py``: the number of
masked patches (the ratio rounded up: 22 of 36 at 192 px, 30 of 49 at 224 px; it was rounded to
the nearest before), the grid and the uniform choice of patches agree. On purpose: masked voxels
are 0 in the input (a CNN has no mask token to learn), blocks of 8 voxels by default (theirs: 32 px
of a 192 px image; nnU-Net patches are often under 64 voxels a side), a block cut at the border
where the patch is not a multiple of the block size.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from nnunet_transfer.pretext.base import Pretext, PretextBatch, fraction, positive, rand


class MaskedImageModeling(Pretext):
    """Mask ``mask_ratio`` of the ``block_size``-sided blocks (the last block per axis may be cut)."""

    name = "masked_image_modeling"

    def __init__(self, mask_ratio: float = 0.6, block_size: int = 8):
        self.mask_ratio = fraction("mask_ratio", mask_ratio)
        self.block_size = positive("block_size", block_size)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        grid = tuple(math.ceil(s / self.block_size) for s in shape[2:])
        n = math.prod(grid)
        k = min(n, max(1, math.ceil(n * self.mask_ratio)))  # rounded up, as SimMIM's MaskGenerator
        scores = rand(generator, shape[0], n)
        chosen = scores.argsort(dim=1)[:, :k]  # exactly k blocks per sample
        blocks = torch.zeros(shape[0], n, dtype=torch.bool)
        blocks.scatter_(1, chosen, True)
        return {"blocks": blocks.view(shape[0], 1, *grid)}

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        blocks = params["blocks"].float()
        mask = F.interpolate(blocks, scale_factor=self.block_size, mode="nearest")
        mask = mask[(slice(None), slice(None)) + tuple(slice(0, s) for s in x.shape[2:])] > 0.5
        mask = mask.expand_as(x)
        return PretextBatch(input=x.masked_fill(mask, 0.0), target=x, mask=mask)
