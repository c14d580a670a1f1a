"""Lesion-wise matching of one label: 3D connected components, overlap, detection metrics.

Follows the lesion-wise F1 and lesion-count difference of the ATLAS R2.0 challenge (Liew et al.,
"A large, curated, open-source stroke neuroimaging dataset to improve lesion segmentation
algorithms", Scientific Data 9, 320, 2022; reference code ``isles/scoring.py`` of
github.com/npnl/atlas2_grand_challenge, ``compute_lesion_f1_score``):

- a lesion is a 3D connected component (cc3d, 26-connectivity by default);
- TP: reference lesions overlapped by the prediction; FN: reference lesions not overlapped;
- FP: predicted components that overlap no (detected) reference lesion;
- F1 = TP / (TP + (FP + FN) / 2); 1 when both masks have no lesion.

Our additions (documented in documentation/explanation/lesion_matching.md): an overlap threshold
(a reference lesion is detected when the predicted voxels cover at least that fraction of it;
0 = any voxel, the ATLAS rule), a minimum lesion size applied to both sides, and the detection
rate (TPR) and precision with defined values for empty masks. Pure functions, no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cc3d
import numpy as np

CONNECTIVITIES = (6, 18, 26)


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
        """ATLAS R2.0 lesion-wise F1 = TP / (TP + (FP + FN) / 2); 1 when both are empty, so 0 when
        exactly one side is empty."""
        if self.n_ref == 0 and self.n_pred == 0:
            return 1.0
        return self.detected / (self.detected + (self.false_positives + self.missed) / 2)

    @property
    def count_difference(self) -> int:
        """Absolute lesion-count difference |n_pred - n_ref| (ATLAS R2.0's simple lesion count)."""
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


def match_lesions(reference: np.ndarray, prediction: np.ndarray, connectivity: int = 26, overlap: float = 0.0,
                  min_size_voxels: int = 0) -> LesionMatch:
    """Match the lesions of two boolean masks of one label.

    In: reference and prediction masks (same 2D / 3D shape); ``connectivity`` (6, 18, 26);
    ``overlap``: a reference lesion is detected when predicted lesion voxels cover at least this
    fraction of it, and always need at least one voxel (0 = any voxel, the ATLAS rule);
    ``min_size_voxels``: components smaller than this are removed from both masks before
    matching (removed predicted voxels cannot detect anything). Out: a LesionMatch.
    Raises ValueError for shapes that differ, an overlap outside [0, 1] or a bad connectivity.
    """
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be a fraction in [0, 1], got {overlap}")
    if np.shape(reference) != np.shape(prediction):
        raise ValueError(f"shapes differ: reference {np.shape(reference)}, prediction {np.shape(prediction)}")
    reference, prediction = _as_3d(reference), _as_3d(prediction)
    box = _bounding_box(reference | prediction)
    if box is None:
        return LesionMatch(0, 0, detected=0, missed=0, pred_matched=0, false_positives=0)
    ref_labels, n_ref = label_lesions(reference[box], connectivity, min_size_voxels)
    pred_labels, n_pred = label_lesions(prediction[box], connectivity, min_size_voxels)
    if n_ref == 0 or n_pred == 0:
        return LesionMatch(n_ref, n_pred, detected=0, missed=n_ref, pred_matched=0, false_positives=n_pred)
    both = (ref_labels > 0) & (pred_labels > 0)
    ref_ids, pred_ids = ref_labels[both], pred_labels[both]
    covered = np.bincount(ref_ids, minlength=n_ref + 1)
    sizes = np.bincount(ref_labels[ref_labels > 0], minlength=n_ref + 1)
    sizes[0] = 1
    is_detected = (covered > 0) & (covered / sizes >= overlap)
    is_detected[0] = False
    pred_hit = np.zeros(n_pred + 1, dtype=bool)
    pred_hit[pred_ids[is_detected[ref_ids]]] = True
    detected, matched = int(is_detected.sum()), int(pred_hit.sum())
    return LesionMatch(n_ref, n_pred, detected=detected, missed=n_ref - detected, pred_matched=matched,
                       false_positives=n_pred - matched)


def min_size_in_voxels(min_volume_ml: float, voxel_ml: float) -> int:
    """Smallest voxel count whose volume reaches ``min_volume_ml`` (0 when no minimum is set)."""
    if min_volume_ml <= 0:
        return 0
    return max(1, math.ceil(min_volume_ml / voxel_ml - 1e-9))
