"""The comparison table from evaluated runs: mean +- sd over folds, paired Wilcoxon against scratch."""
import math

import pandas as pd
import pytest

from nnunet_transfer.study.report import collect, comparison_table, markdown
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import evaluation_file, runs

STUDY = """
name = "s"
folds = [0, 1]
[[sources]]
dataset = 1
label = "mri seg"
[[targets]]
dataset = 3
label = "stroke"
lesions = true
"""


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY)
    study = load_study(path)
    for run in runs(study):
        gain = 0.0 if run.source is None else 0.1
        fold_shift = 0.02 * int(run.fold)
        rows = [{"case": f"c{i}", "mDice": 0.5 + 0.05 * i + gain + fold_shift, "mIoU": 0.4,
                 "lesion_TPR": 0.5 if run.source is None else 0.75} for i in range(6)]
        path = evaluation_file(study, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    return study


def test_table_means_sd_over_folds_and_paired_statistics(study):
    per_case = collect(study)
    assert len(per_case) == 2 * 2 * 6 and set(per_case["initialisation"]) == {"mri seg", "scratch"}
    assert set(per_case["train_size"]) == {"all"}
    table = comparison_table(study, per_case).set_index("initialisation")
    # fold means: scratch 0.625 (fold 0), 0.645 (fold 1); source +0.1
    assert table.loc["scratch", "stroke dice mean"] == pytest.approx(0.635)
    assert table.loc["scratch", "stroke dice sd"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))
    assert table.loc["mri seg", "stroke dice mean"] == pytest.approx(0.735)
    # every case is exactly 0.1 better: difference 0.1, interval [0.1, 0.1], exact test 2 / 2^6, a family of one
    assert table.loc["mri seg", "stroke dice diff"] == pytest.approx(0.1)
    assert (table.loc["mri seg", "stroke dice ci_low"], table.loc["mri seg", "stroke dice ci_high"]) == \
        pytest.approx((0.1, 0.1))
    assert table.loc["mri seg", "stroke dice p"] == pytest.approx(0.03125)
    assert table.loc["mri seg", "stroke dice p_holm"] == pytest.approx(0.03125)
    assert table.loc["mri seg", "stroke dice n"] == 6
    assert table.loc["mri seg", "stroke lesion_tpr mean"] == pytest.approx(0.75)
    assert math.isnan(table.loc["scratch", "stroke dice p"])
    assert table.loc["scratch", "stroke folds"] == 2


def test_markdown_cells_and_caption(study):
    table = comparison_table(study, collect(study))
    text = markdown(study, table, preface="Smoke test.")
    assert text.startswith("Smoke test.\n")
    assert ("| initialisation | stroke dice | Δ stroke dice [95 % CI] | p (Holm) | stroke lesion_tpr | "
            "Δ stroke lesion_tpr [95 % CI] | p (Holm) |") in text
    assert "| mri seg | 0.735 ± 0.014 | +0.100 [+0.100, +0.100] | 0.031 | 0.750 ± 0.000 | +0.250 [+0.250, +0.250] " \
           "| 0.031 |" in text
    assert "| scratch | 0.635 ± 0.014 |  |  | 0.500 ± 0.000 |  |  |" in text
    assert "n (paired test cases): stroke: 6; folds: stroke: 2; training seeds: 1." in text
    assert "Holm-corrected" in text and "none where n < 6" in text
    assert "training randomness is not measured" in text
    assert "###" not in text  # no training sizes: one block without a heading


