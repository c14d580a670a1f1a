"""Classification pretraining (2D natural images), then fine-tuning from it; training runs
nnUNetv2_train's own code in-process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from tests.integration.nnunet import cli, env_from_cli, train

# under pytest-xdist the module fixture is built once, on one worker
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_pretrain_classification")]
PLANS = "ClsPlans"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = env_from_cli(tmp_path_factory.mktemp("nnunet"))
    size = DemoDataSize(spacing_mm=8.0, n_train=4, n_test=1, n_natural=12, natural_size=32)
    write_demo_datasets(env["nnUNet_raw"], size, seed=11, which=["natural_cls_source", "natural_seg_source"],
                        progress=False)
    return env


def test_classification_pretraining_then_finetuning(env):
    cli(env, "plan", "-d", "904", "905", "-c", "2d", "-np", "2", "-p", PLANS, "--epochs", "2",
        "--iterations-per-epoch", "3", "--val-iterations", "2")
    pre = Path(env["nnUNet_preprocessed"]) / "Dataset904_DemoNaturalClsSource"
    assert (pre / "class_labels.json").is_file()  # copied by planning for training without raw data
    train(env, "904", "2d", "all", "nnUNetTrainerPretrainClassification", PLANS)
    fold = Path(env["nnUNet_results"]) / "Dataset904_DemoNaturalClsSource" / \
        f"nnUNetTrainerPretrainClassification__{PLANS}__2d" / "fold_all"
    report = json.loads((fold / "classification_report.json").read_text())
    assert report["n"] == 12 and 0 <= report["accuracy"] <= 1 and len(report["confusion_matrix"]) == \
        len(report["class_names"])
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "balanced accuracy" in log
    ckpt = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=True)
    meta = ckpt["nnunet_transfer"]
    assert meta["mode"] == "classification" and meta["class_names"] == report["class_names"]
    assert any(k.startswith("classification_head.") for k in ckpt["network_weights"])

    cli(env, "attach", str(fold / "checkpoint_final.pth"), "-d", "905", "-p", PLANS)
    ft = "ClsPlans_from_DemoNaturalClsSource"
    block = json.loads((Path(env["nnUNet_preprocessed"]) / "Dataset905_DemoNaturalSegSource" / f"{ft}.json")
                       .read_text())["transfer"]
    assert block["load"] == "encoder"  # the classifier's decoder never trained
    train(env, "905", "2d", "all", "nnUNetTrainerFinetune", ft)
    transfer = json.loads((Path(env["nnUNet_results"]) / "Dataset905_DemoNaturalSegSource" /
                           f"nnUNetTrainerFinetune__{ft}__2d" / "fold_all" / "transfer_report.json").read_text())
    assert transfer["counts_by_part"]["encoder"]["loaded"] == sum(transfer["counts_by_part"]["encoder"].values())
    assert all(p["status"] == "skipped" for p in transfer["parameters"] if p["part"] == "decoder")
    assert {"classification_head.weight", "classification_head.bias"} <= set(transfer["unused_source_keys"])
