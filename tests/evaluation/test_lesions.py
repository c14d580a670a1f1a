"""Lesion matching on hand-computed cases, and against a per-lesion scipy reference (hypothesis)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from nnunet_transfer.evaluation.lesions import LesionMatch, label_lesions, match_lesions, min_size_in_voxels


def volume(*voxels, shape=(6, 6, 6)):
    mask = np.zeros(shape, bool)
    for v in voxels:
        mask[v] = True
    return mask


def test_touching_lesions_depend_on_connectivity():
    corner = volume((1, 1, 1), (2, 2, 2))   # share a corner only
    edge = volume((1, 1, 1), (1, 2, 2))     # share an edge only
    assert [label_lesions(corner, c)[1] for c in (6, 18, 26)] == [2, 2, 1]
    assert [label_lesions(edge, c)[1] for c in (6, 18, 26)] == [2, 1, 1]
    m6, m26 = match_lesions(corner, corner, connectivity=6), match_lesions(corner, corner, connectivity=26)
    assert (m6.n_ref, m26.n_ref) == (2, 1)
    assert m6.f1 == m26.f1 == 1.0
    half = volume((1, 1, 1))
    assert match_lesions(corner, half, connectivity=26).detection_rate == 1.0
    assert match_lesions(corner, half, connectivity=6).detection_rate == 0.5


def test_one_lesion_split_in_two_by_the_prediction():
    ref = volume((0, 0, slice(0, 6)))
    pred = volume((0, 0, slice(0, 2)), (0, 0, slice(4, 6)))
    m = match_lesions(ref, pred)
    assert m == LesionMatch(n_ref=1, n_pred=2, detected=1, missed=0, pred_matched=2, false_positives=0)
    assert (m.detection_rate, m.precision, m.f1, m.count_difference) == (1.0, 1.0, 1.0, 1)


def test_one_prediction_covering_two_lesions():
    ref = volume((0, 0, slice(0, 2)), (0, 0, slice(4, 6)))
    pred = volume((0, 0, slice(0, 6)))
    m = match_lesions(ref, pred)
    assert m == LesionMatch(n_ref=2, n_pred=1, detected=2, missed=0, pred_matched=1, false_positives=0)
    assert (m.detection_rate, m.precision, m.f1, m.count_difference) == (1.0, 1.0, 1.0, 1)


def test_hit_miss_and_false_positive():
    ref = volume((0, 0, 0), (3, 3, 3))             # two lesions
    pred = volume((0, 0, 0), (5, 0, 5))            # hits one, one false positive
    m = match_lesions(ref, pred)
    assert (m.detected, m.missed, m.pred_matched, m.false_positives) == (1, 1, 1, 1)
    assert m.detection_rate == 0.5 and m.precision == 0.5
    assert m.f1 == pytest.approx(1 / (1 + (1 + 1) / 2))


def test_empty_reference_and_or_prediction():
    empty, one = volume(), volume((2, 2, 2))
    both = match_lesions(empty, empty)
    assert (both.detection_rate, both.precision, both.f1, both.count_difference) == (1.0, 1.0, 1.0, 0)
    only_pred = match_lesions(empty, one)
    assert math.isnan(only_pred.detection_rate)
    assert (only_pred.precision, only_pred.f1, only_pred.false_positives, only_pred.count_difference) == (0, 0, 1, 1)
    only_ref = match_lesions(one, empty)
    assert math.isnan(only_ref.precision)
    assert (only_ref.detection_rate, only_ref.f1, only_ref.missed, only_ref.count_difference) == (0, 0, 1, 1)


def test_min_lesion_size_applies_to_both_sides():
    ref = volume((0, 0, slice(0, 3)), (5, 5, 5))           # 3-voxel lesion + 1-voxel lesion
    pred = volume((0, 0, 0), (3, 3, 3), (5, 5, 5))         # three 1-voxel components
    assert match_lesions(ref, pred) == LesionMatch(2, 3, 2, 0, 2, 1)
    # with 2 voxels minimum: the reference keeps one lesion, the prediction none
    assert match_lesions(ref, pred, min_size_voxels=2) == LesionMatch(1, 0, 0, 1, 0, 0)
    labels, n = label_lesions(ref, min_size_voxels=2)
    assert n == 1 and set(np.unique(labels)) == {0, 1} and labels.sum() == 3


def test_min_size_from_ml():
    assert min_size_in_voxels(0, 0.001) == 0
    assert min_size_in_voxels(0.01, 0.001) == 10     # 1 mm voxels
    assert min_size_in_voxels(0.01, 0.008) == 2      # 2 mm voxels: 0.016 ml >= 0.01 ml
    assert min_size_in_voxels(0.016, 0.008) == 2


def test_overlap_threshold():
    ref = volume((0, 0, slice(0, 6)), (0, 5, slice(0, 4)))    # lesions of 6 and 4 voxels
    pred = volume((0, 0, slice(0, 3)), (0, 5, 0))              # covers 3/6 and 1/4
    assert match_lesions(ref, pred, overlap=0.0).detected == 2
    assert match_lesions(ref, pred, overlap=0.25).detected == 2
    m = match_lesions(ref, pred, overlap=0.5)
    assert m == LesionMatch(2, 2, detected=1, missed=1, pred_matched=1, false_positives=1)
    assert m.f1 == 0.5
    assert match_lesions(ref, pred, overlap=0.51).detected == 0
    assert match_lesions(ref, ref, overlap=1.0).detected == 2


def test_2d_masks_and_bad_arguments():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[1, 1] = True
    assert label_lesions(mask, 26)[1] == 1 and label_lesions(mask, 6)[1] == 2
    with pytest.raises(ValueError, match="connectivity"):
        label_lesions(mask, 8)
    with pytest.raises(ValueError, match="overlap"):
        match_lesions(mask, mask, overlap=1.5)
    with pytest.raises(ValueError, match="shapes differ"):
        match_lesions(mask, mask[:2])


def scipy_reference(ref, pred, connectivity, overlap, min_size):
    """Straightforward per-lesion loops over scipy.ndimage.label components."""
    structure = ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])

    def components(mask):
        labels, n = ndimage.label(mask, structure)
        return [c for c in (labels == i for i in range(1, n + 1)) if c.sum() >= max(min_size, 1)]

    ref_lesions, pred_lesions = components(ref), components(pred)
    pred_mask = np.any(pred_lesions, axis=0) if pred_lesions else np.zeros_like(pred)
    detected = [r for r in ref_lesions if (r & pred_mask).sum() > 0 and (r & pred_mask).sum() / r.sum() >= overlap]
    matched = [p for p in pred_lesions if any((p & r).any() for r in detected)]
    return LesionMatch(len(ref_lesions), len(pred_lesions), len(detected), len(ref_lesions) - len(detected),
                       len(matched), len(pred_lesions) - len(matched))


sparse = arrays(np.uint8, (5, 5, 4), elements=st.integers(0, 3)).map(lambda a: a == 0)


@settings(max_examples=60, deadline=None)
@given(sparse, sparse, st.sampled_from([6, 18, 26]), st.sampled_from([0.0, 0.3, 0.5, 1.0]), st.integers(0, 3))
def test_matches_per_lesion_scipy_loops(ref, pred, connectivity, overlap, min_size):
    assert match_lesions(ref, pred, connectivity, overlap, min_size) == scipy_reference(
        ref, pred, connectivity, overlap, min_size)


@settings(max_examples=60, deadline=None)
@given(sparse, sparse, st.sampled_from([6, 18, 26]))
def test_bounds_symmetry_and_perfect_prediction(ref, pred, connectivity):
    m = match_lesions(ref, pred, connectivity)
    for value in (m.detection_rate, m.precision, m.f1):
        assert math.isnan(value) or 0.0 <= value <= 1.0
    swapped = match_lesions(pred, ref, connectivity)   # with overlap 0, detection is symmetric
    assert (swapped.n_ref, swapped.detected, swapped.false_positives) == (m.n_pred, m.pred_matched, m.missed)
    assert swapped.f1 == pytest.approx(m.f1) or m.detected != m.pred_matched
    perfect = match_lesions(ref, ref, connectivity)
    assert (perfect.detection_rate, perfect.precision, perfect.f1, perfect.count_difference) == (1, 1, 1, 0)


def test_overlap_table_and_voxel_pairs_count_the_same(monkeypatch):
    """Few lesions: one contingency table; very many: the voxels where both sides are set. Same result."""
    from nnunet_transfer.evaluation import lesions
    rng = np.random.default_rng(0)
    ref, pred = rng.random((20, 20, 20)) > 0.5, rng.random((20, 20, 20)) > 0.5
    table = lesions.lesion_overlap(ref, pred, 6)
    monkeypatch.setattr(lesions, "MAX_TABLE_CELLS", 0)
    pairs = lesions.lesion_overlap(ref, pred, 6)
    assert table.n_ref > 100 and (table.n_ref, table.n_pred) == (pairs.n_ref, pairs.n_pred)
    for key in ("ref_sizes", "pred_sizes", "pair_ref", "pair_pred", "pair_voxels"):
        assert np.array_equal(getattr(table, key), getattr(pairs, key)), key