def test_holm_over_the_sources_of_a_target_and_no_p_below_six(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace('[[targets]]', '[[sources]]\ndataset = 2\nlabel = "nat"\n[[targets]]')
                    .replace("folds = [0, 1]", "folds = [0]"))
    study = load_study(path)
    for run in runs(study):
        gain = {None: 0.0, "mri_seg": 0.1, "nat": 0.0}[run.source.key if run.source else None]
        n = 6
        rows = [{"case": f"c{i}", "mDice": 0.5 + 0.01 * i + gain + (0.002 * (-1) ** i if gain == 0 and run.source
                                                                        else 0), "lesion_TPR": 0.5}
                for i in range(n)]
        path = evaluation_file(study, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    table = comparison_table(study, collect(study)).set_index("initialisation")
    raw = table["stroke dice p"]
    assert raw["mri seg"] == pytest.approx(0.03125)
    # Holm over the two sources: the smaller p x 2, the larger x 1 (kept >= the smaller)
    assert table.loc["mri seg", "stroke dice p_holm"] == pytest.approx(min(1, 2 * min(raw["mri seg"], raw["nat"])))
    assert table.loc["nat", "stroke dice p_holm"] == pytest.approx(max(raw["nat"], 2 * raw["mri seg"]))
    # fewer than 6 cases: no p, and the reason
    for run in runs(study):
        evaluation = evaluation_file(study, run)
        pd.read_csv(evaluation).head(5).to_csv(evaluation, index=False)
    table = comparison_table(study, collect(study)).set_index("initialisation")
    assert math.isnan(table.loc["mri seg", "stroke dice p"]) and table.loc["mri seg", "stroke dice no_p"] == "n < 6"
    assert "| n < 6 |" in markdown(study, comparison_table(study, collect(study)))


def test_training_sizes_give_one_block_each_and_the_data_efficiency_figure(tmp_path):
    from nnunet_transfer.study.report import data_efficiency_figure
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("lesions = true", "lesions = true\ntrain_sizes = [4, 2]"))
    study = load_study(path)
    for run in runs(study):
        gain = (0.0 if run.source is None else 0.2) / run.size
        rows = [{"case": f"c{i}", "mDice": 0.5 + 0.05 * i + gain, "lesion_TPR": 0.5} for i in range(6)]
        path = evaluation_file(study, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    per_case = collect(study)
    table = comparison_table(study, per_case)
    assert table["train_size"].tolist() == ["2", "2", "4", "4"]
    diff = table.set_index(["train_size", "initialisation"])["stroke dice diff"]
    assert diff["2", "mri seg"] == pytest.approx(0.1) and diff["4", "mri seg"] == pytest.approx(0.05)
    text = markdown(study, table)
    assert text.index("### 2 training patients") < text.index("### 4 training patients")
    assert data_efficiency_figure(study, per_case, tmp_path / "eff.png")
    assert (tmp_path / "eff.png").stat().st_size > 1000


def test_missing_evaluations_are_an_error(tmp_path):
    from nnunet_transfer.errors import NnunetTransferError
    path = tmp_path / "s.toml"
    path.write_text(STUDY)
    with pytest.raises(NnunetTransferError, match="no evaluated run"):
        collect(load_study(path))


def _trained_plans(tmp_path, monkeypatch, study_text: str = STUDY):
    """A study whose every run has the plans.json nnU-Net copies into its model folder."""
    import json

    from nnunet_transfer.study.steps import activate, run_folder
    path = tmp_path / "s.toml"
    path.write_text(study_text.replace('name = "s"', 'name = "s"\nnnunet_root = "nn"'))
    study = load_study(path)
    for name in ("Dataset001_Src", "Dataset003_Stroke"):
        (tmp_path / "nn" / "nnUNet_raw" / name).mkdir(parents=True)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")  # restored after the test; activate() points them into nn/
    activate(study)
    for run in runs(study):
        plans = {"plans_name": "P", "configurations": {"3d_fullres": {"architecture": {"network_class_name": "U"},
                                                                      "patch_size": [16, 16, 16]}},
                 "training_schedule": {"num_epochs": 10}}
        if run.source is not None:
            plans |= {"plans_name": "P_from_x", "transfer": {"checkpoint": "c.pth", "load": "encoder+decoder"}}
        folder = run_folder(study, run).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plans.json").write_text(json.dumps(plans))
    return study


def test_fairness_refuses_an_arm_whose_schedule_was_edited(tmp_path, monkeypatch):
    import json

    from nnunet_transfer.errors import NnunetTransferError
    from nnunet_transfer.study.fairness import STATEMENT, check_fairness
    from nnunet_transfer.study.steps import run_folder
    study = _trained_plans(tmp_path, monkeypatch)
    assert check_fairness(study) == STATEMENT  # the transfer block and the plans name may differ
    edited = next(r for r in runs(study) if r.source is not None and r.fold == 1)
    plans_file = run_folder(study, edited).parent / "plans.json"
    plans = json.loads(plans_file.read_text())
    plans["training_schedule"]["num_epochs"] = 5  # a hand-edited arm
    plans_file.write_text(json.dumps(plans))
    with pytest.raises(NnunetTransferError, match=r"target stroke, fold 0: arm 'mri seg' was trained with other "
                                                  r"plans than scratch: 'training_schedule.num_epochs' is 5 there "
                                                  r"and 10 for scratch"):
        check_fairness(study)
    plans["training_schedule"] = {"num_epochs": 10, "seed": 1}  # another seed is not the same comparison either
    plans_file.write_text(json.dumps(plans))
    with pytest.raises(NnunetTransferError, match="'training_schedule.seed' is 1 there and '\\(missing\\)'"):
        check_fairness(study)


def _evaluations(study, dice=lambda run, i: 0.5 + 0.01 * i + (run.source is not None) * 0.02,
                 n_cases: int = 6) -> None:
    """An evaluation CSV for every run: ``dice(run, case index)`` per case, lesion TPR 0.5."""
    for run in runs(study):
        rows = [{"case": f"c{i}", "mDice": dice(run, i), "lesion_TPR": 0.5} for i in range(n_cases)]
        out = evaluation_file(study, run)
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)


