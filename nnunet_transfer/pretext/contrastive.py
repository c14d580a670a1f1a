"""Contrastive learning, SimCLR (Chen et al., ICML 2020).

Two augmented views of every patch (random crop resized back, flips, brightness / contrast /
gamma, Gaussian noise); the pooled bottleneck goes through a projection head and the NT-Xent loss
pulls the two views of a patch together and pushes the other patches of the batch away. Target:
the view pairing (the batch itself); ``PretextBatch.input`` holds both views, ``(2B, C, ...)``,
first all first views, then all second views.

Compared with github.com/google-research/simclr at commit 383d4143fd8cf7879ae10f1046a9baeb753ff438
(``data_util.py``, ``run.py``; TensorFlow, not installed here, so by the parameters read from the
code, ``benchmarks/pretext_fidelity.py``): the crop follows theirs (area 0.08-1 of the image but
at least 0.1 covered, aspect ratio 3/4-4/3, 100 attempts, else the whole image; TensorFlow's
``sample_distorted_bounding_box`` rules, extended to 3D), the NT-Xent temperature (0.1) is theirs.
The intensity part differs on purpose: one operation for every channel (MRI has no colour to
jitter), milder gain / bias / gamma and noise instead of their colour distortion and blur, no
clipping to [0, 1] (z-scored input); flips along every axis (no canonical left-right in a patch).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.pretext.base import Pretext, PretextBatch, fraction_range, rand

MIN_COVERED = 0.1  # SimCLR's min_object_covered: a crop keeps at least 10 % of the image
MAX_ATTEMPTS = 100  # SimCLR's max_attempts; the whole image where no attempt fits


def random_crops(generator: torch.Generator, spatial: tuple[int, ...], n: int, area: tuple[float, float],
                 aspect: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` crops (starts, sizes), each (n, dims), drawn as SimCLR's ``crop_and_resize`` does
    through TensorFlow's ``sample_distorted_bounding_box``, with axis 0 as its height: per attempt
    an aspect ratio per further axis (uniform in ``aspect`` times the image's own), the first side
    uniform between those of the smallest and largest allowed volume (``area`` of the image), the
    others rounded from it; the first attempt that fits and keeps ``MIN_COVERED`` is taken, else
    the whole image. Starts uniform in [0, side_image - side) (0 for a full side), as theirs."""
    dims, volume = len(spatial), math.prod(spatial)
    sides_image = torch.tensor(spatial, dtype=torch.float64)
    ratio = aspect[0] + (aspect[1] - aspect[0]) * torch.rand(n, MAX_ATTEMPTS, dims - 1, generator=generator,
                                                              dtype=torch.float64)
    ratio = ratio * sides_image[1:] / sides_image[0]
    lowest = torch.round((area[0] * volume / ratio.prod(-1)) ** (1 / dims))
    highest = torch.round((area[1] * volume / ratio.prod(-1)) ** (1 / dims))
    fits = torch.floor((sides_image[1:] + 0.5 - 1e-7) / ratio).amin(-1)  # round(side * ratio) <= image side
    highest = torch.minimum(torch.minimum(highest, fits), sides_image[0])
    lowest = torch.minimum(lowest, highest)
    first = lowest + torch.floor(torch.rand(n, MAX_ATTEMPTS, generator=generator, dtype=torch.float64)
                                 * (highest - lowest + 1)).clamp(max=highest - lowest)

    def sides(first_side: torch.Tensor) -> torch.Tensor:
        return torch.cat([first_side[..., None], torch.round(first_side[..., None] * ratio)], dim=-1)

    size = sides(first)  # TensorFlow's rounding rescue: one step up when too small, one down when too large
    first = torch.where(size.prod(-1) < area[0] * volume, first + 1, first)
    size = sides(first)
    size = sides(torch.where(size.prod(-1) > area[1] * volume, first - 1, first))
    covered = size.prod(-1)
    ok = ((covered >= area[0] * volume) & (covered <= area[1] * volume) & (covered >= MIN_COVERED * volume)
          & (size >= 1).all(-1) & (size <= sides_image).all(-1))
    chosen = size[torch.arange(n), ok.long().argmax(dim=1)]  # the first attempt that fits
    chosen = torch.where(ok.any(dim=1)[:, None], chosen, sides_image).long()
    starts = (torch.rand(n, dims, generator=generator, dtype=torch.float64) * (sides_image - chosen)).long()
    return starts, chosen


class SimCLRViews(Pretext):
    """Two views per patch: SimCLR's random crop (``crop_area`` of the image, ``crop_aspect``)
    resized back, flips, gain / bias / gamma and Gaussian noise of ``noise_std``."""

    name = "simclr"

    def __init__(self, crop_area: tuple[float, float] = (0.08, 1.0), crop_aspect: tuple[float, float] = (3 / 4, 4 / 3),
                 noise_std: float = 0.1):
        self.crop_area = fraction_range("crop_area", crop_area)
        if self.crop_area[0] <= 0:
            raise NnunetTransferError(f"crop_area must be a pair (low, high) with 0 < low <= high <= 1, "
                                      f"got {crop_area!r}.")
        if (not isinstance(crop_aspect, (tuple, list)) or len(crop_aspect) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in crop_aspect)
                or not 0 < crop_aspect[0] <= crop_aspect[1]):
            raise NnunetTransferError(f"crop_aspect must be a pair (low, high) with 0 < low <= high, "
                                      f"got {crop_aspect!r}.")
        self.crop_aspect = (float(crop_aspect[0]), float(crop_aspect[1]))
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or noise_std < 0:
            raise NnunetTransferError(f"noise_std must be a non-negative number, got {noise_std!r}.")
        self.noise_std = float(noise_std)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        n, dims = 2 * shape[0], len(shape) - 2
        starts, sizes = random_crops(generator, tuple(shape[2:]), n, self.crop_area, self.crop_aspect)
        return {"crop_start": starts, "crop_size": sizes, "flip": rand(generator, n, dims) < 0.5,
                "gain": 0.8 + 0.4 * rand(generator, n), "bias": 0.2 * (rand(generator, n) - 0.5),
                "gamma": 0.7 + 0.6 * rand(generator, n),
                "noise_seed": int(rand(generator, 1) * 2 ** 31)}

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        both = torch.cat([x, x])
        spatial = both.shape[2:]
        views = []
        for i, img in enumerate(both):
            region = tuple(slice(int(a), int(a) + int(b))
                           for a, b in zip(params["crop_start"][i], params["crop_size"][i]))
            crop = img[(slice(None),) + region].unsqueeze(0)
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
