"""What every pretext task shares: parameters drawn in one place, applied by a pure function.

A pretext maps a batch ``x`` of shape ``(B, C, *spatial)`` (2D or 3D, any channel count) to a
``PretextBatch``: the corrupted network input, the target and, where the loss only covers part
of the image, a mask. ``sample`` draws every random parameter from one ``torch.Generator``;
``apply`` is deterministic given those parameters, so a test (or a replay) can call it with
fixed parameters.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from nnunet_transfer.errors import NnunetTransferError


@dataclass
class PretextBatch:
    """Network input, target (image or class indices) and an optional loss mask."""

    input: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor | None = None


class Pretext(ABC):
    """Base class: ``pretext(x, generator)`` == ``pretext.apply(x, pretext.sample(x.shape, generator))``.

    ``name``: the pretext's key in ``nnunet_transfer.names.PRETEXTS`` (plans, study files, the CLI)."""

    name: ClassVar[str]

    @abstractmethod
    def sample(self, shape: torch.Size, generator: torch.Generator) -> dict[str, Any]:
        """Draw the random parameters for a batch of this shape."""

    @abstractmethod
    def apply(self, x: torch.Tensor, params: dict[str, Any]) -> PretextBatch:
        """Corrupt ``x`` with the given parameters (deterministic)."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> PretextBatch:
        check_batch(x)
        return self.apply(x, self.sample(x.shape, generator))


def check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim not in (4, 5) or not x.is_floating_point():
        raise NnunetTransferError("A pretext needs a floating-point batch of shape (B, C, H, W) or (B, C, D, H, W), "
                                  f"got {getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}.")


def probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise NnunetTransferError(f"{name} must be a probability in [0, 1], got {value!r}.")
    return float(value)


def positive(name: str, value, kind=int, allow_zero: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok or (kind is int and value != int(value)):
        raise NnunetTransferError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                                  f"{kind.__name__}, got {value!r}.")
    return kind(value)


def fraction(name: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
        raise NnunetTransferError(f"{name} must be in ({low}, {high}), got {value!r}.")
    return float(value)


def fraction_range(name: str, value) -> tuple[float, float]:
    """A (low, high) pair (tuple or JSON list) with 0 <= low <= high <= 1."""
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
          and 0.0 <= value[0] <= value[1] <= 1.0)
    if not ok:
        raise NnunetTransferError(f"{name} must be a pair (low, high) of fractions with 0 <= low <= high <= 1, "
                                  f"got {value!r}.")
    return float(value[0]), float(value[1])


def rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=generator)


def randint(generator: torch.Generator, low: int, high: int, *shape: int) -> torch.Tensor:
    """Integers in [low, high) (high > low)."""
    return torch.randint(low, max(high, low + 1), shape, generator=generator)


def box_slices(box: torch.Tensor) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in box)
