"""Evaluation profiles: the lesion metrics of a challenge, as its own scorer computes them.

Each profile fixes the connectivity, the matching rule, the minimum lesion size and the metrics,
and names its columns ``<profile>_<metric>`` so that a column named after a challenge is always
that challenge's definition. The definitions and their sources are written out in
documentation/explanation/lesion_matching.md; the tests check each on hand-computed masks.

- ``atlas2``: ATLAS R2.0 (MICCAI 2022), the final scorer ``isles/scoring.py`` of
  github.com/npnl/atlas2_grand_challenge (commit 129631c): ``scipy.ndimage.label`` with its default
  structure (6-connectivity), any-voxel overlap, volume difference in voxels.
- ``isbi2015``: ISBI 2015 longitudinal MS challenge (Carass et al., NeuroImage 148, 2017):
  18-connected lesions, any-voxel overlap, LTPR / LFPR and the voxel metrics of the paper; the
  volume correlation and the score over a whole folder (``summary_metrics``).
- ``msseg2016``: MSSEG-2016 (Commowick et al., Sci Rep 8, 2018), the detection of Anima's
  ``animaSegPerfAnalyzer`` as built in 2016-2020 (the build that scored the challenge):
  6-connected lesions larger than 3 mm^3, a reference lesion detected when more than alpha = 10 %
  of it is covered and the covering lesions, largest overlap first until gamma = 65 % of the
  covered part, have at most beta = 70 % of their volume outside the reference lesions; the same
  test in the other direction for the predicted lesions; thresholds as 32-bit floats.

Pure functions of boolean masks and the spacing; no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nnunet_transfer.evaluation.lesions import LesionOverlap, detected_by_coverage, lesion_overlap
from nnunet_transfer.evaluation.metrics import dice_from_counts, voxel_counts, voxel_volume_ml


@dataclass(frozen=True)
class Profile:
    """One challenge's lesion metrics: ``metrics`` per case and label (columns
    ``<name>_<metric>_<label>``), ``summary_metrics`` over a folder, ``lower_is_better`` among
    them, ``primary`` the one a study plots."""

    name: str
    title: str
    source: str
    connectivity: int
    metrics: tuple[str, ...]
    compute: Callable[[np.ndarray, np.ndarray, tuple[float, ...]], dict[str, float]]
    primary: str
    lower_is_better: tuple[str, ...] = ()
    summary_metrics: tuple[str, ...] = ()

    def column(self, metric: str) -> str:
        """The per-case column stem of one of the profile's metrics (``atlas2_lesionwise_F1``)."""
        return f"{self.name}_{metric}"


# ---------------------------------------------------------------------------- ATLAS R2.0

ATLAS_CONNECTIVITY = 6


