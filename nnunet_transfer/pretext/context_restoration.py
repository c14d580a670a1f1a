"""Context restoration (Chen et al., Medical Image Analysis 58, 2019).

Swap random pairs of small patches, repeatedly; the image keeps its intensity distribution but
loses its spatial context. Target: the original image; loss: reconstruction (mean squared error).
Implemented from the paper's description: its authors published no code (none linked from the
paper, none found on GitHub; PyMIC's ``PatchSwaping`` is a third party's), so there is nothing to
compare it with.
"""
from __future__ import annotations

from typing import Any

import torch

from nnunet_transfer.pretext.base import Pretext, PretextBatch, fraction, positive, rand


class ContextRestoration(Pretext):
    """``swaps`` pairs of patches, each side ``patch_fraction`` of the image side, per sample."""

    name = "context_restoration"

    def __init__(self, swaps: int = 10, patch_fraction: float = 0.125):
        self.swaps = positive("swaps", swaps)
        self.patch_fraction = fraction("patch_fraction", patch_fraction, 0.0, 0.5 + 1e-9)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        b, spatial = shape[0], tuple(shape[2:])
        size = torch.tensor([max(1, int(round(s * self.patch_fraction))) for s in spatial])
        high = torch.tensor(spatial) - size + 1
        starts = torch.empty(b, self.swaps, 2, len(spatial), dtype=torch.long)
        for i in range(b):
            for j in range(self.swaps):
                # the two patches of a pair must not overlap, or the swap would not be a permutation
                for _ in range(20):
                    pair = (rand(generator, 2, len(spatial)) * high).long()
                    if ((pair[0] - pair[1]).abs() >= size).any():
                        break
                else:
                    pair = torch.stack([pair[0], pair[0]])  # no disjoint pair found: a no-op swap
                starts[i, j] = pair
        return {"size": size, "starts": starts}

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        y = x.clone()
        size = params["size"].tolist()
        for i, swaps in enumerate(params["starts"]):
            for a, b in swaps.tolist():
                ra = (i, slice(None)) + tuple(slice(s, s + n) for s, n in zip(a, size))
                rb = (i, slice(None)) + tuple(slice(s, s + n) for s, n in zip(b, size))
                patch_a, patch_b = y[ra].clone(), y[rb].clone()
                y[ra] = patch_b
                y[rb] = patch_a
        return PretextBatch(input=y, target=x)
