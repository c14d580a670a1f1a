"""Panoptic quality and lesion-wise Dice on hand-computed cases."""
import numpy as np
import pytest

from nnunet_transfer.evaluation.instances import instance_metrics
from nnunet_transfer.evaluation.lesions import lesion_overlap


def metrics(ref, pred, connectivity=26):
    return instance_metrics(lesion_overlap(ref, pred, connectivity))


def test_one_match_one_miss_one_false_positive():
    ref, pred = np.zeros((20, 20, 20), bool), np.zeros((20, 20, 20), bool)
    ref[2:6, 2:6, 2:6] = ref[12:16, 12:16, 12:16] = True      # two 64-voxel lesions
    pred[2:6, 2:6, 3:7] = True                                  # IoU 48 / 80 = 0.6: a match
    pred[12:16, 12:16, 14:18] = True                            # IoU 32 / 96 = 1/3: a miss and a false positive
    m = metrics(ref, pred)
    assert (m["instance_TP"], m["instance_FP"], m["instance_FN"]) == (1, 1, 1)
    assert m["RQ"] == pytest.approx(1 / (1 + (1 + 1) / 2))
    assert m["SQ"] == pytest.approx(0.6)
    assert m["PQ"] == pytest.approx(0.3)
    assert m["lesion_Dice"] == pytest.approx(2 * 48 / 128)     # Dice of the matched pair only


def test_iou_of_exactly_one_half_matches():
    ref, pred = np.zeros((1, 1, 8), bool), np.zeros((1, 1, 8), bool)
    ref[0, 0, 0:4] = True
    pred[0, 0, 2:6] = True                                      # IoU 2 / 6
    assert metrics(ref, pred)["instance_TP"] == 0
    pred[:] = False
    pred[0, 0, 0:2] = True                                      # IoU 2 / 4 = 0.5
    m = metrics(ref, pred)
    assert m["instance_TP"] == 1 and m["SQ"] == 0.5 and m["RQ"] == 1.0


def test_a_split_lesion_matches_its_larger_part_only():
    ref = np.zeros((1, 1, 12), bool)
    ref[0, 0, 0:10] = True
    pred = np.zeros_like(ref)
    pred[0, 0, 0:6] = pred[0, 0, 7:10] = True                   # IoU 0.6 and 0.3
    m = metrics(ref, pred)
    assert (m["instance_TP"], m["instance_FP"], m["instance_FN"]) == (1, 1, 0)
    assert m["PQ"] == pytest.approx(0.6 * 1 / 1.5)


def test_connectivity_decides_the_instances():
    ref = np.zeros((3, 3, 3), bool)
    ref[0, 0, 0] = ref[1, 1, 1] = True                          # corner neighbours
    assert metrics(ref, ref, 26)["instance_TP"] == 1
    assert metrics(ref, ref, 6)["instance_TP"] == 2


@pytest.mark.parametrize("ref_has, pred_has, value", [(False, False, 1.0), (True, False, 0.0), (False, True, 0.0)])
def test_empty_sides(ref_has, pred_has, value):
    lesion, empty = np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool)
    lesion[1:3, 1:3, 1:3] = True
    m = metrics(lesion if ref_has else empty, lesion if pred_has else empty)
    assert (m["PQ"], m["SQ"], m["RQ"], m["lesion_Dice"]) == (value, value, value, value)


def test_equals_panoptica_where_it_is_installed():
    """panoptica pins numpy < 2.3, so it is usually not importable here; benchmarks/evaluation_check.py
    runs it in its own interpreter (202 random cases, identical)."""
    panoptica = pytest.importorskip("panoptica")
    from panoptica.metrics import Metric
    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.SEMANTIC,
        instance_approximator=panoptica.ConnectedComponentsInstanceApproximator(),
        instance_matcher=panoptica.NaiveThresholdMatching(), instance_metrics=[Metric.DSC, Metric.IOU])
    rng = np.random.default_rng(3)
    for _ in range(20):
        ref, pred = rng.random((12, 14, 13)) > 0.8, rng.random((12, 14, 13)) > 0.8
        theirs = evaluator.evaluate(pred.astype(np.uint8), ref.astype(np.uint8), verbose=False)["ungrouped"]
        ours = metrics(ref, pred)
        assert (ours["PQ"], ours["SQ"], ours["RQ"], ours["lesion_Dice"]) == pytest.approx(
            (theirs.pq, theirs.sq, theirs.rq, theirs.sq_dsc))
