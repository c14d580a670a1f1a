"""Stock nnU-Net with our trainers on tiny demo data: plan -> pretrain -> attach -> fine-tune -> predict.

Every step is a subprocess as a user would type it, in an environment built from the export lines
that ``nnunet_transfer env`` prints.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from tests.integration.nnunet import cli, env_from_cli, run

# under pytest-xdist the module fixture is built once, on one worker
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_pretrain_finetune")]

SOURCE, TARGET, ANATOMY, NATURAL = "901", "911", "913", "904"
PLANS = "nnUNetTransferPlans"
FT_PLANS = "nnUNetTransferPlans_from_DemoMRISegSource"
SCHEDULE = ["--epochs", "2", "--iterations-per-epoch", "3", "--val-iterations", "1"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet")
    env = env_from_cli(root)
    size = DemoDataSize(spacing_mm=8.0, n_train=6, n_test=2, n_natural=4, natural_size=32)
    write_demo_datasets(env["nnUNet_raw"], size, seed=3, which=["mri_seg_source", "stroke", "anatomy",
                                                                   "natural_cls_source"], progress=False)
    cli(env, "plan", "-d", SOURCE, TARGET, "-c", "2d", "-np", "2", *SCHEDULE)
    run(env, "nnUNetv2_train", SOURCE, "2d", "all", "-tr", "nnUNetTrainerPretrainSegmentation", "-p", PLANS,
        "-device", "cpu")
    ckpt = (Path(env["nnUNet_results"]) / "Dataset901_DemoMRISegSource" /
            f"nnUNetTrainerPretrainSegmentation__{PLANS}__2d" / "fold_all" / "checkpoint_final.pth")
    # attach and fine-tune here, not in a test: tests that use the fine-tuned run may run in any order
    cli(env, "attach", str(ckpt), "-d", TARGET, "-p", PLANS)
    run(env, "nnUNetv2_train", TARGET, "2d", "all", "-tr", "nnUNetTrainerFinetune", "-p", FT_PLANS, "-device", "cpu")
    return env, ckpt


def _finetune_fold(env) -> Path:
    return Path(env["nnUNet_results"]) / "Dataset911_DemoStroke" / f"nnUNetTrainerFinetune__{FT_PLANS}__2d" / "fold_all"


def test_shared_plans_share_architecture_but_keep_normalisation(study):
    env, _ = study
    pre = Path(env["nnUNet_preprocessed"])
    src = json.loads((pre / "Dataset901_DemoMRISegSource" / f"{PLANS}.json").read_text())
    tgt = json.loads((pre / "Dataset911_DemoStroke" / f"{PLANS}.json").read_text())
    for key in ("architecture", "patch_size", "batch_size"):
        assert src["configurations"]["2d"][key] == tgt["configurations"]["2d"][key]
    assert tgt["training_schedule"] == {"num_epochs": 2, "num_iterations_per_epoch": 3,
                                        "num_val_iterations_per_epoch": 1}
    assert tgt["shared_plans"]["reference_dataset"] == "Dataset901_DemoMRISegSource"
    assert (pre / "Dataset911_DemoStroke" / "dataset.json").is_file()


def test_pretraining_checkpoint_is_self_describing_and_safe(study):
    _, ckpt = study
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    meta = data["nnunet_transfer"]
    assert meta["mode"] == "segmentation" and meta["domain"] == "mri"
    assert meta["source_dataset"] == "Dataset901_DemoMRISegSource" and meta["configuration"] == "2d"
    assert meta["input_channels"] == 1 and meta["channel_names"] == {"0": "T1"}
    assert meta["architecture"]["network_class_name"].endswith("PlainConvUNet")
    assert len(meta["patch_size"]) == 2 and meta["epochs_trained"] == 2
    json.dumps(meta)  # plain data


def test_finetune_on_target_with_other_labels_then_predict(study, tmp_path):
    env, ckpt = study
    plans = json.loads((Path(env["nnUNet_preprocessed"]) / "Dataset911_DemoStroke" / f"{FT_PLANS}.json").read_text())
    assert plans["transfer"]["checkpoint"] == str(ckpt) and plans["transfer"]["load"] == "encoder+decoder"
    assert plans["plans_name"] == FT_PLANS
    fold = _finetune_fold(env)
    report = json.loads((fold / "transfer_report.json").read_text())

    # the report accounts for every parameter of the target network nnU-Net builds from these plans
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    cfg = plans["configurations"]["2d"]["architecture"]
    net = get_network_from_plans(cfg["network_class_name"], cfg["arch_kwargs"], cfg["_kw_requires_import"], 1, 2,
                                 deep_supervision=True)
    expected = {n for n, _ in net.named_parameters()} | {n for n, _ in net.named_buffers()}
    names = [p["name"] for p in report["parameters"]]
    assert sorted(names) == sorted(expected)
    by_part = report["counts_by_part"]
    assert by_part["encoder"]["loaded"] > 0 and by_part["encoder"]["loaded"] == sum(by_part["encoder"].values())
    assert by_part["decoder"]["loaded"] == sum(by_part["decoder"].values())
    assert by_part["head"]["skipped"] == sum(by_part["head"].values())  # 4-class head never enters a 2-class target
    assert all(k.startswith("decoder.seg_layers") for k in report["unused_source_keys"])
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "TransferReport written" in log and "Final validation skipped" in log

    raw = Path(env["nnUNet_raw"]) / "Dataset911_DemoStroke"
    out = tmp_path / "pred"
    run(env, "nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(out), "-d", TARGET, "-c", "2d", "-f", "all",
        "-tr", "nnUNetTrainerFinetune", "-p", FT_PLANS, "-device", "cpu", "--disable_tta", "-npp", "1", "-nps", "1")
    images = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))
    assert len(images) == 2
    for image in images:
        pred = sitk.ReadImage(str(out / image.name.replace("_0000", "")))
        ref = sitk.ReadImage(str(image))
        assert pred.GetSize() == ref.GetSize() and np.allclose(pred.GetSpacing(), ref.GetSpacing())
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1}


def test_scratch_baseline_uses_the_same_plans_and_ignores_the_block(study):
    env, _ = study
    run(env, "nnUNetv2_train", TARGET, "2d", "all", "-tr", "nnUNetTrainerFromScratch", "-p", FT_PLANS,
        "-device", "cpu")
    fold = (Path(env["nnUNet_results"]) / "Dataset911_DemoStroke" / f"nnUNetTrainerFromScratch__{FT_PLANS}__2d"
            / "fold_all")
    assert (fold / "checkpoint_final.pth").is_file() and not (fold / "transfer_report.json").exists()
    assert "transfer' block is ignored" in next(fold.glob("training_log_*.txt")).read_text()


def test_refusals_are_one_message_and_write_nothing(study):
    env, ckpt = study
    pre = Path(env["nnUNet_preprocessed"])
    before = sorted(p.relative_to(pre) for p in pre.rglob("*.json"))
    out = cli(env, "plan-like-checkpoint", str(ckpt), "-d", ANATOMY, "-c", "3d_fullres", ok=False)
    assert out.returncode == 2 and "2D network (2d)" in out.stderr and "3d_fullres" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = cli(env, "plan-like-checkpoint", str(ckpt), "-d", NATURAL, "--channel-map", "auto", ok=False)
    assert out.returncode == 2 and "channel_map = 'auto': no target name" in out.stderr and "['T1']" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert sorted(p.relative_to(pre) for p in pre.rglob("*.json")) == before


def test_resuming_a_finetuning_run_does_not_transfer_again(study):
    env, _ = study
    fold = _finetune_fold(env)
    logs_before = set(fold.glob("training_log_*.txt"))
    run(env, "nnUNetv2_train", TARGET, "2d", "all", "-tr", "nnUNetTrainerFinetune", "-p", FT_PLANS, "-device", "cpu",
        "--c")
    new_logs = set(fold.glob("training_log_*.txt")) - logs_before
    assert new_logs and "TransferReport written" not in "".join(p.read_text() for p in new_logs)
