"""Models Genesis (Zhou et al., MICCAI 2019; Medical Image Analysis 67, 2021).

Learn to restore the original image from a corrupted one: local pixel shuffling, a non-linear
intensity transform (a Bezier curve), and in-painting or out-painting, each applied with its
probability. Target: the original image; loss: reconstruction (mean squared error).

Compared with the authors' ``generate_pair`` (``pytorch/utils.py``, identical to
``keras/utils.py``; probabilities from ``pytorch/config.py``) of github.com/MrGiovanni/ModelsGenesis
at commit 12f7feb67e509d5eb0b1a8f101592efbffa1c8f0 by ``benchmarks/pretext_fidelity.py``, 500 draws
each on the same [0, 1] cubes: all 39 compared properties agree (probabilities; window and box
size distributions; local-shuffle displaced fraction 0.785 as theirs; in-painting box count,
border distance and painted fraction; out-painting kept fraction 0.317 as theirs; the curve,
within 0.0024 of theirs for the same control points; the output histogram); table in
documentation/reference/pretexts.md. Before that comparison 21 differed (100 windows shuffled on
the running result, in-painting boxes reused for out-painting, always 5 boxes touching the
border, sorted control points). On purpose: no flip (nnU-Net's mirroring flips already), any
channel count and 2D, z-scored input mapped to [0, 1] per sample and back, torch generators, sides
too short for the authors' ranges clamped instead of raising. Written from reading that code,
none of it copied.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from nnunet_transfer.pretext.base import (Pretext, PretextBatch, box_slices, fraction, fraction_range, positive,
                                          probability, rand)

CURVE_SAMPLES = 100_000  # t samples of the curve, as the authors' bezier_curve(nTimes=100000)
TABLE_SIZE = 4097  # uniform samples of y(x) per curve; linear interpolation between them


def bezier_lookup(control: torch.Tensor, points: int = CURVE_SAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample cubic Bezier curves with control points ``control`` (B, 4, 2) at ``points`` values of t.

    Returns (x, y), each (B, points), from the first control point (t = 0) to the last. With the
    end points (0, 0) and (1, 1) and inner points in [0, 1]^2, x and y are non-decreasing in t.
    """
    t = torch.linspace(0, 1, points, dtype=control.dtype)
    basis = torch.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], dim=0)  # (4, P)
    curve = torch.einsum("bkd,kp->bpd", control, basis)
    return curve[..., 0].contiguous(), curve[..., 1].contiguous()


def curve_table(curve_x: torch.Tensor, curve_y: torch.Tensor, size: int = TABLE_SIZE) -> torch.Tensor:
    """y of the piecewise-linear curves (B, P) at ``size`` evenly spaced x in [0, 1]: (B, size).

    ``curve_x`` must be sorted; values at each grid point are those of ``np.interp``."""
    grid = torch.linspace(0, 1, size, dtype=curve_x.dtype).expand(curve_x.shape[0], -1).contiguous()
    idx = torch.searchsorted(curve_x, grid, right=True).clamp(1, curve_x.shape[1] - 1)
    x0, x1 = curve_x.gather(1, idx - 1), curve_x.gather(1, idx)
    y0, y1 = curve_y.gather(1, idx - 1), curve_y.gather(1, idx)
    w = ((grid - x0) / (x1 - x0).clamp_min(1e-300)).clamp(0, 1)
    return y0 + w * (y1 - y0)


def apply_curve(x: torch.Tensor, curve_x: torch.Tensor, curve_y: torch.Tensor) -> torch.Tensor:
    """Map values of ``x`` (B, ...) in [0, 1] through per-sample curves (B, P), in ``x``'s dtype.

    The curve is tabulated at :data:`TABLE_SIZE` evenly spaced x (:func:`curve_table`), so each
    voxel costs an index and one linear interpolation instead of a search in 100,000 points."""
    table = curve_table(curve_x, curve_y).to(x.dtype)
    flat = x.reshape(x.shape[0], -1).clamp(0, 1) * (table.shape[1] - 1)
    i0 = flat.floor().long().clamp(max=table.shape[1] - 2)
    w = flat - i0.to(flat.dtype)
    y0, y1 = table.gather(1, i0), table.gather(1, i0 + 1)
    return (y0 + w * (y1 - y0)).reshape(x.shape)


