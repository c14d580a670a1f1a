"""``nnunet_transfer diagnose`` on a real fine-tuning: plan -> pretrain -> attach -> fine-tune and
scratch (nnU-Net's own training code, in this process) -> diagnose (a subprocess, as a user runs it)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from tests.integration.nnunet import cli, env_from_cli, train

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_diagnose")]

SOURCE, TARGET = "901", "911"
PLANS = "nnUNetTransferPlans"
FT_PLANS = "nnUNetTransferPlans_from_DemoMRISegSource"
SCHEDULE = ["--epochs", "2", "--iterations-per-epoch", "3", "--val-iterations", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A fine-tuning run and its from-scratch baseline on the stroke target (fold all), and the
    diagnose command's result on them."""
    root = tmp_path_factory.mktemp("nnunet")
    env = env_from_cli(root)
    size = DemoDataSize(spacing_mm=8.0, n_train=6, n_test=2, n_natural=4, natural_size=32)
    write_demo_datasets(env["nnUNet_raw"], size, seed=3, which=["mri_seg_source", "stroke"], progress=False)
    cli(env, "plan", "-d", SOURCE, TARGET, "-c", "2d", "-np", "1", *SCHEDULE)
    train(env, SOURCE, "2d", "all", "nnUNetTrainerPretrainSegmentation", PLANS)
    ckpt = (Path(env["nnUNet_results"]) / "Dataset901_DemoMRISegSource" /
            f"nnUNetTrainerPretrainSegmentation__{PLANS}__2d" / "fold_all" / "checkpoint_final.pth")
    cli(env, "attach", str(ckpt), "-d", TARGET, "-p", PLANS)
    train(env, TARGET, "2d", "all", "nnUNetTrainerFinetune", FT_PLANS)
    train(env, TARGET, "2d", "all", "nnUNetTrainerFromScratch", FT_PLANS)
    fold = Path(env["nnUNet_results"]) / "Dataset911_DemoStroke" / f"nnUNetTrainerFinetune__{FT_PLANS}__2d" / "fold_all"
    before = sorted(p.name for p in fold.iterdir())
    out = cli(env, "diagnose", TARGET, "-p", FT_PLANS, "-f", "all", "--device", "cpu")
    return env, fold, before, out


def test_diagnose_writes_its_files_and_leaves_the_run_as_it_was(runs):
    env, fold, before, out = runs
    folder = fold / "diagnostics"
    assert sorted(p.name for p in folder.iterdir()) == ["diagnostics.json", "diagnostics.md", "diagnostics.png",
                                                         "transfer_report.json"]
    assert f"markdown: {folder / 'diagnostics.md'}" in out.stdout and "findings" in out.stdout
    # the trainer's log and TransferReport went to a scratch folder: the run's own files are untouched
    assert sorted(p.name for p in fold.iterdir()) == sorted(before + ["diagnostics"])
    assert (folder / "diagnostics.png").read_bytes()[:4] == b"\x89PNG"
    text = (folder / "diagnostics.md").read_text()
    for heading in ("## Findings", "## Activations at the first training batch", "## Head at the first training batch",
                    "## Gradient norms over the first 3 iteration(s)", "## Curves per epoch"):
        assert heading in text


def test_activations_differ_where_weights_were_loaded(runs):
    _, fold, _, _ = runs
    data = json.loads((fold / "diagnostics" / "diagnostics.json").read_text())
    assert data["configuration"] == "2d" and data["trainer"] == "nnUNetTrainerFinetune"  # the only one trained
    stages = {s["stage"]: s for s in data["first_batch"]["stages"]}
    assert list(stages) == ["encoder stage 0", "encoder stage 1", "encoder stage 2", "decoder stage 0",
                            "decoder stage 1"]
    for name, stage in stages.items():
        # encoder+decoder were loaded (heads never): every stage's weights came from the checkpoint
        assert stage["weights"]["transferred"] == stage["weights"]["entries"] > 0, name
        assert stage["transferred"]["mean"] != stage["fresh"]["mean"], name
        assert stage["transferred"]["sd"] > 0 and stage["fresh"]["sd"] > 0
    assert data["transfer"]["weights_by_group"]["head"] == {"transferred": 0, "entries": 4}


def test_head_statistics_are_probability_distributions(runs):
    _, fold, _, _ = runs
    data = json.loads((fold / "diagnostics" / "diagnostics.json").read_text())
    for arm in ("transferred", "fresh"):
        head = data["first_batch"]["head"][arm]
        assert head["classes"] == ["background", "lesion"]
        assert sum(head["mean_probability"]) == pytest.approx(1.0)
        assert sum(head["predicted_fraction"]) == pytest.approx(1.0)
        assert sum(head["reference_fraction"]) == pytest.approx(1.0)
        assert all(0 <= p <= 1 for p in head["mean_probability"] + head["predicted_fraction"])
    # same batch, same network, training mode: the first-batch loss is the first training step's loss
    for arm in ("transferred", "fresh"):
        assert data["first_batch"]["loss"][arm] == pytest.approx(data["gradients"]["loss"][arm][0], rel=1e-5)


def test_gradient_norms_are_finite_and_positive_for_every_part(runs):
    _, fold, _, _ = runs
    g = json.loads((fold / "diagnostics" / "diagnostics.json").read_text())["gradients"]
    assert g["iterations"] == 3 == g["iterations_per_epoch"]  # default: one epoch of the plans' schedule
    for arm in ("transferred", "fresh"):
        assert set(g["norms"][arm]) == {"encoder stage 0", "encoder stage 1", "encoder stage 2", "decoder stage 0",
                                        "decoder stage 1", "head"}
        for values in list(g["norms"][arm].values()) + list(g["norms_by_part"][arm].values()):
            assert len(values) == 3 and all(v is not None and math.isfinite(v) and v > 0 for v in values)
        assert len(g["loss"][arm]) == 3 and all(math.isfinite(v) for v in g["loss"][arm])


def test_curves_of_both_runs(runs):
    _, fold, _, _ = runs
    curves = json.loads((fold / "diagnostics" / "diagnostics.json").read_text())["curves"]
    for key, trainer in (("finetune", "nnUNetTrainerFinetune"), ("baseline", "nnUNetTrainerFromScratch")):
        c = curves[key]
        assert c["finished"] and c["epochs"] == 2 and f"{trainer}__{FT_PLANS}__2d" in c["checkpoint"]
        for series in ("train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice"):
            assert len(c[series]) == 2 and all(v is not None for v in c[series])


def test_plans_without_a_transfer_block_are_one_error(runs):
    env, _, _, _ = runs
    out = cli(env, "diagnose", TARGET, "-p", PLANS, "-c", "2d", "-f", "all", ok=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert f"Plans '{PLANS}' of Dataset911_DemoStroke have no 'transfer' block" in out.stderr
    assert "nnunet_transfer attach CHECKPOINT" in out.stderr


def test_a_trainer_that_does_not_fine_tune_is_one_error(runs, capsys):
    env, fold, _, _ = runs
    from nnunet_transfer.cli import main
    from tests.integration.nnunet import environment
    with environment(env):  # in this process: the lookup and construction are nnU-Net's, the message ours
        code = main(["diagnose", TARGET, "-p", FT_PLANS, "-c", "2d", "-f", "all", "-tr", "nnUNetTrainerFromScratch",
                     "-o", str(fold.parent / "never")])
    err = capsys.readouterr().err
    assert code == 2 and "nnUNetTrainerFromScratch does not fine-tune from the plans' transfer block" in err
    assert not (fold.parent / "never").exists() or not any((fold.parent / "never").iterdir())
