"""The spacing rule of targets planned like a checkpoint: at which voxel spacing they are preprocessed.

A pretrained encoder learnt structures at the scale of its pretraining data. nnU-Net's development
branch (``nnunetv2/experiment_planning/like_nnssl.py``, ``nnUNetv2_preprocess_like_nnssl -am``)
offers four adaptation modes for nnssl checkpoints and recommends ``like_pretrained``; the rules
here are the same four under our names:

- ``checkpoint``: the pretraining's spacing (nnssl / OpenMind: 1 mm isotropic). A checkpoint whose
  pretraining used no fixed spacing (nnssl ``noresample``, spacing None) means ``none``;
- ``nnunet``: nnU-Net's own spacing for each target (the project's contract for shared plans);
- ``fixed``: a spacing the user gives, three numbers in nnU-Net's image axis order (the order of
  ``spacings`` in the dataset's ``dataset_fingerprint.json``; for NIfTI read through SimpleITK the
  reverse of the header's x y z), converted here to the configuration's transposed order;
- ``none``: no training case is resampled. The development branch writes the spacing
  ``[None, None, None]``, which nnU-Net 2.8's ``DefaultPreprocessor`` cannot use
  (``compute_new_shape`` divides by it) and its export cannot invert. nnU-Net skips resampling
  when a case's shape does not change (``resample_data_or_seg``), so ``none`` is the one spacing
  under which no training case changes shape, and refused when the cases' spacings differ.

Default (no rule given): ``checkpoint`` for nnssl checkpoints (their pretraining fixed the scale,
and nnU-Net's development branch recommends ``like_pretrained``), ``nnunet`` for ours and for
nnU-Net checkpoints (each dataset keeps nnU-Net's own planning). A default that resolves to
``none`` falls back to ``nnunet`` when the target's cases have different spacings (as nnU-Net's
branch falls back for a pretraining without spacing); a rule given explicitly never falls back.

Everything here is pure: plans and fingerprints in, plans and spacings out.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnunet_transfer.errors import NnunetTransferError

CHECKPOINT, NNUNET, FIXED, NO_RESAMPLING = "checkpoint", "nnunet", "fixed", "none"
SPACING_RULES = (CHECKPOINT, NNUNET, NO_RESAMPLING)  # plus a fixed spacing: three positive numbers
AUTO = "auto"


@dataclass(frozen=True)
class SpacingRule:
    """A spacing rule as asked for: ``rule`` one of checkpoint / nnunet / fixed / none; ``fixed``
    (rule fixed): three spacings in mm in nnU-Net's image axis order."""

    rule: str
    fixed: tuple[float, float, float] | None = None

    def text(self) -> str:
        return " ".join(f"{s:g}" for s in self.fixed) if self.rule == FIXED else self.rule


@dataclass(frozen=True)
class ResolvedSpacing:
    """The rule a checkpoint's targets are planned with: ``rule`` (checkpoint / nnunet / fixed / none),
    what was ``requested`` (``auto``: the default), the checkpoint's ``pretraining_spacing``
    (preprocessed axis order, None when it has none), the ``fixed`` spacing, ``reason`` (one line:
    why this rule), and whether ``none`` may fall back to ``nnunet`` (only a default may)."""

    rule: str
    requested: str
    pretraining_spacing: list[float] | None
    fixed: tuple[float, float, float] | None = None
    reason: str = ""
    may_fall_back: bool = False

    def provenance(self) -> dict[str, Any]:
        """The keys the ``shared_plans`` block records."""
        out = {"spacing_rule": self.rule, "spacing_requested": self.requested,
               "pretraining_spacing": self.pretraining_spacing}
        if self.fixed is not None:
            out["fixed_spacing"] = list(self.fixed)
        return out


def parse_spacing_rule(value: Any, what: str = "--spacing") -> SpacingRule | None:
    """A spacing rule from the command line (a list of words) or a study file (a word or a list of
    three numbers): ``checkpoint``, ``nnunet``, ``none``, three positive numbers (mm), or None /
    ``auto`` for the checkpoint's default (returned as None). Raises NnunetTransferError naming
    ``what`` and what is allowed."""
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if value is None or value == AUTO:
        return None
    if isinstance(value, str):
        if value in SPACING_RULES:
            return SpacingRule(value)
        value = value.replace(",", " ").split()
    allowed = f"{what} takes {', '.join(SPACING_RULES)} or three positive spacings in mm"
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise NnunetTransferError(f"{allowed}; got {_shown(value)}.")
    try:
        numbers = tuple(float(v) for v in value if not isinstance(v, bool))
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 3 or not all(math.isfinite(s) and s > 0 for s in numbers):
        raise NnunetTransferError(f"{allowed}; got {_shown(value)}.")
    return SpacingRule(FIXED, numbers)  # type: ignore[arg-type]


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else repr(value)


