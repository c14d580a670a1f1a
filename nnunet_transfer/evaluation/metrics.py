"""Voxel metrics of one label: counts, Dice, IoU, volumes. Pure numpy, no I/O.

Empty-vs-empty (neither reference nor prediction has a voxel of the label) is scored as perfect:
Dice 1 and IoU 1 (nnU-Net's own ``compute_metrics`` gives NaN there; see
documentation/reference/evaluation.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoxelCounts:
    """Confusion counts of one label in one case, named as in nnU-Net's summary.json."""

    TP: int
    FP: int
    FN: int
    TN: int

    @property
    def n_ref(self) -> int:
        """Reference voxels of the label (TP + FN)."""
        return self.TP + self.FN

    @property
    def n_pred(self) -> int:
        """Predicted voxels of the label (TP + FP)."""
        return self.TP + self.FP


def voxel_counts(reference: np.ndarray, prediction: np.ndarray) -> VoxelCounts:
    """TP / FP / FN / TN of two boolean masks of the same shape.

    Raises ValueError when the shapes differ.
    """
    reference = np.asarray(reference, dtype=bool)
    prediction = np.asarray(prediction, dtype=bool)
    if reference.shape != prediction.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, prediction {prediction.shape}")
    tp = int(np.count_nonzero(reference & prediction))
    n_ref = int(np.count_nonzero(reference))
    n_pred = int(np.count_nonzero(prediction))
    return VoxelCounts(TP=tp, FP=n_pred - tp, FN=n_ref - tp, TN=int(reference.size) - n_ref - n_pred + tp)


def dice_from_counts(counts: VoxelCounts) -> float:
    """Dice = 2 TP / (2 TP + FP + FN); 1.0 when reference and prediction are both empty."""
    denominator = 2 * counts.TP + counts.FP + counts.FN
    return 1.0 if denominator == 0 else 2 * counts.TP / denominator


def iou_from_counts(counts: VoxelCounts) -> float:
    """IoU (Jaccard) = TP / (TP + FP + FN); 1.0 when reference and prediction are both empty."""
    denominator = counts.TP + counts.FP + counts.FN
    return 1.0 if denominator == 0 else counts.TP / denominator


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    return dice_from_counts(voxel_counts(reference, prediction))


def iou(reference: np.ndarray, prediction: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    return iou_from_counts(voxel_counts(reference, prediction))


def voxel_volume_ml(spacing_mm: tuple[float, ...] | list[float]) -> float:
    """Volume of one voxel in ml (1 ml = 1000 mm^3) from its spacing in mm (any order)."""
    return float(np.prod(np.asarray(spacing_mm, dtype=float))) / 1000.0


def volume_ml(n_voxels: int, voxel_ml: float) -> float:
    """Volume in ml of ``n_voxels`` voxels of ``voxel_ml`` ml each."""
    return n_voxels * voxel_ml


def abs_volume_difference_ml(counts: VoxelCounts, voxel_ml: float) -> float:
    """Absolute volume difference |V_pred - V_ref| in ml."""
    return abs(counts.n_pred - counts.n_ref) * voxel_ml


def voxel_metrics(counts: VoxelCounts, voxel_ml: float) -> dict[str, float | int]:
    """All voxel metrics of one label from its counts, keyed as in the per-case output.

    Returns ``Dice``, ``IoU``, ``TP``, ``FP``, ``FN``, ``TN``, ``n_pred``, ``n_ref`` (nnU-Net's
    names and meanings) and ``volume_ref_ml``, ``volume_pred_ml``, ``abs_volume_difference_ml``.
    """
    return {"Dice": dice_from_counts(counts), "IoU": iou_from_counts(counts),
            "TP": counts.TP, "FP": counts.FP, "FN": counts.FN, "TN": counts.TN,
            "n_pred": counts.n_pred, "n_ref": counts.n_ref,
            "volume_ref_ml": volume_ml(counts.n_ref, voxel_ml), "volume_pred_ml": volume_ml(counts.n_pred, voxel_ml),
            "abs_volume_difference_ml": abs_volume_difference_ml(counts, voxel_ml)}
