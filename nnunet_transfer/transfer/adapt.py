"""Pure tensor adaptations of one source weight to a target shape; each raises when it cannot.

Conventions: a convolution weight is ``(out, in, *kernel)``; a transposed convolution weight is
``(in, out, *kernel)``. Both have the spatial kernel last, which is all these functions need.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.names import INFLATION_RULES, INPUT_CHANNEL_RULES, KERNEL_RULES, UNMAPPED_CHANNEL_RULES


def adapt_input_channels(weight: torch.Tensor, channels: int, rule: str = "sum") -> tuple[torch.Tensor, str]:
    """Adapt the input-channel axis (dim 1) of a first-layer convolution weight to ``channels``.

    N -> 1: ``sum`` (a grey image replicated in N channels gives the same response) or ``mean``.
    1 -> M: the kernel repeated in every channel and divided by M (same response to a replicated
    image). Any other N -> M: only with ``tile``: channels repeated cyclically, scaled by N / M.
    Raises NnunetTransferError for an unknown rule or an N -> M change without ``tile``.
    """
    if rule not in INPUT_CHANNEL_RULES:
        raise NnunetTransferError(f"Unknown input-channel rule {rule!r}; "
                                  f"choose one of {', '.join(INPUT_CHANNEL_RULES)}.")
    n = weight.shape[1]
    if n == channels:
        return weight, "input channels unchanged"
    if channels == 1 and rule in ("sum", "mean"):
        out = weight.sum(dim=1, keepdim=True) if rule == "sum" else weight.mean(dim=1, keepdim=True)
        return out, f"input channels {n}->1 ({rule})"
    if n == 1:
        out = weight.repeat(1, channels, *([1] * (weight.ndim - 2))) / channels
        return out, f"input channels 1->{channels} (repeat / {channels})"
    if rule == "tile":
        reps = math.ceil(channels / n)
        out = weight.repeat(1, reps, *([1] * (weight.ndim - 2)))[:, :channels] * (n / channels)
        return out, f"input channels {n}->{channels} (tile, x{n}/{channels})"
    raise NnunetTransferError(
        f"Cannot adapt {n} input channels to {channels}: only N->1 (sum / mean) and 1->N are defined; "
        f"set input_channels to 'tile' to repeat channels cyclically.")


def inflate_2d_to_3d(weight: torch.Tensor, depth: int, rule: str = "average", taps: int | None = None
                     ) -> torch.Tensor:
    """Inflate a 2D kernel ``(a, b, kh, kw)`` to 3D ``(a, b, depth, kh, kw)``.

    ``average`` repeats the kernel over depth and divides by ``taps``, the number of depth taps
    that reach one output voxel: ``depth`` for a convolution (I3D, Carreira & Zisserman, CVPR
    2017), ``depth / stride`` for a transposed convolution. Either way a volume that is constant
    along depth gets the 2D response of a slice. ``center`` puts the kernel in the central slice
    and zeros elsewhere. Raises NnunetTransferError for a non-4D weight, depth < 1 or an unknown rule.
    """
    if rule not in INFLATION_RULES:
        raise NnunetTransferError(f"Unknown inflation rule {rule!r}; choose one of {', '.join(INFLATION_RULES)}.")
    if weight.ndim != 4 or depth < 1:
        raise NnunetTransferError(f"Can only inflate a 2D kernel (4 dims) to depth >= 1, got {tuple(weight.shape)}, "
                                  f"depth {depth}.")
    if rule == "average":
        return weight.unsqueeze(2).repeat(1, 1, depth, 1, 1) / (taps or depth)
    out = weight.new_zeros(weight.shape[:2] + (depth,) + weight.shape[2:])
    out[:, :, depth // 2] = weight
    return out


def adapt_kernel(weight: torch.Tensor, kernel: tuple[int, ...], rule: str = "crop") -> torch.Tensor:
    """Bring the spatial kernel (trailing dims) of ``weight`` to ``kernel``.

    ``crop``: centre-crop a larger kernel, centre zero-pad a smaller one. ``average``: average-pool
    a larger kernel to the target size (``adaptive_avg_pool``), centre zero-pad a smaller one.
    Raises NnunetTransferError for an unknown rule or a different number of spatial dims.
    """
    if rule not in KERNEL_RULES:
        raise NnunetTransferError(f"Unknown kernel rule {rule!r}; choose one of {', '.join(KERNEL_RULES)}.")
    spatial = weight.shape[2:]
    if len(spatial) != len(kernel):
        raise NnunetTransferError(f"Kernel {tuple(spatial)} and target kernel {tuple(kernel)} differ in dimensions.")
    out = weight
    if rule == "average" and any(s > k for s, k in zip(spatial, kernel)):
        pool = F.adaptive_avg_pool3d if len(kernel) == 3 else F.adaptive_avg_pool2d
        size = tuple(min(s, k) for s, k in zip(spatial, kernel))
        flat = out.reshape(-1, 1, *spatial)
        out = pool(flat, size).reshape(*out.shape[:2], *size)
    for axis, k in enumerate(kernel, start=2):
        s = out.shape[axis]
        if s > k:
            start = (s - k) // 2
            out = out.narrow(axis, start, k)
        elif s < k:
            before = (k - s) // 2
            pad_shape = list(out.shape)
            pad_shape[axis] = before
            after_shape = list(out.shape)
            after_shape[axis] = k - s - before
            out = torch.cat([out.new_zeros(pad_shape), out, out.new_zeros(after_shape)], dim=axis)
    return out.contiguous()


def map_input_channels(weight: torch.Tensor, target: torch.Tensor, sources: list[int | None],
                       unmapped: str = "zero") -> torch.Tensor:
    """A first-layer weight for the target's input channels, channel by channel: target channel i
    takes source channel ``sources[i]`` unchanged; an unmapped one (None) is ``zero`` (the network
    answers the mapped channels exactly as the source network did), the ``mean`` of the source
    channels, or keeps the target's fresh (``random``) initialisation. Raises NnunetTransferError
    for an unknown rule or a mapping of another length than the target's channels."""
    if unmapped not in UNMAPPED_CHANNEL_RULES:
        raise NnunetTransferError(f"Unknown unmapped-channel rule {unmapped!r}; choose one of "
                                  f"{', '.join(UNMAPPED_CHANNEL_RULES)}.")
    if len(sources) != target.shape[1] or weight.shape[0] != target.shape[0] or weight.ndim != target.ndim:
        raise NnunetTransferError(f"Channel mapping of {len(sources)} channels cannot fill a weight of shape "
                                  f"{tuple(target.shape)} from {tuple(weight.shape)}.")
    fill = {"zero": torch.zeros_like(weight[:, 0]), "mean": weight.mean(dim=1)}
    out = torch.stack([weight[:, s] if s is not None else fill.get(unmapped, target[:, i].to(weight.dtype))
                       for i, s in enumerate(sources)], dim=1)
    return out.contiguous()