def resolve_spacing_rule(requested: SpacingRule | None, pretraining_spacing: Sequence[float] | None,
                         nnssl: bool, checkpoint_name: str = "the checkpoint") -> ResolvedSpacing:
    """The rule to plan with. ``pretraining_spacing``: the checkpoint's (None when it records none);
    ``nnssl``: whether it is an nnssl checkpoint (whose spacing None means a pretraining without
    resampling). Raises NnunetTransferError for ``checkpoint`` with a checkpoint that records no
    spacing and is not an nnssl ``noresample`` pretraining."""
    spacing = None if pretraining_spacing is None else [float(s) for s in pretraining_spacing]
    asked = AUTO if requested is None else requested.rule
    if requested is None and not nnssl:
        return ResolvedSpacing(NNUNET, asked, spacing, reason="default for this checkpoint: each target keeps "
                               "nnU-Net's own spacing")
    if requested is None or requested.rule == CHECKPOINT:
        why = "default for nnssl checkpoints: " if requested is None else ""
        if spacing is not None:
            return ResolvedSpacing(CHECKPOINT, asked, spacing, reason=f"{why}the pretraining's spacing")
        if nnssl:
            return ResolvedSpacing(NO_RESAMPLING, asked, None, may_fall_back=requested is None,
                                   reason=f"{why}the pretraining used no fixed spacing (nnssl noresample): "
                                          f"no resampling")
        raise NnunetTransferError(
            f"--spacing checkpoint: {checkpoint_name} records no pretraining spacing. Choose --spacing nnunet, "
            f"none or three numbers. Nothing was written.")
    why = (f"{requested.text()} mm asked for in nnU-Net's image axis order, transposed like the data"
           if requested.rule == FIXED else "asked for")
    return ResolvedSpacing(requested.rule, asked, spacing, requested.fixed, reason=why)


def configuration_spacing(resolved: ResolvedSpacing, plans: Mapping[str, Any], cfg_name: str,
                          fingerprint: Mapping[str, Any], dataset: str) -> list[float] | None:
    """The spacing of configuration ``cfg_name`` of ``plans`` (nnU-Net's, for this dataset) under
    ``resolved``, in the configuration's (transposed) order; None to keep nnU-Net's.

    ``checkpoint``: the pretraining's spacing, read in its own preprocessed order (nnU-Net puts the
    lowest-resolution axis first in both). ``fixed``: the given spacing, transposed with the plans'
    ``transpose_forward`` (a 2d configuration takes the two in-plane values). ``none``: see
    :func:`no_resampling_spacing`. Raises NnunetTransferError when a checkpoint spacing has another
    dimensionality than the configuration, or when no spacing leaves every case unresampled.
    """
    if resolved.rule == NNUNET:
        return None
    own = plans["configurations"][cfg_name].get("spacing")
    if own is None:  # a configuration that only inherits (3d_cascade_fullres) has no spacing of its own
        raise NnunetTransferError(f"{dataset}: configuration {cfg_name} has no spacing of its own; use --spacing "
                                  f"nnunet or plan its parent configuration.")
    if resolved.rule == CHECKPOINT:
        spacing = [float(s) for s in resolved.pretraining_spacing or []]
        if len(spacing) != len(own):
            raise NnunetTransferError(
                f"{dataset}: the checkpoint's spacing {spacing} has {len(spacing)} values but the {cfg_name} "
                f"configuration has {len(own)}; choose --spacing nnunet or three numbers.")
        return spacing
    if resolved.rule == FIXED:
        transposed = [float(resolved.fixed[i]) for i in plans["transpose_forward"]]
        return transposed[len(transposed) - len(own):]
    return no_resampling_spacing(plans, cfg_name, fingerprint, dataset)


def _new_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> np.ndarray:
    """nnU-Net's ``compute_new_shape`` (nnunetv2.preprocessing.resampling.default_resampling)."""
    return np.array([int(round(s / n * k)) for s, n, k in zip(spacing, new_spacing, shape)])


