"""Self-supervised and 3D classification pretraining, each followed by a fine-tuning run from its
checkpoint (2D natural images and 3D MRI). Training runs nnUNetv2_train's own code in-process (the
trainers are the subject here; the command line is covered by test_pretrain_finetune)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from tests.integration.nnunet import cli, env_from_cli, train

# under pytest-xdist the module fixture is built once, on one worker
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_pretrain_ssl")]
SCHEDULE = ["--epochs", "1", "--iterations-per-epoch", "2", "--val-iterations", "1"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = env_from_cli(tmp_path_factory.mktemp("nnunet"))
    size = DemoDataSize(spacing_mm=8.0, n_train=4, n_test=1, n_natural=6, natural_size=32)
    write_demo_datasets(env["nnUNet_raw"], size, seed=13, which=[
        "mri_unlabeled", "mri_cls_source", "stroke", "natural_unlabeled", "natural_seg_source"], progress=False)
    cli(env, "plan", "-d", "911", "903", "902", "-c", "3d_fullres", "-np", "2", "-p", "Mri", *SCHEDULE)
    cli(env, "plan", "-d", "905", "906", "-c", "2d", "-np", "2", "-p", "Nat", *SCHEDULE)
    return env


def pretrain_then_finetune(env, source: str, target: str, cfg: str, plans: str, trainer: str) -> tuple[dict, dict]:
    train(env, source, cfg, "all", trainer, plans)
    results = Path(env["nnUNet_results"])
    fold = next(results.glob(f"Dataset{source}_*/{trainer}__{plans}__{cfg}/fold_all"))
    ckpt = fold / "checkpoint_final.pth"
    meta = torch.load(ckpt, map_location="cpu", weights_only=True)["nnunet_transfer"]
    cli(env, "attach", str(ckpt), "-d", target, "-p", plans, "-o", f"{plans}_{trainer[len('nnUNetTrainer'):]}")
    ft = f"{plans}_{trainer[len('nnUNetTrainer'):]}"
    train(env, target, cfg, "all", "nnUNetTrainerFinetune", ft)
    report = json.loads(next(results.glob(f"Dataset{target}_*/nnUNetTrainerFinetune__{ft}__{cfg}/fold_all"))
                        .joinpath("transfer_report.json").read_text())
    return meta, report


@pytest.mark.parametrize("trainer, pretext", [("nnUNetTrainerPretrainModelsGenesis", "models_genesis"),
                                              ("nnUNetTrainerPretrainMaskedImageModeling", "masked_image_modeling"),
                                              ("nnUNetTrainerPretrainContextRestoration", "context_restoration")])
def test_3d_mri_reconstruction_pretext(env, trainer, pretext):
    meta, report = pretrain_then_finetune(env, "903", "911", "3d_fullres", "Mri", trainer)
    assert meta["mode"] == "self-supervised" and meta["pretext"] == pretext
    by_part = report["counts_by_part"]
    assert by_part["encoder"]["loaded"] == sum(by_part["encoder"].values())
    assert by_part["decoder"]["loaded"] == sum(by_part["decoder"].values())  # the restoring decoder transfers


def test_3d_mri_classification(env):
    meta, report = pretrain_then_finetune(env, "902", "911", "3d_fullres", "Mri", "nnUNetTrainerPretrainClassification")
    assert meta["mode"] == "classification" and report["load"] == "encoder"
    assert "classification_head.weight" in report["unused_source_keys"]


@pytest.mark.parametrize("trainer, head", [("nnUNetTrainerPretrainSimCLR", "projection_head.0.weight"),
                                           ("nnUNetTrainerPretrainRotation", "classification_head.weight")])
def test_2d_natural_pretext_with_a_head(env, trainer, head):
    meta, report = pretrain_then_finetune(env, "906", "905", "2d", "Nat", trainer)
    assert meta["domain"] == "natural" and report["load"] == "encoder"
    assert head in report["unused_source_keys"]
    assert report["counts_by_part"]["encoder"]["loaded"] == sum(report["counts_by_part"]["encoder"].values())