def test_fairness_refuses_an_arm_evaluated_on_other_cases(tmp_path, monkeypatch):
    from nnunet_transfer.errors import NnunetTransferError
    from nnunet_transfer.study.fairness import check_fairness
    study = _trained_plans(tmp_path, monkeypatch)
    _evaluations(study)
    arm = next(r for r in runs(study) if r.source is not None)
    evaluation = evaluation_file(study, arm)
    pd.read_csv(evaluation).head(5).to_csv(evaluation, index=False)
    with pytest.raises(NnunetTransferError, match=r"arm 'mri seg' was evaluated on other test cases than scratch "
                                                  r"\(only the arm: none; only scratch: c5\)"):
        check_fairness(study, collect(study))


def test_write_report_states_fairness_and_each_rows_transfer(tmp_path, monkeypatch):
    from nnunet_transfer.study.report import write_report
    study = _trained_plans(tmp_path, monkeypatch)
    _evaluations(study)
    text = write_report(study)["table_md"].read_text()
    assert "Fairness (checked by `study report`)" in text
    assert "- **mri seg**: load encoder+decoder; strategy finetune" in text


def test_distances_are_marked_lower_is_better_and_get_their_own_panel(tmp_path):
    from nnunet_transfer.study.figures import _panels, bar_figure
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("lesions = true", 'lesions = true\nmetrics = ["lesion_f1", "hd95"]'))
    study = load_study(path)
    for run in runs(study):
        rows = [{"case": f"c{i}", "mDice": 0.6, "mIoU": 0.4, "lesion_F1": 0.5, "HD95": 8.0 - (run.source is not None)}
                for i in range(6)]
        out = evaluation_file(study, run)
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)
    table = comparison_table(study, collect(study))
    assert table.set_index("initialisation").loc["mri seg", "stroke hd95 diff"] == pytest.approx(-1.0)
    text = markdown(study, table)
    assert "| stroke hd95 (lower is better) | Δ stroke hd95 [95 % CI] |" in text
    assert "| stroke dice | Δ stroke dice [95 % CI] |" in text
    assert _panels(["stroke dice", "stroke lesion_f1", "stroke hd95"]) == [["stroke dice", "stroke lesion_f1"],
                                                                          ["stroke hd95"]]
    bar_figure(study, table, tmp_path / "bars.png")
    assert (tmp_path / "bars.png").stat().st_size > 1000


def test_seeds_pair_seed_and_case_and_show_the_between_seed_sd(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("folds = [0, 1]", "folds = [0]\nseeds = [0, 1, 2]"))
    study = load_study(path)
    seed_effect = {0: 0.0, 1: 0.03, 2: -0.03}  # the source's gain varies from one training to the next
    _evaluations(study, lambda run, i: 0.5 + 0.02 * i + (0.0 if run.source is None else 0.05 + seed_effect[run.seed])
                 + 0.001 * ((i * 7 + run.seed) % 3), n_cases=8)
    per_case = collect(study)
    assert sorted(set(per_case["seed"])) == [0, 1, 2] and len(per_case) == 2 * 3 * 8
    table = comparison_table(study, per_case).set_index("initialisation")
    row = table.loc["mri seg"]
    assert row["stroke dice seeds"] == 3
    assert row["stroke dice seed_sd"] == pytest.approx(0.03, abs=2e-3)  # SD of the per-seed means
    assert row["stroke dice diff"] == pytest.approx(0.05, abs=2e-3)
    # the seed-to-seed variation widens the interval well beyond the case-level one (which is ~0)
    assert row["stroke dice ci_high"] - row["stroke dice ci_low"] > 0.04
    # crossed t-test: seed variance dominates; 2 seed degrees of freedom, so p is far from tiny
    assert 0.01 < row["stroke dice p"] < 0.5 and row["stroke dice no_p"] == ""
    text = markdown(study, comparison_table(study, per_case))
    assert "training seeds: 3" in text and "between-seed SD" in text and "Satterthwaite" in text
    assert "| mri seg | 0.621 ± 0.030 |" in text


def test_two_seeds_give_an_interval_but_no_p(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("folds = [0, 1]", "folds = [0]\nseeds = [0, 5]"))
    study = load_study(path)
    _evaluations(study, lambda run, i: 0.5 + 0.02 * i + (run.source is not None) * 0.01 * (1 + run.seed), n_cases=8)
    row = comparison_table(study, collect(study)).set_index("initialisation").loc["mri seg"]
    assert math.isnan(row["stroke dice p"]) and row["stroke dice no_p"] == "seeds < 3"
    assert row["stroke dice ci_low"] <= row["stroke dice diff"] <= row["stroke dice ci_high"]