def _cases(plans: Mapping[str, Any], fingerprint: Mapping[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(spacing, shape after cropping) of every training case, in the plans' transposed order."""
    order = list(plans["transpose_forward"])
    return [(np.asarray(sp, dtype=float)[order], np.asarray(sh)[order])
            for sp, sh in zip(fingerprint["spacings"], fingerprint["shapes_after_crop"])]


def no_resampling_spacing(plans: Mapping[str, Any], cfg_name: str, fingerprint: Mapping[str, Any],
                          dataset: str) -> list[float]:
    """The spacing (transposed order; in-plane for 2d) under which nnU-Net resamples no training case:
    the cases' median spacing, checked to leave every case's shape as it is. Raises
    NnunetTransferError listing the spacings when it does not."""
    cases = _cases(plans, fingerprint)
    dims = len(plans["configurations"][cfg_name]["spacing"])
    median = np.median(np.vstack([sp for sp, _ in cases]), 0)[3 - dims:]
    changed = [sp for sp, sh in cases
               if not np.array_equal(_new_shape(sh, sp, [*sp[:3 - dims], *median]), sh)]
    if changed:
        distinct = sorted({tuple(round(float(s), 4) for s in sp) for sp, _ in cases})
        raise NnunetTransferError(
            f"--spacing none: {dataset}'s training cases have {len(distinct)} different spacings "
            f"({'; '.join(map(str, distinct[:5]))}{' ...' if len(distinct) > 5 else ''}, nnU-Net's transposed "
            f"order); nnU-Net preprocesses every case of a configuration to one spacing, and {len(changed)} of "
            f"{len(cases)} cases would be resampled to any one of them. Choose --spacing checkpoint, nnunet or "
            f"three numbers. Nothing was written.")
    return [float(s) for s in median]


def with_spacing(plans: Mapping[str, Any], cfg_name: str, spacing: Sequence[float],
                 fingerprint: Mapping[str, Any]) -> dict:
    """``plans`` with configuration ``cfg_name`` at ``spacing`` (transposed order) and its
    ``median_image_size_in_voxels`` as nnU-Net computes it (each case's size after cropping,
    resampled to the spacing; a 2d configuration keeps each case's through-plane spacing). The
    transposition, network and patch stay. Pure."""
    out = deepcopy(dict(plans))
    cfg = out["configurations"][cfg_name]
    spacing = [float(s) for s in spacing]
    dims = len(spacing)
    shapes = [_new_shape(sh, sp, [*sp[:3 - dims], *spacing])[3 - dims:] for sp, sh in _cases(plans, fingerprint)]
    cfg["spacing"] = spacing
    cfg["median_image_size_in_voxels"] = [float(s) for s in np.median(np.vstack(shapes), 0)]
    return out


def apply_spacing_rule(plans: Mapping[str, Any], cfg_name: str, resolved: ResolvedSpacing,
                       fingerprint: Mapping[str, Any], dataset: str) -> tuple[dict, ResolvedSpacing]:
    """``plans`` (nnU-Net's for ``dataset``) with ``cfg_name`` at the spacing ``resolved`` gives, and
    the rule applied (a default ``none`` that no spacing satisfies becomes ``nnunet``, its reason
    saying so). Raises NnunetTransferError as :func:`configuration_spacing`."""
    try:
        spacing = configuration_spacing(resolved, plans, cfg_name, fingerprint, dataset)
    except NnunetTransferError:
        if not (resolved.rule == NO_RESAMPLING and resolved.may_fall_back):
            raise
        resolved = ResolvedSpacing(NNUNET, resolved.requested, resolved.pretraining_spacing,
                                   reason="the pretraining used no fixed spacing, and the target's cases have "
                                          "different spacings: nnU-Net's own spacing")
        spacing = None
    return (dict(plans) if spacing is None else with_spacing(plans, cfg_name, spacing, fingerprint)), resolved


def normalization_note(target: Sequence[str] | None, pretraining: Sequence[str] | None) -> str:
    """One phrase: the target's normalisation next to the pretraining's, and whether they differ."""
    own = ", ".join(target or []) or "?"
    if not pretraining:
        return f"normalisation {own} (the pretraining's is not recorded)"
    other = ", ".join(pretraining)
    if list(pretraining) == list(target or []):
        return f"normalisation {own}, as in the pretraining"
    return f"normalisation {own}, the pretraining used {other}: they DIFFER"
