"""Lesion-wise matching of one label: connected components, their overlaps, detection metrics.

This project's lesion definition (the ``lesion_*`` columns; challenge definitions, which differ,
are in ``profiles.py``):

- a lesion is a connected component of the label (cc3d; 26-connectivity by default, 6 or 18 on
  request), optionally only components of a minimum size, applied to both sides;
- a reference lesion is detected (TP) when predicted lesion voxels cover at least one of its
  voxels, or at least a chosen fraction of it; otherwise it is missed (FN);
- a predicted lesion is matched when it overlaps a detected reference lesion, otherwise it is a
  false positive (FP);
- F1 = TP / (TP + (FP + FN) / 2) (the form ATLAS R2.0 uses, on our components), detection rate
  (TPR) and precision, with defined values for empty masks.

``lesion_overlap`` labels both masks once and counts the voxels every (reference, predicted)
lesion pair shares; the matching rules of the profiles and the instance metrics work on it.
Definitions with worked examples: documentation/explanation/lesion_matching.md. Pure, no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cc3d
import numpy as np

CONNECTIVITIES = (6, 18, 26)
MAX_TABLE_CELLS = 4_000_000  # reference x predicted lesions up to which one contingency table counts the overlaps


@dataclass(frozen=True)
class LesionMatch:
    """Lesion counts of one label in one case and the metrics derived from them.

    ``n_ref`` / ``n_pred``: lesions (components) in reference / prediction, after the size filter;
    ``detected``: reference lesions detected (TP); ``missed``: reference lesions not detected (FN);
    ``pred_matched``: predicted components overlapping a detected reference lesion (TP_pred);
    ``false_positives``: predicted components overlapping no detected reference lesion (FP).
    """

    n_ref: int
    n_pred: int
    detected: int
    missed: int
    pred_matched: int
    false_positives: int

    @property
    def detection_rate(self) -> float:
        """Lesion-wise TPR = detected / n_ref; 1 when both are empty, NaN when only the reference is."""
        if self.n_ref == 0:
            return 1.0 if self.n_pred == 0 else math.nan
        return self.detected / self.n_ref

    @property
    def precision(self) -> float:
        """Lesion-wise precision = pred_matched / n_pred; 1 when both are empty, NaN when only the
        prediction is."""
        if self.n_pred == 0:
            return 1.0 if self.n_ref == 0 else math.nan
        return self.pred_matched / self.n_pred

    @property
    def f1(self) -> float:
        """Lesion-wise F1 = TP / (TP + (FP + FN) / 2); 1 when both are empty, so 0 when exactly one
        side is empty."""
        if self.n_ref == 0 and self.n_pred == 0:
            return 1.0
        return self.detected / (self.detected + (self.false_positives + self.missed) / 2)

    @property
    def count_difference(self) -> int:
        """Absolute lesion-count difference |n_pred - n_ref|."""
        return abs(self.n_pred - self.n_ref)

    def as_dict(self) -> dict[str, float | int]:
        """The per-case output columns: counts and metrics, keyed ``lesions_ref`` ... ``lesion_F1``."""
        return {"lesions_ref": self.n_ref, "lesions_pred": self.n_pred, "lesion_TP": self.detected,
                "lesion_FN": self.missed, "lesion_TP_pred": self.pred_matched, "lesion_FP": self.false_positives,
                "lesion_TPR": self.detection_rate, "lesion_precision": self.precision, "lesion_F1": self.f1,
                "lesion_count_difference": self.count_difference}


def _as_3d(mask: np.ndarray) -> np.ndarray:
    """A boolean 3D view: 2D masks get a leading axis of size 1 (26 / 18 become 8-, 6 becomes 4-connectivity)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2:
        return mask[None]
    if mask.ndim != 3:
        raise ValueError(f"lesion matching needs a 2D or 3D mask, got {mask.ndim} dimensions")
    return mask


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every set voxel (None for an empty mask): components
    outside it cannot exist, so labelling and counting run on the box only."""
    box = []
    for axis in range(mask.ndim):
        nonzero = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if nonzero.size == 0:
            return None
        box.append(slice(int(nonzero[0]), int(nonzero[-1]) + 1))
    return tuple(box)


def label_lesions(mask: np.ndarray, connectivity: int = 26, min_size_voxels: int = 0) -> tuple[np.ndarray, int]:
    """Connected components of a boolean mask, smaller ones removed.

    In: a 2D or 3D boolean mask; ``connectivity`` 6, 18 or 26; components with fewer than
    ``min_size_voxels`` voxels are dropped. Out: (labels 1..n as a 3D uint32 array, n).
    Raises ValueError for another connectivity or dimensionality.
    """
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity}")
    labels, n = cc3d.connected_components(_as_3d(mask), connectivity=connectivity, return_N=True)
    if n and min_size_voxels > 1:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        keep = sizes >= min_size_voxels
        keep[0] = False
        remap = np.zeros(n + 1, dtype=labels.dtype)
        remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=labels.dtype)
        labels, n = remap[labels], int(keep.sum())
    return labels, int(n)


@dataclass(frozen=True)
class LesionOverlap:
    """The lesions of one label in reference and prediction and how they intersect.

    ``n_ref`` / ``n_pred``: components after the size filter; ``ref_sizes`` / ``pred_sizes``:
    voxels per component, indexed by component id (index 0 unused, 0); ``pair_ref``,
    ``pair_pred``, ``pair_voxels``: one entry per (reference, predicted) component pair that
    shares voxels, with the number of shared voxels. Everything the matching rules and the
    instance metrics need, computed once per label.
    """

    n_ref: int
    n_pred: int
    ref_sizes: np.ndarray
    pred_sizes: np.ndarray
    pair_ref: np.ndarray
    pair_pred: np.ndarray
    pair_voxels: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        """Per reference lesion (index 0 unused): its voxels covered by predicted lesion voxels."""
        return np.bincount(self.pair_ref, weights=self.pair_voxels, minlength=self.n_ref + 1).astype(np.int64)

    def count(self, detected: np.ndarray) -> LesionMatch:
        """The LesionMatch of a detection decision: ``detected`` is a boolean per reference lesion
        (index 0 unused); a predicted component is matched when it shares voxels with a detected
        reference lesion."""
        detected = np.asarray(detected, dtype=bool).copy()
        detected[0] = False
        pred_hit = np.zeros(self.n_pred + 1, dtype=bool)
        pred_hit[self.pair_pred[detected[self.pair_ref]]] = True
        n_detected, n_matched = int(detected.sum()), int(pred_hit.sum())
        return LesionMatch(self.n_ref, self.n_pred, detected=n_detected, missed=self.n_ref - n_detected,
                           pred_matched=n_matched, false_positives=self.n_pred - n_matched)


def _empty_overlap(n_ref: int = 0, n_pred: int = 0, ref_sizes: np.ndarray | None = None,
                   pred_sizes: np.ndarray | None = None) -> LesionOverlap:
    none = np.zeros(0, dtype=np.int64)
    return LesionOverlap(n_ref, n_pred, np.zeros(1, np.int64) if ref_sizes is None else ref_sizes,
                         np.zeros(1, np.int64) if pred_sizes is None else pred_sizes, none, none, none)


def lesion_overlap(reference: np.ndarray, prediction: np.ndarray, connectivity: int = 26,
                   min_size_voxels: int = 0) -> LesionOverlap:
    """Label both masks (``label_lesions``) and count the voxels every component pair shares.

    In: reference and prediction boolean masks of one 2D / 3D shape; ``connectivity`` (6, 18,
    26); ``min_size_voxels``: smaller components are removed from both sides first.
    Raises ValueError for shapes that differ or a bad connectivity.
    """
    if np.shape(reference) != np.shape(prediction):
        raise ValueError(f"shapes differ: reference {np.shape(reference)}, prediction {np.shape(prediction)}")
    reference, prediction = _as_3d(reference), _as_3d(prediction)
    union = reference | prediction
    box = _bounding_box(union)
    if box is None:
        if connectivity not in CONNECTIVITIES:
            raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity}")
        return _empty_overlap()
    ref_labels, n_ref = label_lesions(reference[box], connectivity, min_size_voxels)
    pred_labels, n_pred = label_lesions(prediction[box], connectivity, min_size_voxels)
    if (n_ref + 1) * (n_pred + 1) <= MAX_TABLE_CELLS:
        # the contingency table of the two labellings (row / column 0: background) over the voxels
        # set on either side, which hold every lesion voxel
        where = np.flatnonzero(union[box])
        code = ref_labels.ravel()[where].astype(np.int64) * (n_pred + 1) + pred_labels.ravel()[where]
        table = np.bincount(code, minlength=(n_ref + 1) * (n_pred + 1)).reshape(n_ref + 1, n_pred + 1)
        ref_sizes, pred_sizes = table.sum(axis=1), table.sum(axis=0)
        ref_sizes[0] = pred_sizes[0] = 0
        pair_ref, pair_pred = np.nonzero(table[1:, 1:])
        return LesionOverlap(n_ref, n_pred, ref_sizes.astype(np.int64), pred_sizes.astype(np.int64),
                             pair_ref=pair_ref + 1, pair_pred=pair_pred + 1,
                             pair_voxels=table[pair_ref + 1, pair_pred + 1].astype(np.int64))
    # very many components (noise): count only the voxels where both sides are set
    ref_sizes = np.bincount(ref_labels.ravel(), minlength=n_ref + 1).astype(np.int64)
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1).astype(np.int64)
    ref_sizes[0] = pred_sizes[0] = 0
    both = (ref_labels > 0) & (pred_labels > 0)
    codes = ref_labels[both].astype(np.int64) * (n_pred + 1) + pred_labels[both]
    pairs, voxels = np.unique(codes, return_counts=True)
    return LesionOverlap(n_ref, n_pred, ref_sizes, pred_sizes, pair_ref=pairs // (n_pred + 1),
                         pair_pred=pairs % (n_pred + 1), pair_voxels=voxels.astype(np.int64))


def detected_by_coverage(overlap: LesionOverlap, fraction: float = 0.0) -> np.ndarray:
    """Per reference lesion (index 0 unused): covered by predicted lesion voxels in at least one
    voxel and at least ``fraction`` of its voxels."""
    covered = overlap.covered
    sizes = np.maximum(overlap.ref_sizes, 1)
    return (covered > 0) & (covered / sizes >= fraction)


def match_lesions(reference: np.ndarray, prediction: np.ndarray, connectivity: int = 26, overlap: float = 0.0,
                  min_size_voxels: int = 0) -> LesionMatch:
    """Match the lesions of two boolean masks of one label.

    In: reference and prediction masks (same 2D / 3D shape); ``connectivity`` (6, 18, 26);
    ``overlap``: a reference lesion is detected when predicted lesion voxels cover at least this
    fraction of it, and always need at least one voxel (0 = any voxel);
    ``min_size_voxels``: components smaller than this are removed from both masks before
    matching (removed predicted voxels cannot detect anything). Out: a LesionMatch.
    Raises ValueError for shapes that differ, an overlap outside [0, 1] or a bad connectivity.
    """
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be a fraction in [0, 1], got {overlap}")
    lesions = lesion_overlap(reference, prediction, connectivity, min_size_voxels)
    return lesions.count(detected_by_coverage(lesions, overlap))


def min_size_in_voxels(min_volume_ml: float, voxel_ml: float) -> int:
    """Smallest voxel count whose volume reaches ``min_volume_ml`` (0 when no minimum is set)."""
    if min_volume_ml <= 0:
        return 0
    return max(1, math.ceil(min_volume_ml / voxel_ml - 1e-9))
