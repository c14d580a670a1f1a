"""The challenge profiles on hand-built masks whose values are worked out by hand in each test."""
import math

import numpy as np
import pytest

from nnunet_transfer.evaluation.lesions import match_lesions
from nnunet_transfer.evaluation.profiles import (MSSEG_BETA, PROFILES, atlas2_metrics, isbi2015_metrics,
                                                 isbi2015_summary, msseg2016_metrics, msseg_min_voxels)
from nnunet_transfer.names import EVALUATION_PROFILES
from tests.evaluation.test_lesions import volume

ONE_MM = (1.0, 1.0, 1.0)


def test_profiles_are_the_named_ones():
    assert tuple(PROFILES) == EVALUATION_PROFILES
    for profile in PROFILES.values():
        assert profile.primary in profile.metrics
        assert set(profile.lower_is_better) <= set(profile.metrics)


# ---------------------------------------------------------------------------- ATLAS R2.0

def test_atlas2_counts_diagonal_voxels_as_two_lesions_where_26_connectivity_sees_one():
    truth = volume((1, 1, 1), (2, 2, 2))  # touch at a corner only
    pred = volume((1, 1, 1))
    m = atlas2_metrics(truth, pred, ONE_MM)
    # 6-connected: 2 true lesions, 1 hit: TP 1, FN 1, FP 0 -> F1 = 1 / (1 + 1/2)
    assert m["lesionwise_F1"] == pytest.approx(2 / 3)
    assert m["simple_lesion_count"] == 1.0          # |1 - 2|
    assert m["volume_difference"] == 1.0            # |1 - 2| voxels
    assert m["Dice"] == pytest.approx(2 * 1 / (1 + 2))
    assert match_lesions(truth, pred, connectivity=26).f1 == 1.0  # our default lesion_F1 differs


@pytest.mark.parametrize("truth, pred, expected", [
    (volume(), volume(), {"Dice": 1.0, "volume_difference": 0.0, "simple_lesion_count": 0.0, "lesionwise_F1": 1.0}),
    (volume(), volume((3, 3, 3)),
     {"Dice": 0.0, "volume_difference": 1.0, "simple_lesion_count": 1.0, "lesionwise_F1": 0.0}),
    (volume((0, 0, 0), (4, 4, 4)), volume(),
     {"Dice": 0.0, "volume_difference": 2.0, "simple_lesion_count": 2.0, "lesionwise_F1": 0.0}),
])
def test_atlas2_empty_masks(truth, pred, expected):
    assert atlas2_metrics(truth, pred, ONE_MM) == expected


def test_atlas2_split_and_merged_lesions_are_not_penalised_in_f1():
    line = volume((0, 0, slice(0, 6)))
    two_pieces = volume((0, 0, slice(0, 2)), (0, 0, slice(4, 6)))
    split = atlas2_metrics(line, two_pieces, ONE_MM)           # TP 1, FP 0, FN 0
    assert (split["lesionwise_F1"], split["simple_lesion_count"], split["volume_difference"]) == (1.0, 1.0, 2.0)
    merged = atlas2_metrics(two_pieces, line, ONE_MM)          # TP 2, FP 0
    assert (merged["lesionwise_F1"], merged["simple_lesion_count"]) == (1.0, 1.0)


def test_atlas2_false_positive_and_miss():
    truth = volume((0, 0, 0), (3, 3, 3))
    pred = volume((0, 0, 0), (5, 0, 5), (5, 5, 0))     # one hit, two false positives
    m = atlas2_metrics(truth, pred, ONE_MM)             # TP 1, FN 1, FP 2: 1 / (1 + 3/2)
    assert m["lesionwise_F1"] == pytest.approx(0.4)
    assert m["volume_difference"] == 1.0 and m["simple_lesion_count"] == 1.0


def test_atlas2_volume_difference_is_in_voxels_whatever_the_spacing():
    assert atlas2_metrics(volume((0, 0, 0)), volume(), (2.0, 2.0, 2.0))["volume_difference"] == 1.0


# ---------------------------------------------------------------------------- ISBI 2015

def test_isbi2015_lesions_are_18_connected():
    edge = volume((1, 1, 1), (1, 2, 2))     # share an edge: one lesion with 18-connectivity
    corner = volume((1, 1, 1), (2, 2, 2))   # share a corner: two lesions
    assert isbi2015_metrics(edge, volume((1, 1, 1)), ONE_MM)["LTPR"] == 1.0
    assert isbi2015_metrics(corner, volume((1, 1, 1)), ONE_MM)["LTPR"] == 0.5


