"""The spacing rule of plan-like-checkpoint: parsing, the default per checkpoint kind, the spacing
each rule gives a configuration (transposed as nnU-Net transposes the data), and the plans it makes."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.spacing import (SpacingRule, apply_spacing_rule, configuration_spacing,
                                              normalization_note, parse_spacing_rule, resolve_spacing_rule,
                                              with_spacing)

# nnU-Net's plans of a target whose image axes (as nnU-Net reads them) are 2 x 2 x 3 mm: the 3 mm axis
# comes first after transpose_forward
PLANS = {"transpose_forward": [2, 0, 1], "transpose_backward": [1, 2, 0], "configurations": {
    "3d_fullres": {"spacing": [3.0, 2.0, 2.0], "median_image_size_in_voxels": [10.0, 16.0, 16.0]},
    "2d": {"spacing": [2.0, 2.0], "median_image_size_in_voxels": [16.0, 16.0]}}}
SAME = {"spacings": [[2.0, 2.0, 3.0]] * 3, "shapes_after_crop": [[16, 16, 10], [16, 18, 10], [16, 16, 12]]}


@pytest.mark.parametrize("value, expected", [
    (None, None), ("auto", None), (["auto"], None),
    ("checkpoint", SpacingRule("checkpoint")), (["nnunet"], SpacingRule("nnunet")), (["none"], SpacingRule("none")),
    (["1", "1", "1.5"], SpacingRule("fixed", (1.0, 1.0, 1.5))), ([1, 1, 2], SpacingRule("fixed", (1.0, 1.0, 2.0))),
    ("0.5, 0.5, 3", SpacingRule("fixed", (0.5, 0.5, 3.0))),
])
def test_spacing_values_parse(value, expected):
    assert parse_spacing_rule(value) == expected


@pytest.mark.parametrize("value", [["1", "1"], ["1", "1", "1", "1"], ["1", "-1", "1"], ["0", "1", "1"],
                                   ["1", "x", "1"], ["nan", "1", "1"], ["inf", "1", "1"], "fixed", ["checkpoints"],
                                   [True, 1, 1], 3])
def test_bad_spacing_values_are_refused_with_what_is_allowed(value):
    with pytest.raises(NnunetTransferError, match="--spacing takes checkpoint, nnunet, none or three positive"):
        parse_spacing_rule(value)


def test_default_is_the_pretraining_spacing_for_nnssl_and_nnunet_otherwise():
    nnssl = resolve_spacing_rule(None, [1, 1, 1], nnssl=True)
    assert (nnssl.rule, nnssl.requested, nnssl.pretraining_spacing) == ("checkpoint", "auto", [1.0, 1.0, 1.0])
    ours = resolve_spacing_rule(None, [1, 1, 1], nnssl=False)
    assert (ours.rule, ours.requested) == ("nnunet", "auto")
    noresample = resolve_spacing_rule(None, None, nnssl=True)
    assert noresample.rule == "none" and noresample.may_fall_back


def test_checkpoint_rule_needs_a_recorded_spacing_unless_nnssl_pretrained_without_one():
    assert resolve_spacing_rule(SpacingRule("checkpoint"), [1, 1, 1], nnssl=False).rule == "checkpoint"
    explicit = resolve_spacing_rule(SpacingRule("checkpoint"), None, nnssl=True)
    assert explicit.rule == "none" and not explicit.may_fall_back
    with pytest.raises(NnunetTransferError, match="c.pth records no pretraining spacing"):
        resolve_spacing_rule(SpacingRule("checkpoint"), None, nnssl=False, checkpoint_name="c.pth")
    for rule in ("nnunet", "none"):
        assert resolve_spacing_rule(SpacingRule(rule), None, nnssl=False).rule == rule
    fixed = resolve_spacing_rule(SpacingRule("fixed", (1.0, 2.0, 3.0)), [1, 1, 1], nnssl=True)
    assert fixed.rule == "fixed" and fixed.provenance() == {
        "spacing_rule": "fixed", "spacing_requested": "fixed", "pretraining_spacing": [1.0, 1.0, 1.0],
        "fixed_spacing": [1.0, 2.0, 3.0]}


def test_each_rule_gives_the_configuration_spacing_in_transposed_order():
    def spacing(rule, pretraining=(1, 1, 1), cfg="3d_fullres", fingerprint=SAME):
        resolved = resolve_spacing_rule(rule, pretraining, nnssl=True)
        return configuration_spacing(resolved, PLANS, cfg, fingerprint, "DatasetX")
    assert spacing(SpacingRule("nnunet")) is None
    assert spacing(SpacingRule("checkpoint"), (0.5, 1, 1)) == [0.5, 1.0, 1.0]
    # fixed: given in nnU-Net's image axis order, transposed like the data (the 3rd axis first)
    assert spacing(SpacingRule("fixed", (1.0, 1.5, 4.0))) == [4.0, 1.0, 1.5]
    assert spacing(SpacingRule("fixed", (1.0, 1.5, 4.0)), cfg="2d") == [1.0, 1.5]
    assert spacing(SpacingRule("none")) == [3.0, 2.0, 2.0]
    assert spacing(SpacingRule("none"), cfg="2d") == [2.0, 2.0]
    with pytest.raises(NnunetTransferError, match="has 3 values but the 2d configuration has 2"):
        spacing(SpacingRule("checkpoint"), cfg="2d")


def test_no_resampling_is_refused_when_cases_would_be_resampled():
    mixed = {"spacings": [[2.0, 2.0, 3.0], [2.0, 2.0, 3.0], [1.0, 1.0, 3.0]],
             "shapes_after_crop": [[16, 16, 10]] * 3}
    resolved = resolve_spacing_rule(SpacingRule("none"), None, nnssl=False)
    with pytest.raises(NnunetTransferError, match="2 different spacings .* 1 of 3 cases would be resampled"):
        configuration_spacing(resolved, PLANS, "3d_fullres", mixed, "DatasetX")
    # a through-plane difference does not matter in 2d: nnU-Net keeps each case's own there
    through = {"spacings": [[2.0, 2.0, 3.0], [2.0, 2.0, 5.0]], "shapes_after_crop": [[16, 16, 10]] * 2}
    assert configuration_spacing(resolved, PLANS, "2d", through, "DatasetX") == [2.0, 2.0]
    # a default none (nnssl noresample) falls back to nnU-Net's own spacing; an explicit one does not
    plans, applied = apply_spacing_rule(PLANS, "3d_fullres", resolve_spacing_rule(None, None, nnssl=True), mixed,
                                        "DatasetX")
    assert applied.rule == "nnunet" and "different spacings" in applied.reason and plans == PLANS
    with pytest.raises(NnunetTransferError, match="--spacing none"):
        apply_spacing_rule(PLANS, "3d_fullres", resolved, mixed, "DatasetX")


def test_plans_at_a_new_spacing_keep_their_median_size_consistent():
    plans = with_spacing(PLANS, "3d_fullres", [1.0, 1.0, 1.0], SAME)
    cfg = plans["configurations"]["3d_fullres"]
    # cases 10x16x16 (transposed) at 3x2x2 mm -> 30x32x32; the medians of 30/30/36, 32/32/32, 32/36/32
    assert cfg["spacing"] == [1.0, 1.0, 1.0] and cfg["median_image_size_in_voxels"] == [30.0, 32.0, 32.0]
    assert plans["transpose_forward"] == PLANS["transpose_forward"]
    assert PLANS["configurations"]["3d_fullres"]["spacing"] == [3.0, 2.0, 2.0]  # pure
    twod = with_spacing(PLANS, "2d", [1.0, 1.0], SAME)["configurations"]["2d"]
    assert twod["spacing"] == [1.0, 1.0] and twod["median_image_size_in_voxels"] == [32.0, 32.0]


def test_normalisation_is_shown_next_to_the_pretraining_s():
    assert normalization_note(["ZScoreNormalization"], ["ZScoreNormalization"]).endswith("as in the pretraining")
    assert "DIFFER" in normalization_note(["CTNormalization"], ["ZScoreNormalization"])
    assert "not recorded" in normalization_note(["ZScoreNormalization"], None)