def atlas2_metrics(reference: np.ndarray, prediction: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """Dice, volume difference (voxels), simple lesion count and lesion-wise F1 of the ATLAS R2.0
    scorer: 6-connected lesions; a reference lesion is a TP when it overlaps the prediction in a
    voxel, else an FN; a predicted lesion overlapping no reference voxel is an FP; F1 = TP / (TP +
    (FP + FN) / 2); Dice and F1 are 1 when both masks are empty. ``spacing`` is unused: the
    scorer counts voxels."""
    counts = voxel_counts(reference, prediction)
    overlap = lesion_overlap(reference, prediction, ATLAS_CONNECTIVITY)
    match = overlap.count(detected_by_coverage(overlap))  # any-voxel overlap: FP = predicted lesions touching none
    return {"Dice": dice_from_counts(counts), "volume_difference": float(abs(counts.n_pred - counts.n_ref)),
            "simple_lesion_count": float(match.count_difference), "lesionwise_F1": match.f1}


# ---------------------------------------------------------------------------- ISBI 2015

ISBI_CONNECTIVITY = 18


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def isbi2015_metrics(reference: np.ndarray, prediction: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """Per-case metrics of the ISBI 2015 challenge (Carass et al. 2017): voxel Dice, PPV, TPR,
    volume difference |V_pred - V_ref| / V_ref, and on 18-connected lesions with any-voxel
    overlap LTPR = reference lesions overlapped / reference lesions and LFPR = predicted lesions
    overlapping no reference voxel / predicted lesions. A ratio with a zero denominator is NaN,
    except Dice, which is 1 when both masks are empty. Also ``volume_ml`` (the reference and
    predicted volumes feed the folder's volume correlation)."""
    counts = voxel_counts(reference, prediction)
    overlap = lesion_overlap(reference, prediction, ISBI_CONNECTIVITY)
    match = overlap.count(detected_by_coverage(overlap))
    hit, false_lesions = match.detected, match.false_positives
    voxel_ml = voxel_volume_ml(spacing)
    return {"Dice": dice_from_counts(counts),
            "PPV": _ratio(counts.TP, counts.n_pred), "TPR": _ratio(counts.TP, counts.n_ref),
            "LTPR": _ratio(hit, overlap.n_ref), "LFPR": _ratio(false_lesions, overlap.n_pred),
            "VD": _ratio(abs(counts.n_pred - counts.n_ref), counts.n_ref),
            "volume_ref_ml": counts.n_ref * voxel_ml, "volume_pred_ml": counts.n_pred * voxel_ml}


def isbi2015_summary(per_case: list[dict[str, float]]) -> dict[str, float]:
    """Folder-level ISBI 2015 values from the per-case metrics of one label: ``Corr``, the Pearson
    correlation of predicted and reference lesion volumes over the cases (NaN with fewer than 2
    cases or a constant volume), and ``SC`` = mean over cases of Dice/8 + PPV/8 + (1 - LFPR)/4 +
    LTPR/4, plus Corr/4 (the paper's score for one rater, before the leaderboard's scaling to
    the inter-rater agreement, which is not reproduced)."""
    ref = np.asarray([c["volume_ref_ml"] for c in per_case], dtype=float)
    pred = np.asarray([c["volume_pred_ml"] for c in per_case], dtype=float)
    corr = math.nan
    if ref.size >= 2 and ref.std() > 0 and pred.std() > 0:
        corr = float(np.corrcoef(ref, pred)[0, 1])
    parts = [c["Dice"] / 8 + c["PPV"] / 8 + (1 - c["LFPR"]) / 4 + c["LTPR"] / 4 for c in per_case]
    score = float(np.mean(parts)) + corr / 4 if parts else math.nan
    return {"Corr": corr, "SC": score}


# ---------------------------------------------------------------------------- MSSEG-2016

MSSEG_CONNECTIVITY = 6
MSSEG_MIN_VOLUME_MM3 = 3.0
# the 2016-2020 builds hold the thresholds as 32-bit floats and compare them as doubles
MSSEG_ALPHA = float(np.float32(0.10))
MSSEG_BETA = float(np.float32(0.70))
MSSEG_GAMMA = float(np.float32(0.65))


def msseg_min_voxels(spacing: tuple[float, ...]) -> int:
    """Smallest kept lesion in voxels: floor(3 mm^3 / voxel volume) + 1 (strictly larger than 3 mm^3)."""
    voxel_mm3 = 1.0
    for s in spacing:
        voxel_mm3 *= float(s)
    return math.floor(MSSEG_MIN_VOLUME_MM3 / voxel_mm3) + 1


def _component_order(sizes: np.ndarray) -> np.ndarray:
    """Rank of each component (index 0 unused) in ITK's relabelled order: size descending, ties
    in raster order (our labels are already in raster order)."""
    order = np.argsort(-sizes[1:], kind="stable") + 1
    rank = np.zeros(sizes.size, dtype=np.int64)
    rank[order] = np.arange(1, sizes.size)
    return rank


def _anima_detected(n_self: int, n_other: int, self_ids: np.ndarray, other_ids: np.ndarray, voxels: np.ndarray,
                    self_sizes: np.ndarray, other_sizes: np.ndarray, other_outside: np.ndarray) -> int:
    """Lesions of one side detected by the other, as Anima's ``getTruePositiveLesions``: coverage
    > alpha, then the covering lesions by decreasing overlap (ties in relabelled order), each with
    at most beta of its voxels outside every lesion of this side, until gamma of the covered part
    is reached; at most ``n_self + 1`` lesions are checked (the 2016 loop bound)."""
    other_rank = _component_order(other_sizes)
    detected = 0
    for lesion in range(1, n_self + 1):
        rows = np.flatnonzero(self_ids == lesion)
        covered = int(voxels[rows].sum())
        if not covered / self_sizes[lesion] > MSSEG_ALPHA:
            continue
        partners, shared = other_ids[rows], voxels[rows]
        order = np.lexsort((other_rank[partners], -shared))
        weight, k, failed = 0.0, 0, False
        while weight < MSSEG_GAMMA and k < n_self + 1 and k < order.size and not failed:
            partner = partners[order[k]]
            failed = other_outside[partner] / other_sizes[partner] > MSSEG_BETA
            if not failed:
                weight += shared[order[k]] / covered
            k += 1
        detected += not failed
    return detected


def msseg2016_metrics(reference: np.ndarray, prediction: np.ndarray,
                      spacing: tuple[float, ...]) -> dict[str, float]:
    """Lesion detection of the MSSEG-2016 scorer (module docstring) and its voxel metrics.

    SensL = reference lesions detected / reference lesions; PPVL = predicted lesions detected
    (the same test with the roles swapped) / predicted lesions; F1 = 2 PPVL SensL / (PPVL +
    SensL); 0 / 0 is NaN as in the scorer (e.g. no predicted lesion: PPVL and F1 NaN). Voxel
    metrics on the unfiltered masks: Dice, Sensitivity, PPV and RelativeVolumeError =
    100 (V_pred - V_ref) / V_ref (signed, in %), NaN where the denominator is 0.
    """
    overlap: LesionOverlap = lesion_overlap(reference, prediction, MSSEG_CONNECTIVITY, msseg_min_voxels(spacing))
    ref_sizes, pred_sizes = overlap.ref_sizes, overlap.pred_sizes
    ref_inside = np.bincount(overlap.pair_ref, weights=overlap.pair_voxels, minlength=overlap.n_ref + 1)
    pred_inside = np.bincount(overlap.pair_pred, weights=overlap.pair_voxels, minlength=overlap.n_pred + 1)
    tp_ref = tp_pred = 0
    if overlap.n_ref and overlap.n_pred:
        tp_ref = _anima_detected(overlap.n_ref, overlap.n_pred, overlap.pair_ref, overlap.pair_pred,
                                 overlap.pair_voxels, ref_sizes, pred_sizes, pred_sizes - pred_inside)
        tp_pred = _anima_detected(overlap.n_pred, overlap.n_ref, overlap.pair_pred, overlap.pair_ref,
                                  overlap.pair_voxels, pred_sizes, ref_sizes, ref_sizes - ref_inside)
    sens_l = np.float32(_ratio(tp_ref, overlap.n_ref))
    ppv_l = np.float32(_ratio(tp_pred, overlap.n_pred))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.float32(2) * (ppv_l * sens_l) / (ppv_l + sens_l)
    counts = voxel_counts(reference, prediction)
    jaccard = _ratio(counts.TP, counts.TP + counts.FP + counts.FN)
    return {"Dice": 2 * jaccard / (1 + jaccard), "Sensitivity": _ratio(counts.TP, counts.n_ref),
            "PPV": _ratio(counts.TP, counts.n_pred),
            "RelativeVolumeError": _ratio(100.0 * (counts.n_pred - counts.n_ref), counts.n_ref),
            "SensL": float(sens_l), "PPVL": float(ppv_l), "F1": float(f1)}


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("atlas2", "ATLAS R2.0 (MICCAI 2022 stroke lesion challenge)",
            "isles/scoring.py of github.com/npnl/atlas2_grand_challenge, commit 129631c (the final scorer)",
            ATLAS_CONNECTIVITY, ("Dice", "volume_difference", "simple_lesion_count", "lesionwise_F1"),
            atlas2_metrics, primary="lesionwise_F1", lower_is_better=("volume_difference", "simple_lesion_count")),
    Profile("isbi2015", "ISBI 2015 longitudinal MS lesion segmentation challenge",
            "Carass et al., NeuroImage 148:77-102, 2017 (definitions of the paper; the challenge's MATLAB code "
            "is not public in a repository)",
            ISBI_CONNECTIVITY, ("Dice", "PPV", "TPR", "LTPR", "LFPR", "VD", "volume_ref_ml", "volume_pred_ml"),
            isbi2015_metrics, primary="LTPR", lower_is_better=("LFPR", "VD"), summary_metrics=("Corr", "SC")),
    Profile("msseg2016", "MSSEG-2016 (MICCAI 2016 MS lesion segmentation challenge)",
            "animaSegPerfAnalyzer of Anima (github.com/Inria-Empenn/Anima-Public), the 2016 build 2eb5bc7; "
            "Commowick et al., Sci Rep 8:13650, 2018",
            MSSEG_CONNECTIVITY, ("Dice", "Sensitivity", "PPV", "RelativeVolumeError", "SensL", "PPVL", "F1"),
            msseg2016_metrics, primary="F1", lower_is_better=()),
)}