def test_isbi2015_voxel_and_lesion_rates():
    cube = (slice(0, 2), slice(0, 2), slice(0, 2))
    truth = volume(cube, (5, 5, 5))                       # lesions: an 8-voxel cube and one voxel
    pred = volume(cube, (5, 0, 0))                        # the cube and a false positive voxel
    m = isbi2015_metrics(truth, pred, (1.0, 1.0, 2.0))    # 2 mm^3 voxels
    assert m["Dice"] == pytest.approx(2 * 8 / (9 + 9))
    assert m["PPV"] == pytest.approx(8 / 9) and m["TPR"] == pytest.approx(8 / 9)
    assert m["LTPR"] == 0.5 and m["LFPR"] == 0.5          # 1 of 2 reference lesions hit; 1 of 2 predicted unmatched
    assert m["VD"] == 0.0                                 # |9 - 9| / 9
    assert m["volume_ref_ml"] == pytest.approx(9 * 0.002)


def test_isbi2015_empty_masks_leave_undefined_ratios_undefined():
    m = isbi2015_metrics(volume(), volume(), ONE_MM)
    assert m["Dice"] == 1.0 and all(math.isnan(m[k]) for k in ("PPV", "TPR", "LTPR", "LFPR", "VD"))
    m = isbi2015_metrics(volume((0, 0, 0)), volume(), ONE_MM)
    assert (m["Dice"], m["TPR"], m["LTPR"], m["VD"]) == (0.0, 0.0, 0.0, 1.0)
    assert math.isnan(m["PPV"]) and math.isnan(m["LFPR"])


def test_isbi2015_folder_correlation_and_score():
    cases = [{"Dice": 0.8, "PPV": 0.6, "LTPR": 0.5, "LFPR": 0.25, "volume_ref_ml": v, "volume_pred_ml": 2 * v + 1}
             for v in (1.0, 2.0, 4.0)]
    summary = isbi2015_summary(cases)
    assert summary["Corr"] == pytest.approx(1.0)  # predicted volume is a linear function of the reference's
    # Dice/8 + PPV/8 + (1 - LFPR)/4 + LTPR/4 + Corr/4 = 0.1 + 0.075 + 0.1875 + 0.125 + 0.25
    assert summary["SC"] == pytest.approx(0.7375)
    assert math.isnan(isbi2015_summary(cases[:1])["Corr"])


# ---------------------------------------------------------------------------- MSSEG-2016

def line(y0, x0, x1, shape=(1, 16, 24), z=0):
    mask = np.zeros(shape, bool)
    mask[z, y0, x0:x1 + 1] = True
    return mask


def test_msseg2016_minimum_size_is_strictly_above_3_mm3():
    assert msseg_min_voxels(ONE_MM) == 4                   # floor(3 / 1) + 1
    assert msseg_min_voxels((1.0, 1.0, 2.0)) == 2          # floor(1.5) + 1
    assert msseg_min_voxels((1.0, 1.0, 3.0)) == 2          # 3 mm^3 is not kept: floor(1) + 1
    truth = line(0, 0, 2) | line(4, 0, 7)                  # a 3-voxel lesion (dropped) and an 8-voxel one
    m = msseg2016_metrics(truth, truth.copy(), ONE_MM)
    assert (m["SensL"], m["PPVL"], m["F1"]) == (1.0, 1.0, 1.0)


def test_msseg2016_alpha_needs_more_than_ten_percent_covered():
    truth = line(0, 0, 19)                                 # 20 voxels
    exactly_ten = line(0, 18, 21)                          # 2 voxels inside (10 %), 2 outside
    m = msseg2016_metrics(truth, exactly_ten, ONE_MM)
    assert m["SensL"] == 0.0
    fifteen = line(0, 17, 20)                              # 3 inside (15 %), 1 outside (25 % <= beta)
    m = msseg2016_metrics(truth, fifteen, ONE_MM)
    # the lesion is detected; the prediction is not: 17 of the lesion's 20 voxels (85 % > beta) lie
    # outside every predicted lesion
    assert (m["SensL"], m["PPVL"]) == (1.0, 0.0)
    assert m["F1"] == 0.0


def test_msseg2016_beta_is_the_2016_float_threshold():
    truth = line(0, 0, 3)                                  # 4 voxels
    pred = line(0, 1, 10)                                  # 3 inside, 7 of 10 outside: exactly 0.7
    assert MSSEG_BETA < 0.7                                # float32(0.7) as a double: 0.699999988...
    m = msseg2016_metrics(truth, pred, ONE_MM)
    assert m["SensL"] == 0.0                               # 0.7 > 0.69999999: the lesion is not detected
    assert m["PPVL"] == 1.0                                # 3/10 > alpha; the lesion lies 1/4 outside the prediction
    assert m["F1"] == 0.0