def nonlinear_curves(control: torch.Tensor, decreasing: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' intensity curves: x sorted; y sorted (increasing) or reversed (decreasing).

    Their decreasing branch keeps y in the curve's order while sorting x, i.e. maps v to
    y(1 - t(v)), which is not 1 - y(t(v)) unless the curve is symmetric."""
    curve_x, curve_y = bezier_lookup(control)
    curve_x = curve_x.sort(dim=1).values
    curve_y = torch.where(decreasing[:, None], curve_y.flip(1), curve_y.sort(dim=1).values)
    return curve_x, curve_y


def _sort(values: torch.Tensor) -> torch.Tensor:
    # numpy's int64 sort (x86-simd-sort) is several times faster than torch's on the CPU, where
    # nnU-Net's augmentation workers run this; the result is the same
    if values.device.type == "cpu":
        return torch.from_numpy(np.sort(values.numpy()))
    return torch.sort(values).values


I32 = torch.int32
KEY_BITS = 31  # random sort keys per window voxel; a tie (about 1 in 1,400 windows of 12^3) keeps their order


def window_voxels(boxes: torch.Tensor, strides: list[int], element: torch.Tensor) -> torch.Tensor:
    """Linear image indices (int32) of the voxels of every window (``boxes`` (K, dims, 2)), window
    after window, each in row-major order; ``element``: int32 ``arange`` of their total volume.
    Built axis by axis (windows -> planes -> rows -> voxels) with ``repeat_interleave`` instead of
    dividing every voxel's index by the sides."""
    sizes = (boxes[..., 1] - boxes[..., 0]).to(I32)
    base = (boxes[..., 0] * torch.tensor(strides)).sum(dim=1).to(I32)
    owner = torch.arange(len(sizes), dtype=I32)  # window of each unit (window, then plane, row)
    for d in range(sizes.shape[1] - 1):
        counts = sizes[:, d].index_select(0, owner)
        parent = torch.repeat_interleave(torch.arange(len(owner), dtype=I32), counts)
        step = torch.arange(len(parent), dtype=I32) - (counts.cumsum(0, dtype=I32) - counts).index_select(0, parent)
        base, owner = base.index_select(0, parent) + step * strides[d], owner.index_select(0, parent)
    length = sizes[:, -1].index_select(0, owner)  # a row's voxels are consecutive: base + 0 .. length - 1
    shift = torch.repeat_interleave(base - (length.cumsum(0, dtype=I32) - length), length)
    return shift.add_(element)


def shuffle_windows(image: torch.Tensor, boxes: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Local pixel shuffling of one sample ``image`` (C, *spatial), as the authors do it: every
    window (``boxes`` (K, dims, 2) start / stop) is read from the *original* image, its voxels put
    in a random order (that of the integer ``keys`` (T,) in [0, 2^31), T = the windows' total
    volume, window after window) and written to the output, later windows over earlier ones; all
    channels alike.

    Vectorised (int32 where torch allows, for memory bandwidth): each voxel takes its value from the
    last window covering it, which is what writing all windows one after the other leaves."""
    spatial = tuple(image.shape[1:])
    n = math.prod(spatial)
    volume = (boxes[..., 1] - boxes[..., 0]).prod(dim=1)
    k, total = len(volume), int(volume.sum())
    element = torch.arange(total, dtype=I32)
    window = torch.repeat_interleave(torch.arange(k, dtype=I32), volume.to(I32), output_size=total)
    first = (volume.cumsum(0) - volume).to(I32).index_select(0, window)  # each element's window's first one
    # the random order inside each window: one sort of (window, key, local index) packed in an int64
    vbits, wbits = int(volume.max()).bit_length(), max(1, k.bit_length())
    if vbits + wbits + KEY_BITS <= 62:
        packed = window.long() * 2 ** (KEY_BITS + vbits)
        packed += keys * 2 ** vbits
        packed += element - first
        source = _sort(packed).bitwise_and_((1 << vbits) - 1).to(I32).add_(first)
    else:  # windows too many or too large to pack: two stable sorts (slower, same result)
        order = torch.argsort(keys, stable=True)
        source = order[torch.argsort(window[order], stable=True)].to(I32)
    dest = window_voxels(boxes, [math.prod(spatial[d + 1:]) for d in range(len(spatial))], element)
    # elements are in window order, so a voxel's last element is that of the last window writing it
    last = torch.full((n,), -1, dtype=I32).scatter_reduce_(0, dest.long(), element, "amax")
    covered = torch.nonzero(last >= 0).squeeze(1)
    src = dest.index_select(0, source.index_select(0, last.index_select(0, covered)))
    flat = image.reshape(image.shape[0], n)
    out = flat.clone()
    out[:, covered] = flat.index_select(1, src)
    return out.view(image.shape)


def side_ranges(spatial: tuple[int, ...], kind: str, low: float, high: float) -> torch.Tensor:
    """Inclusive (dims, 2) ranges of window / box sides, the authors' integer rules per side s:
    shuffle ``1 .. s*high``, in-painting ``s*low .. s*high``, out-painting ``s - s*high .. s - s*low``
    (products floored, as their ``//``); clamped to ``1 .. s`` where a side is too short for them."""
    out = []
    for s in spatial:
        lo, hi = math.floor(s * low + 1e-9), math.floor(s * high + 1e-9)
        a, b = {"shuffle": (1, hi), "inpaint": (lo, hi), "outpaint": (s - hi, s - lo)}[kind]
        a = min(max(a, 1), s)
        out.append((a, min(max(b, a), s)))
    return torch.tensor(out)


def uniform_int(generator: torch.Generator, low: torch.Tensor, high: torch.Tensor, shape: tuple[int, ...]
                ) -> torch.Tensor:
    """Integers uniform in [low, high] (inclusive, broadcast to ``shape``), like ``random.randint``."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    return torch.minimum(low + (u * (high - low + 1)).long(), high)  # u * n may round up to n


def leading_successes(u: torch.Tensor, p: float) -> torch.Tensor:
    """Per row, how many leading ``u < p``: the authors' ``while cnt > 0 and random() < p`` loops."""
    return (u < p).long().cumprod(dim=1).sum(dim=1)


class ModelsGenesis(Pretext):
    """Models Genesis corruptions with the authors' defaults (``pytorch/config.py``, ``utils.py``).

    ``p_*``: probabilities of the curve (of which ``p_decreasing`` decreasing), the local shuffle,
    painting (of which ``p_outpainting`` out-painting). ``shuffle_blocks`` windows per shuffled
    sample, sides ``1 .. shuffle_max_fraction * side``. Painting: up to ``paint_boxes`` boxes,
    each further one with probability ``paint_continue`` (in-painting: the first one too;
    out-painting keeps at least one), ``paint_margin`` voxels from the border; in-painting box
    sides ``inpaint_size`` of the side, out-painting box sides the side minus ``outpaint_size``
    of it. Raises NnunetTransferError naming an invalid parameter."""

    name = "models_genesis"

    def __init__(self, p_nonlinear: float = 0.9, p_decreasing: float = 0.5, p_local_shuffle: float = 0.5,
                 shuffle_blocks: int = 10000, shuffle_max_fraction: float = 0.1, p_painting: float = 0.9,
                 p_outpainting: float = 0.8, paint_boxes: int = 5, paint_continue: float = 0.95,
                 paint_margin: int = 3, inpaint_size: tuple[float, float] = (1 / 6, 1 / 3),
                 outpaint_size: tuple[float, float] = (3 / 7, 4 / 7)):
        self.p_nonlinear = probability("p_nonlinear", p_nonlinear)
        self.p_decreasing = probability("p_decreasing", p_decreasing)
        self.p_local_shuffle = probability("p_local_shuffle", p_local_shuffle)
        self.shuffle_blocks = positive("shuffle_blocks", shuffle_blocks)
        self.shuffle_max_fraction = fraction("shuffle_max_fraction", shuffle_max_fraction, 0.0, 1.0 + 1e-9)
        self.p_painting = probability("p_painting", p_painting)
        self.p_outpainting = probability("p_outpainting", p_outpainting)
        self.paint_boxes = positive("paint_boxes", paint_boxes)
        self.paint_continue = probability("paint_continue", paint_continue)
        self.paint_margin = positive("paint_margin", paint_margin, allow_zero=True)
        self.inpaint_size = fraction_range("inpaint_size", inpaint_size)
        self.outpaint_size = fraction_range("outpaint_size", outpaint_size)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        b, spatial = shape[0], tuple(shape[2:])
        dims, k, p = len(spatial), self.shuffle_blocks, self.paint_boxes
        control = torch.zeros(b, 4, 2, dtype=torch.float64)
        control[:, 3] = 1.0
        control[:, 1:3] = torch.rand(b, 2, 2, generator=generator, dtype=torch.float64)  # unsorted, as theirs
        flags = {name: rand(generator, b) < chance for name, chance in (
            ("nonlinear", self.p_nonlinear), ("decreasing", self.p_decreasing), ("shuffle", self.p_local_shuffle),
            ("paint", self.p_painting), ("outpaint", self.p_outpainting))}
        side = torch.tensor(spatial)
        shuffle_sides = side_ranges(spatial, "shuffle", 0.0, self.shuffle_max_fraction)
        sizes = uniform_int(generator, shuffle_sides[:, 0], shuffle_sides[:, 1], (b, k, dims))
        starts = uniform_int(generator, torch.zeros(dims, dtype=torch.long), side - sizes, (b, k, dims))
        # only the shuffled samples need their windows' voxel orders
        keys = [torch.randint(0, 2 ** KEY_BITS, (int(sizes[i].prod(dim=1).sum()),), generator=generator)
                if flags["shuffle"][i] else None for i in range(b)]
        inside = side_ranges(spatial, "inpaint", *self.inpaint_size)
        outside = side_ranges(spatial, "outpaint", *self.outpaint_size)
        ranges = torch.where(flags["outpaint"][:, None, None, None], outside, inside)  # (b, 1, dims, 2)
        box_sizes = uniform_int(generator, ranges[..., 0], ranges[..., 1], (b, p, dims))
        margin = torch.minimum(torch.full_like(box_sizes, self.paint_margin), (side - box_sizes) // 2)
        box_starts = uniform_int(generator, margin, side - box_sizes - margin, (b, p, dims))
        more = rand(generator, b, p)
        count = torch.where(flags["outpaint"], 1 + leading_successes(more[:, :p - 1], self.paint_continue),
                            leading_successes(more, self.paint_continue))
        return {**flags, "control": control,
                "shuffle_boxes": torch.stack([starts, starts + sizes], dim=-1), "shuffle_keys": keys,
                "paint_boxes": torch.stack([box_starts, box_starts + box_sizes], dim=-1), "paint_count": count,
                "noise_seed": int(rand(generator, 1) * 2 ** 31)}

    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        dims = tuple(range(1, x.ndim))
        low = x.amin(dim=dims, keepdim=True)
        span = (x.amax(dim=dims, keepdim=True) - low).clamp_min(1e-8)
        y = (x - low) / span  # [0, 1] per sample: the authors' input range
        for i in torch.nonzero(params["shuffle"]).flatten().tolist():  # first, as theirs (it commutes with the curve)
            y[i] = shuffle_windows(y[i], params["shuffle_boxes"][i], params["shuffle_keys"][i])
        bent = torch.nonzero(params["nonlinear"]).flatten()
        if len(bent):
            curve_x, curve_y = nonlinear_curves(params["control"][bent].double(), params["decreasing"][bent])
            y[bent] = apply_curve(y[bent], curve_x, curve_y)
        painted = torch.nonzero(params["paint"]).flatten().tolist()
        if painted:
            noise = torch.rand(y.shape, generator=torch.Generator().manual_seed(params["noise_seed"]), dtype=y.dtype)
        for i in painted:
            boxes = torch.zeros(y.shape[2:], dtype=torch.bool)
            for box in params["paint_boxes"][i][:int(params["paint_count"][i])]:
                boxes[box_slices(box)] = True
            # out-painting: noise everywhere but the boxes, which keep the image as it was before
            y[i] = torch.where(boxes, y[i], noise[i]) if params["outpaint"][i] else torch.where(boxes, noise[i], y[i])
        return PretextBatch(input=y * span + low, target=x)