def keep_rows(weight: torch.Tensor, target: torch.Tensor, rows: list[int | None]) -> torch.Tensor:
    """A segmentation-head weight or bias for the target's classes: row i is source row ``rows[i]``,
    or keeps the target's fresh initialisation (None). The other dims must agree."""
    if weight.shape[1:] != target.shape[1:] or len(rows) != target.shape[0]:
        raise NnunetTransferError(f"Head rows cannot be kept from {tuple(weight.shape)} into {tuple(target.shape)}.")
    out = target.detach().clone().to(weight.dtype)
    for i, s in enumerate(rows):
        if s is not None:
            out[i] = weight[s]
    return out


def _sequence_grid(grid: tuple[int, ...], order: str) -> tuple[int, ...]:
    """The grid in the order its tokens are flattened (slowest axis first)."""
    return (grid[1], grid[0], *grid[2:]) if order == "yxz" else tuple(grid)


def resample_token_embedding(embedding: torch.Tensor, source_grid: tuple[int, ...], target_grid: tuple[int, ...],
                             source_order: str = "xyz", target_order: str = "xyz") -> tuple[torch.Tensor, str]:
    """A learnt positional embedding ``(1, tokens, dim)`` of a 3D token grid, moved to another grid.

    ``source_grid`` / ``target_grid`` are the patch grids in image axis order; ``*_order`` say how
    each network flattens its grid into the token sequence (``xyz``: x slowest, as
    dynamic_network_architectures' Primus; ``yxz``: y slowest, as nnssl's EvaMAE). The embedding is
    laid out on the source grid in image axes, resampled trilinearly (``align_corners=False``: the
    grid cells keep their centres' relative positions, as nnU-Net's development branch does) when
    the grids differ, and flattened in the target's order. An unchanged grid and order returns the
    tensor as it is. Raises NnunetTransferError when the number of tokens does not match the grid.
    """
    source_grid, target_grid = tuple(source_grid), tuple(target_grid)
    if (embedding.ndim != 3 or embedding.shape[0] != 1 or embedding.shape[1] != math.prod(source_grid)
            or len(source_grid) != 3 or len(target_grid) != 3):
        raise NnunetTransferError(f"A positional embedding {tuple(embedding.shape)} is not one token per cell of the "
                                  f"grid {source_grid}.")
    if source_grid == target_grid and source_order == target_order:
        return embedding, "positional embedding unchanged"
    dim = embedding.shape[2]
    volume = embedding.reshape(1, *_sequence_grid(source_grid, source_order), dim).movedim(-1, 1)
    if source_order == "yxz":
        volume = volume.transpose(2, 3)  # (1, dim, x, y, z)
    steps = []
    if source_grid != target_grid:
        volume = F.interpolate(volume.float(), size=target_grid, mode="trilinear", align_corners=False)
        steps.append(f"token grid {'x'.join(map(str, source_grid))} -> {'x'.join(map(str, target_grid))} (trilinear)")
    if target_order == "yxz":
        volume = volume.transpose(2, 3)
    if source_order != target_order:
        steps.append(f"token order {source_order} -> {target_order}")
    out = volume.movedim(1, -1).reshape(1, -1, dim).to(embedding.dtype).contiguous()
    return out, "positional embedding: " + ", ".join(steps)
