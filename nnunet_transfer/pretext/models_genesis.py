"""Models Genesis (Zhou et al., MICCAI 2019; Medical Image Analysis 67, 2021).

Learn to restore the original image from a corrupted one: a non-linear intensity transform (a
monotone Bezier curve), local pixel shuffling, and in-painting or out-painting, each applied with
its probability. Target: the original image; loss: reconstruction (mean squared error).
Implemented from the paper's description.
"""
from __future__ import annotations

from typing import Any

import torch

from nnunet_transfer.pretext.base import (Pretext, PretextBatch, box_slices, fraction, positive, probability, rand,
                                          random_boxes)


def bezier_lookup(control: torch.Tensor, points: int = 257) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample cubic Bezier curves with control points ``control`` (B, 4, 2) at ``points`` values of t.

    Returns (x, y), each (B, points). With control x and y non-decreasing from (0, 0) to (1, 1),
    both are non-decreasing in t, so y(x) is a monotone mapping of [0, 1] onto [0, 1].
    """
    t = torch.linspace(0, 1, points, dtype=control.dtype)
    basis = torch.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], dim=0)  # (4, P)
    curve = torch.einsum("bkd,kp->bpd", control, basis)
    return curve[..., 0].contiguous(), curve[..., 1].contiguous()


TABLE_SIZE = 1025  # uniform samples of y(x) per curve; linear interpolation between them


def curve_table(curve_x: torch.Tensor, curve_y: torch.Tensor, size: int = TABLE_SIZE) -> torch.Tensor:
    """y of the piecewise-linear curves (B, P) at ``size`` evenly spaced x in [0, 1]: (B, size)."""
    grid = torch.linspace(0, 1, size, dtype=curve_x.dtype).expand(curve_x.shape[0], -1).contiguous()
    idx = torch.searchsorted(curve_x, grid).clamp(1, curve_x.shape[1] - 1)
    x0, x1 = curve_x.gather(1, idx - 1), curve_x.gather(1, idx)
    y0, y1 = curve_y.gather(1, idx - 1), curve_y.gather(1, idx)
    w = ((grid - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return y0 + w * (y1 - y0)


def apply_curve(x: torch.Tensor, curve_x: torch.Tensor, curve_y: torch.Tensor) -> torch.Tensor:
    """Map values of ``x`` (B, ...) in [0, 1] through per-sample curves (B, P), in ``x``'s dtype.

    The curve is tabulated at :data:`TABLE_SIZE` evenly spaced x (:func:`curve_table`), so each
    voxel costs an index and one linear interpolation instead of a search; the mapping stays
    monotone and keeps 0 -> y(0), 1 -> y(1)."""
    table = curve_table(curve_x, curve_y).to(x.dtype)
    flat = x.reshape(x.shape[0], -1).clamp(0, 1) * (table.shape[1] - 1)
    i0 = flat.floor().long().clamp(max=table.shape[1] - 2)
    w = flat - i0.to(flat.dtype)
    y0, y1 = table.gather(1, i0), table.gather(1, i0 + 1)
    return (y0 + w * (y1 - y0)).reshape(x.shape)


def local_shuffle(y: torch.Tensor, boxes: torch.Tensor, keys: torch.Tensor, enabled: torch.Tensor) -> torch.Tensor:
    """Shuffle voxels (all channels alike) inside each box (B, K, dims, 2), one box after the
    other as Models Genesis does (a voxel where boxes overlap can move twice); the order inside a
    box is that of the random ``keys`` (B, voxels) of its voxels. Uncovered voxels and disabled
    samples stay. The cost is the boxes' volume, not the image's."""
    out = y.clone()
    spatial = tuple(y.shape[2:])
    for i in torch.nonzero(enabled).flatten().tolist():
        field = keys[i].view(spatial)
        for box in boxes[i]:
            region = box_slices(box)
            block = out[(i, slice(None)) + region]
            order = torch.argsort(field[region].reshape(-1))
            out[(i, slice(None)) + region] = block.reshape(block.shape[0], -1)[:, order].reshape(block.shape)
    return out


class ModelsGenesis(Pretext):
    """Models Genesis corruptions; probabilities default to the paper's (0.9 non-linear, 0.5 local
    shuffle, 0.9 painting of which 80 % out-painting)."""

    def __init__(self, p_nonlinear: float = 0.9, p_decreasing: float = 0.5, p_local_shuffle: float = 0.5,
                 shuffle_blocks: int = 100, shuffle_max_fraction: float = 0.1, p_painting: float = 0.9,
                 p_outpainting: float = 0.8, paint_boxes: int = 5):
        self.p_nonlinear = probability("p_nonlinear", p_nonlinear)
        self.p_decreasing = probability("p_decreasing", p_decreasing)
        self.p_local_shuffle = probability("p_local_shuffle", p_local_shuffle)
        self.shuffle_blocks = positive("shuffle_blocks", shuffle_blocks)
        self.shuffle_max_fraction = fraction("shuffle_max_fraction", shuffle_max_fraction, 0.0, 1.0 + 1e-9)
        self.p_painting = probability("p_painting", p_painting)
        self.p_outpainting = probability("p_outpainting", p_outpainting)
        self.paint_boxes = positive("paint_boxes", paint_boxes)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        b, spatial = shape[0], tuple(shape[2:])
        control = torch.zeros(b, 4, 2)
        control[:, 3] = 1.0
        control[:, 1:3] = rand(generator, b, 2, 2).sort(dim=1).values  # sorted -> monotone curve
        spatial_n = int(torch.tensor(spatial).prod())
        return {
            "nonlinear": rand(generator, b) < self.p_nonlinear, "decreasing": rand(generator, b) < self.p_decreasing,
            "control": control, "shuffle": rand(generator, b) < self.p_local_shuffle,
            "paint": rand(generator, b) < self.p_painting, "outpaint": rand(generator, b) < self.p_outpainting,
            "shuffle_boxes": random_boxes(generator, spatial, b * self.shuffle_blocks, 0.0, self.shuffle_max_fraction)
            .view(b, self.shuffle_blocks, len(spatial), 2),
            "shuffle_keys": rand(generator, b, spatial_n),
            "paint_boxes": random_boxes(generator, spatial, b * self.paint_boxes, 1 / 6, 1 / 3)
            .view(b, self.paint_boxes, len(spatial), 2),
            "noise_seed": int(rand(generator, 1) * 2 ** 31),
        }

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        b = x.shape[0]
        dims = tuple(range(1, x.ndim))
        low = x.amin(dim=dims, keepdim=True)
        span = (x.amax(dim=dims, keepdim=True) - low).clamp_min(1e-8)
        y = (x - low) / span  # [0, 1] per sample: the curves are defined there
        curve_x, curve_y = bezier_lookup(params["control"].to(torch.float64))
        curve_y = torch.where(params["decreasing"][:, None], 1 - curve_y, curve_y)
        bent = torch.nonzero(params["nonlinear"]).flatten()  # only the samples drawn for it
        if len(bent):
            y[bent] = apply_curve(y[bent], curve_x[bent], curve_y[bent])
        y = local_shuffle(y, params["shuffle_boxes"], params["shuffle_keys"], params["shuffle"])
        noise = torch.rand(y.shape, generator=torch.Generator().manual_seed(params["noise_seed"]), dtype=y.dtype)
        for i in range(b):
            if not params["paint"][i]:
                continue
            boxes = params["paint_boxes"][i]
            if params["outpaint"][i]:  # keep the boxes, noise everywhere else
                keep = torch.zeros(y.shape[1:], dtype=torch.bool)
                for box in boxes:
                    keep[(slice(None),) + box_slices(box)] = True
                y[i] = torch.where(keep, y[i], noise[i])
            else:
                for box in boxes:
                    region = (i, slice(None)) + box_slices(box)
                    y[region] = noise[region]
        return PretextBatch(input=y * span + low, target=x)
