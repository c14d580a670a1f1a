"""Voxel metrics on hand-computed masks, and their invariants (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from nnunet_transfer.evaluation.metrics import (
    VoxelCounts,
    abs_volume_difference_ml,
    dice,
    dice_from_counts,
    iou,
    iou_from_counts,
    voxel_counts,
    voxel_metrics,
    voxel_volume_ml,
)

masks = arrays(bool, (4, 5, 3))


def test_counts_dice_iou_by_hand():
    ref = np.zeros((4, 4, 4), bool)
    pred = np.zeros((4, 4, 4), bool)
    ref[0, 0, :4] = True          # 4 reference voxels
    pred[0, 0, :2] = True         # 2 of them predicted
    pred[3, 3, 3] = True          # 1 false positive voxel
    counts = voxel_counts(ref, pred)
    assert counts == VoxelCounts(TP=2, FP=1, FN=2, TN=64 - 5)
    assert (counts.n_ref, counts.n_pred) == (4, 3)
    assert dice(ref, pred) == pytest.approx(4 / 7)
    assert iou(ref, pred) == pytest.approx(2 / 5)


def test_empty_cases():
    empty, full = np.zeros((2, 2, 2), bool), np.ones((2, 2, 2), bool)
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
    assert dice(full, empty) == 0.0 and iou(empty, full) == 0.0


def test_volumes_in_ml():
    assert voxel_volume_ml((1.0, 2.0, 3.0)) == pytest.approx(0.006)
    counts = VoxelCounts(TP=2, FP=0, FN=2, TN=10)  # reference 4 voxels, prediction 2
    assert abs_volume_difference_ml(counts, 0.006) == pytest.approx(0.012)
    metrics = voxel_metrics(counts, 0.006)
    assert metrics["volume_ref_ml"] == pytest.approx(0.024) and metrics["volume_pred_ml"] == pytest.approx(0.012)
    assert {k: metrics[k] for k in ("TP", "FP", "FN", "TN", "n_pred", "n_ref")} == {
        "TP": 2, "FP": 0, "FN": 2, "TN": 10, "n_pred": 2, "n_ref": 4}


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        voxel_counts(np.zeros((2, 2)), np.zeros((2, 3)))


@settings(max_examples=60, deadline=None)
@given(masks, masks)
def test_bounds_symmetry_and_dice_iou_relation(a, b):
    d, j = dice(a, b), iou(a, b)
    assert 0.0 <= d <= 1.0 and 0.0 <= j <= 1.0
    assert d == pytest.approx(dice(b, a)) and j == pytest.approx(iou(b, a))
    assert d == pytest.approx(2 * j / (1 + j))
    assert d >= j


@settings(max_examples=30, deadline=None)
@given(masks)
def test_perfect_prediction_scores_one(a):
    counts = voxel_counts(a, a)
    assert dice_from_counts(counts) == 1.0 and iou_from_counts(counts) == 1.0
    assert abs_volume_difference_ml(counts, 0.001) == 0.0