def test_msseg2016_gamma_stops_the_check_of_covering_lesions():
    truth = line(0, 0, 9)                                  # 10 voxels
    first = line(0, 0, 5)                                  # 6 inside
    second = line(0, 7, 9) | line(0, 9, 9, shape=(1, 16, 24)) | _column(x=9, y0=1, y1=10)  # 3 inside, 10 outside
    m = msseg2016_metrics(truth, first | second, ONE_MM)
    assert m["SensL"] == 1.0                               # 6/9 >= gamma after the first: the second is not checked
    shorter = line(0, 0, 4)                                # 5 inside: 5/8 < gamma, so the second is checked
    m = msseg2016_metrics(truth, shorter | second, ONE_MM)
    assert m["SensL"] == 0.0                               # the second lies 10/13 > beta outside


def _column(x, y0, y1, shape=(1, 16, 24)):
    mask = np.zeros(shape, bool)
    mask[0, y0:y1 + 1, x] = True
    return mask


def test_msseg2016_checks_at_most_one_more_covering_lesion_than_there_are_lesions():
    truth = line(0, 0, 15)                                 # one 16-voxel lesion
    a, b = line(0, 0, 3), line(0, 5, 8)                    # 4 inside each
    c = line(0, 10, 12) | _column(x=12, y0=1, y1=12)       # 3 inside, 12 outside (80 % > beta)
    d = line(0, 14, 15) | line(1, 14, 15)                  # 2 inside, 2 outside
    m = msseg2016_metrics(truth, a | b | c | d, ONE_MM)
    # covered 13: after a and b 8/13 < gamma, but the 2016 loop checks at most n_lesions + 1 = 2
    # covering lesions, so c is never checked and the lesion counts as detected
    assert m["SensL"] == 1.0
    # each predicted lesion covers the lesion by > alpha, and the lesion lies 3/16 outside them
    assert m["PPVL"] == 1.0 and m["F1"] == 1.0


def test_msseg2016_empty_prediction_and_voxel_metrics():
    truth = line(0, 0, 7)
    m = msseg2016_metrics(truth, np.zeros_like(truth), ONE_MM)
    assert m["SensL"] == 0.0 and math.isnan(m["PPVL"]) and math.isnan(m["F1"])   # 0 / 0 in the scorer
    assert (m["Dice"], m["Sensitivity"], m["RelativeVolumeError"]) == (0.0, 0.0, -100.0)
    assert math.isnan(m["PPV"])
    half = line(0, 0, 3)
    m = msseg2016_metrics(truth, half, ONE_MM)
    assert m["Dice"] == pytest.approx(2 * 4 / 12) and m["PPV"] == 1.0 and m["RelativeVolumeError"] == -50.0


def test_isbi2015_split_merged_and_empty_reference():
    line6 = volume((0, 0, slice(0, 6)))
    two_pieces = volume((0, 0, slice(0, 2)), (0, 0, slice(4, 6)))
    split = isbi2015_metrics(line6, two_pieces, ONE_MM)    # both pieces touch the lesion: no false lesion
    assert (split["LTPR"], split["LFPR"]) == (1.0, 0.0)
    merged = isbi2015_metrics(two_pieces, line6, ONE_MM)   # one prediction over two lesions finds both
    assert (merged["LTPR"], merged["LFPR"]) == (1.0, 0.0)
    m = isbi2015_metrics(volume(), volume((1, 1, 1)), ONE_MM)
    assert m["Dice"] == 0.0 and m["LFPR"] == 1.0 and m["PPV"] == 0.0
    assert all(math.isnan(m[k]) for k in ("TPR", "LTPR", "VD"))


def test_msseg2016_split_lesion_and_empty_reference_or_both():
    truth = line(0, 0, 11)                                 # 12 voxels
    halves = line(0, 0, 4) | line(0, 7, 11)                # 5 + 5 inside, none outside
    m = msseg2016_metrics(truth, halves, ONE_MM)
    assert (m["SensL"], m["PPVL"], m["F1"]) == (1.0, 1.0, 1.0)
    empty = np.zeros_like(truth)
    m = msseg2016_metrics(empty, truth, ONE_MM)            # no reference lesion: SensL 0 / 0
    assert math.isnan(m["SensL"]) and m["PPVL"] == 0.0 and math.isnan(m["F1"])
    assert math.isnan(m["Sensitivity"]) and math.isnan(m["RelativeVolumeError"])
    m = msseg2016_metrics(empty, empty, ONE_MM)
    assert all(math.isnan(m[k]) for k in ("Dice", "SensL", "PPVL", "F1"))


def test_msseg2016_small_predicted_lesions_neither_detect_nor_count():
    truth = line(0, 0, 7)
    specks = line(0, 0, 2) | line(0, 5, 7)                 # two 3-voxel (3 mm^3) predicted lesions: removed
    m = msseg2016_metrics(truth, specks, ONE_MM)
    assert m["SensL"] == 0.0 and math.isnan(m["PPVL"])     # no kept predicted lesion
    assert m["Dice"] == pytest.approx(2 * 6 / 14)          # voxel metrics use the unfiltered masks
