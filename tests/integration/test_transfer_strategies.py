"""A fine-tuning strategy through stock nnUNetv2_train on tiny demo data: a 2D T1 checkpoint into a
2D T1 target with the frozen-encoder strategy, killed after the encoder was unfrozen and resumed
with --c. (The 2D RGB checkpoint inflated into a 3D T1 target runs in the natural-images how-to,
checked by tests/integration/test_howto.py.)"""
from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from nnunet_transfer.transfer.checkpoint import load_checkpoint
from tests.integration.nnunet import cli, env_from_cli, run

EXT_TRAINERS = Path(__file__).resolve().parent / "ext_trainers"
sys.path.insert(0, str(EXT_TRAINERS))
from nnunet_transfer_test_trainers import RECORD_FILE, STEM, digest  # noqa: E402
sys.path.remove(str(EXT_TRAINERS))

# under pytest-xdist the module fixture is built once, on one worker
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_transfer_strategies")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = env_from_cli(tmp_path_factory.mktemp("nnunet"))
    size = DemoDataSize(spacing_mm=8.0, n_train=6, n_test=2, n_natural=6, natural_size=32)
    write_demo_datasets(env["nnUNet_raw"], size, seed=5, which=["mri_seg_source", "stroke"], progress=False)
    return env


def _fold(env, dataset, trainer, plans, cfg):
    return Path(env["nnUNet_results"]) / dataset / f"{trainer}__{plans}__{cfg}" / "fold_all"


def test_frozen_encoder_resumes_after_unfreezing(env):
    """Frozen for 2 epochs, killed right after epoch 3 (by the recording trainer itself, at the epoch
    boundary), resumed with --c: the encoder is exactly the pretrained one while frozen, trains
    after unfreezing, and the resumed run continues the same schedule."""
    cli(env, "plan", "-d", "901", "911", "-c", "2d", "-np", "2", "-p", "FrozenPlans", "--epochs", "6",
        "--iterations-per-epoch", "3", "--val-iterations", "1", "--save-every", "1")
    run(env, "nnUNetv2_train", "901", "2d", "all", "-tr", "nnUNetTrainerPretrainSegmentation", "-p", "FrozenPlans",
        "-device", "cpu")
    ckpt = _fold(env, "Dataset901_DemoMRISegSource", "nnUNetTrainerPretrainSegmentation", "FrozenPlans",
                 "2d") / "checkpoint_final.pth"
    cli(env, "attach", str(ckpt), "-d", "911", "-p", "FrozenPlans", "-o", "FrozenPlansFt",
        "--frozen-encoder-epochs", "2", "--warmup-epochs", "1")
    trainer = "nnUNetTrainerFinetuneFrozenEncoderRecorded"
    fold = _fold(env, "Dataset911_DemoStroke", trainer, "FrozenPlansFt", "2d")
    env = {**env, "nnUNet_extTrainer": env["nnUNet_extTrainer"] + os.pathsep + str(EXT_TRAINERS)}
    cmd = ["nnUNetv2_train", "911", "2d", "all", "-tr", trainer, "-p", "FrozenPlansFt", "-device", "cpu"]
    killed = run({**env, "NNUNET_TRANSFER_TEST_KILL_AFTER_EPOCH": "3"}, *cmd, ok=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    source = digest(load_checkpoint(ckpt)["network_weights"][STEM])
    records = [json.loads(line) for line in (fold / RECORD_FILE).read_text().splitlines()]
    assert [r["epochs_done"] for r in records] == [1, 2, 3]
    assert [r["stem"] == source for r in records] == [True, True, False]  # frozen, frozen, trained
    latest = load_checkpoint(fold / "checkpoint_latest.pth")
    assert latest["current_epoch"] == 3 and digest(latest["network_weights"][STEM]) == records[-1]["stem"]
    assert len(latest["optimizer_state"]["param_groups"]) == 2

    logs_before = set(fold.glob("training_log_*.txt"))
    run(env, *cmd, "--c")
    log = "".join(p.read_text() for p in set(fold.glob("training_log_*.txt")) - logs_before)
    assert "TransferReport written" not in log and "frozen_encoder_epochs=2" in log
    assert re.search(r"Epoch 3\s*$", log, re.M) and not re.search(r"Epoch [0-2]\s*$", log, re.M)
    records = [json.loads(line) for line in (fold / RECORD_FILE).read_text().splitlines()]
    assert [r["epochs_done"] for r in records] == [1, 2, 3, 4, 5, 6]
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 6 and digest(final["network_weights"][STEM]) == records[-1]["stem"]
    group1 = final["optimizer_state"]["param_groups"][1]
    assert group1["lr"] == pytest.approx(0.01 * (1 - 5 / 6) ** 0.9)  # encoder at the full poly rate after warm-up
