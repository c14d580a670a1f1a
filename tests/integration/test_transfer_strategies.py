"""Stock nnU-Net with the transfer rules and strategies on tiny demo data.

1. A 2D RGB natural-image checkpoint (pretrained on the 2d_twin of a 3D plan) fine-tuned on a 3D
   T1 target: inflation and input channels, then nnUNetv2_predict.
2. A 2D T1 checkpoint into a 2D T1 target with the frozen-encoder strategy, killed after the
   encoder was unfrozen and resumed with --c.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import SimpleITK as sitk
import torch

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from nnunet_transfer.transfer.checkpoint import load_checkpoint
from tests.integration.test_pretrain_finetune import _env_from_cli, cli, run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = _env_from_cli(tmp_path_factory.mktemp("nnunet"))
    size = DemoDataSize(spacing_mm=8.0, n_train=6, n_test=2, n_natural=6, natural_size=32)
    write_demo_datasets(env["nnUNet_raw"], size, seed=5, which=["mri_seg_source", "stroke", "anatomy",
                                                                   "natural_seg_source"], progress=False)
    return env


def _fold(env, dataset, trainer, plans, cfg):
    return Path(env["nnUNet_results"]) / dataset / f"{trainer}__{plans}__{cfg}" / "fold_all"


def test_rgb_2d_natural_checkpoint_into_3d_t1_target(env, tmp_path):
    cli(env, "plan", "-d", "913", "905", "-c", "3d_fullres", "--twin-2d", "-np", "2", "--epochs", "2",
        "--iterations-per-epoch", "2", "--val-iterations", "1")
    pre = Path(env["nnUNet_preprocessed"])
    natural = json.loads((pre / "Dataset905_DemoNaturalSegSource" / "nnUNetTransferPlans.json").read_text())
    assert list(natural["configurations"]) == ["2d_twin"]
    run(env, "nnUNetv2_train", "905", "2d_twin", "all", "-tr", "nnUNetTrainerPretrainSegmentation",
        "-p", "nnUNetTransferPlans", "-device", "cpu")
    ckpt = _fold(env, "Dataset905_DemoNaturalSegSource", "nnUNetTrainerPretrainSegmentation", "nnUNetTransferPlans",
                 "2d_twin") / "checkpoint_final.pth"
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["nnunet_transfer"]["domain"] == "natural"

    preview = cli(env, "preview", str(ckpt), "-d", "913", "-c", "3d_fullres", "--input-channels", "mean")
    assert "input channels 3->1 (mean)" in preview.stdout and "inflated 2D->3D" in preview.stdout
    cli(env, "attach", str(ckpt), "-d", "913", "--input-channels", "sum")
    plans = "nnUNetTransferPlans_from_DemoNaturalSegSource"
    run(env, "nnUNetv2_train", "913", "3d_fullres", "all", "-tr", "nnUNetTrainerFinetune", "-p", plans,
        "-device", "cpu")
    report = json.loads((_fold(env, "Dataset913_DemoAnatomy", "nnUNetTrainerFinetune", plans, "3d_fullres")
                         / "transfer_report.json").read_text())
    params = report["parameters"]
    assert len({p["name"] for p in params}) == len(params)
    stem = next(p for p in params if p["name"] == "encoder.stages.0.0.convs.0.conv.weight")
    assert stem["status"] == "adapted" and "inflated 2D->3D (average" in stem["how"]
    assert "input channels 3->1 (sum)" in stem["how"]
    convs = [p for p in params if len(p["shape"]) == 5 and p["part"] in ("encoder", "decoder")]
    assert convs and all(p["status"] == "adapted" for p in convs)

    raw = Path(env["nnUNet_raw"]) / "Dataset913_DemoAnatomy"
    out = tmp_path / "pred"
    run(env, "nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(out), "-d", "913", "-c", "3d_fullres",
        "-f", "all", "-tr", "nnUNetTrainerFinetune", "-p", plans, "-device", "cpu", "--disable_tta",
        "-npp", "1", "-nps", "1")
    for image in (raw / "imagesTs").glob("*_0000.nii.gz"):
        assert sitk.ReadImage(str(out / image.name.replace("_0000", ""))).GetSize() == \
            sitk.ReadImage(str(image)).GetSize()


def test_frozen_encoder_resumes_after_unfreezing(env):
    cli(env, "plan", "-d", "901", "911", "-c", "2d", "-np", "2", "-p", "FrozenPlans", "--epochs", "10",
        "--iterations-per-epoch", "3", "--val-iterations", "1", "--save-every", "1")
    run(env, "nnUNetv2_train", "901", "2d", "all", "-tr", "nnUNetTrainerPretrainSegmentation", "-p", "FrozenPlans",
        "-device", "cpu")
    ckpt = _fold(env, "Dataset901_DemoMRISegSource", "nnUNetTrainerPretrainSegmentation", "FrozenPlans",
                 "2d") / "checkpoint_final.pth"
    cli(env, "attach", str(ckpt), "-d", "911", "-p", "FrozenPlans", "-o", "FrozenPlansFt",
        "--frozen-encoder-epochs", "2", "--warmup-epochs", "1")
    fold = _fold(env, "Dataset911_DemoStroke", "nnUNetTrainerFinetuneFrozenEncoder", "FrozenPlansFt", "2d")
    cmd = ["nnUNetv2_train", "911", "2d", "all", "-tr", "nnUNetTrainerFinetuneFrozenEncoder", "-p", "FrozenPlansFt",
           "-device", "cpu"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    snapshots = {}
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and max(snapshots, default=0) < 3:
        try:
            latest = load_checkpoint(fold / "checkpoint_latest.pth")
            snapshots[latest["current_epoch"]] = latest
        except Exception:  # not written yet, or being written
            pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert max(snapshots, default=0) >= 3, "the run ended before it could be interrupted after unfreezing"
    source = load_checkpoint(ckpt)["network_weights"]
    key = "encoder.stages.0.0.convs.0.conv.weight"
    if 2 in snapshots:  # epochs 0 and 1 done: the encoder is still exactly the pretrained one
        assert torch.equal(snapshots[2]["network_weights"][key], source[key])
    resumed_from = snapshots[max(snapshots)]
    assert not torch.equal(resumed_from["network_weights"][key], source[key])  # trained after unfreezing
    assert len(resumed_from["optimizer_state"]["param_groups"]) == 2

    logs_before = set(fold.glob("training_log_*.txt"))
    run(env, *cmd, "--c")
    log = "".join(p.read_text() for p in set(fold.glob("training_log_*.txt")) - logs_before)
    assert "TransferReport written" not in log and "frozen_encoder_epochs=2" in log
    assert re.search(rf"Epoch {resumed_from['current_epoch']}\s*$", log, re.M)
    assert not re.search(r"Epoch 0\s*$", log, re.M)
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 10
    group1 = final["optimizer_state"]["param_groups"][1]
    poly = 0.01 * (1 - 9 / 10) ** 0.9
    assert group1["lr"] == pytest.approx(poly)  # encoder at the full poly rate after the warm-up
