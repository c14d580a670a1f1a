import pytest

from nnunet_transfer.diagnostics.findings import (activation_findings, curve_findings, findings, gradient_findings,
                                                  head_findings, loss_findings, ratio, tail_mean)
from tests.diagnostics.sample import sample_result


def test_alike_networks_give_no_finding():
    assert findings(sample_result()) == []


@pytest.mark.parametrize("transferred_sd, expected", [
    (4.8, "decoder stage 0 activations 8.0x the fresh network's SD (4.8 vs 0.6)."),
    (0.06, "decoder stage 0 activations 1/10.0 the fresh network's SD (0.06 vs 0.6)."),
    (1.8, None),  # 3x: inside the threshold
])
def test_activation_sd_threshold(transferred_sd, expected):
    stages = sample_result()["first_batch"]["stages"]
    stages[2]["transferred"]["sd"] = transferred_sd
    assert activation_findings(stages) == ([expected] if expected else [])


def test_mostly_clipped_stage_is_a_finding_only_where_the_fresh_one_is_not():
    stages = sample_result()["first_batch"]["stages"]
    stages[1]["transferred"]["nonpositive"] = 0.97
    assert activation_findings(stages) == [
        "encoder stage 1: 97.0 % of the activations are <= 0 after the nonlinearity (fresh network: 50.0 %)."]
    stages[1]["fresh"]["nonpositive"] = 0.96
    assert activation_findings(stages) == []
    stages[1]["transferred"]["nonpositive"], stages[1]["fresh"]["nonpositive"] = 0.63, 0.51  # 12 points more
    assert activation_findings(stages) == [
        "encoder stage 1: 63.0 % of the activations are <= 0 after the nonlinearity (fresh network: 51.0 %)."]
    stages[1]["transferred"]["nonpositive"] = 0.55  # 4 points: as between two initialisations
    assert activation_findings(stages) == []


def test_head_predicting_one_class_everywhere():
    head = sample_result()["first_batch"]["head"]
    head["transferred"]["predicted_fraction"] = [1.0, 0.0]
    assert head_findings(head) == [
        "head predicts class 0 (background) for 100.0 % of voxels at the first batch; the reference has 97.0 % "
        "background (fresh network: 60.0 %)."]
    head["transferred"]["reference_fraction"] = [1.0, 0.0]  # the batch is all background: predicting it is right
    assert head_findings(head) == []


def test_head_logit_scale():
    head = sample_result()["first_batch"]["head"]
    head["transferred"]["logit_sd"] = 12.0
    assert head_findings(head) == ["head logits 12.0x the fresh network's SD (12 vs 1)."]


def test_gradient_ratio_and_frozen_parts():
    mean = sample_result()["gradients"]["mean_by_part"]
    mean["decoder"]["transferred"] = 0.045 * 100
    mean["encoder"]["transferred"] = 0.0
    assert gradient_findings(mean, 2) == [
        "encoder received no gradient in the 2 iteration(s) (frozen by the strategy).",
        "decoder gradient norm 10.0x the fresh network's (mean over 2 iteration(s): 4.5 vs 0.45)."]
    mean["decoder"]["transferred"] = mean["decoder"]["fresh"] / 3.5  # a third of the fresh network's pace
    assert gradient_findings(mean, 2)[1] == ("decoder gradient norm 1/3.5 the fresh network's (mean over 2 "
                                             "iteration(s): 0.129 vs 0.45).")
    mean["decoder"]["transferred"] = mean["decoder"]["fresh"] / 2
    assert len(gradient_findings(mean, 2)) == 1


def test_loss_gap_over_the_last_quarter():
    assert loss_findings({"transferred": [1.0] * 6 + [0.9, 0.8], "fresh": [1.0] * 6 + [0.5, 0.6]}) == [
        "training loss over the last 2 iteration(s) is higher than the fresh network's (0.850 vs 0.550)."]
    assert loss_findings({"transferred": [0.5, 0.45], "fresh": [0.5, 0.4]}) == []
    assert tail_mean([None, None]) is None and tail_mean([1.0, None, 3.0]) == 3.0


def test_curves_against_the_baseline():
    curves = sample_result()["curves"]
    assert curve_findings(curves) == []
    curves["finetune"]["mean_fg_dice"] = [0.0, 0.0]
    curves["finetune"]["ema_fg_dice"] = [0.0, 0.0]
    assert curve_findings(curves) == [
        "the fine-tuning run's pseudo-Dice is 0 at every one of its 2 epoch(s).",
        "at epoch 1 the fine-tuning run's pseudo-Dice (moving average) is 0.000, the baseline's 0.120."]
    curves["baseline"] = None
    assert len(curve_findings(curves)) == 1


def test_ratio_without_a_denominator():
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None and ratio(2.0, 4.0) == 0.5


def test_numbers_that_diverged_are_said_not_compared():
    data = sample_result()
    data["first_batch"]["stages"][0]["transferred"].update(mean=None, sd=None)
    data["first_batch"]["head"]["transferred"]["logit_sd"] = None
    assert findings(data) == ["encoder stage 0 activations of the transferred network are not finite (NaN or inf).",
                              "head logits of the transferred network are not finite (NaN or inf)."]
