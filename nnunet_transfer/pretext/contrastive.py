"""Contrastive learning, SimCLR (Chen et al., ICML 2020).

Two augmented views of every patch (random crop resized back, flips, brightness / contrast /
gamma, Gaussian noise); the pooled bottleneck goes through a projection head and the NT-Xent loss
pulls the two views of a patch together and pushes the other patches of the batch away. Target:
the view pairing (the batch itself); ``PretextBatch.input`` holds both views, ``(2B, C, ...)``,
first all first views, then all second views. Implemented from the paper's description.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.pretext.base import Pretext, PretextBatch, fraction, rand


class SimCLRViews(Pretext):
    """Two views per patch; crops keep at least ``min_crop`` of each side."""

    def __init__(self, min_crop: float = 0.6, noise_std: float = 0.1):
        self.min_crop = fraction("min_crop", min_crop, 0.0, 1.0 + 1e-9)
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or noise_std < 0:
            raise NnunetTransferError(f"noise_std must be a non-negative number, got {noise_std!r}.")
        self.noise_std = float(noise_std)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        n, dims = 2 * shape[0], len(shape) - 2
        scale = self.min_crop + (1 - self.min_crop) * rand(generator, n, dims)
        return {"scale": scale, "offset": rand(generator, n, dims), "flip": rand(generator, n, dims) < 0.5,
                "gain": 0.8 + 0.4 * rand(generator, n), "bias": 0.2 * (rand(generator, n) - 0.5),
                "gamma": 0.7 + 0.6 * rand(generator, n),
                "noise_seed": int(rand(generator, 1) * 2 ** 31)}

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        both = torch.cat([x, x])
        spatial = both.shape[2:]
        views = []
        for i, img in enumerate(both):
            region = []
            for d, size in enumerate(spatial):
                length = max(1, int(round(size * float(params["scale"][i, d]))))
                start = int(float(params["offset"][i, d]) * (size - length))
                region.append(slice(start, start + length))
            crop = img[(slice(None),) + tuple(region)].unsqueeze(0)
            mode = "trilinear" if len(spatial) == 3 else "bilinear"
            view = F.interpolate(crop, size=tuple(spatial), mode=mode, align_corners=False)[0]
            flips = [d + 1 for d in range(len(spatial)) if params["flip"][i, d]]
            views.append(view.flip(flips) if flips else view)
        v = torch.stack(views)
        dims = tuple(range(1, v.ndim))
        low, high = v.amin(dim=dims, keepdim=True), v.amax(dim=dims, keepdim=True)
        unit = ((v - low) / (high - low).clamp_min(1e-8)).clamp(0, 1) ** params["gamma"].view(-1, *([1] * (v.ndim - 1)))
        v = unit * (high - low) + low
        v = v * params["gain"].view(-1, *([1] * (v.ndim - 1))) + params["bias"].view(-1, *([1] * (v.ndim - 1)))
        noise = torch.randn(v.shape, generator=torch.Generator().manual_seed(params["noise_seed"]), dtype=v.dtype)
        v = v + self.noise_std * noise
        return PretextBatch(input=v.to(x.dtype), target=torch.arange(x.shape[0]))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy over the 2B projections ``z1``, ``z2`` (B, D).

    Each projection's positive is the other view of its patch; the other 2B - 2 are negatives.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise NnunetTransferError(f"nt_xent needs two (B, D) tensors of one shape, got {tuple(z1.shape)}, "
                                  f"{tuple(z2.shape)}.")
    if not temperature > 0:
        raise NnunetTransferError(f"temperature must be positive, got {temperature!r}.")
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    positives = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, positives)
