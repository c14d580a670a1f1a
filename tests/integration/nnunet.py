"""Running nnU-Net in integration tests: stock commands as subprocesses, or the same code in-process.

``cli`` / ``run`` run a command line as a user would, in an environment built from the export
lines ``nnunet_transfer env`` prints. ``train`` runs ``nnUNetv2_train``'s own code
(``nnunetv2.run.run_training.run_training``, after nnU-Net's trainer lookup through
``nnUNet_extTrainer``) in the test process: the same training without the ~10 s interpreter and
import start of a new process, for tests whose subject is a trainer rather than the command line.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import torch
from nnunetv2.run.run_training import run_training


def env_from_cli(root: Path) -> dict[str, str]:
    """The current environment with nnU-Net's folders under ``root`` and our trainers findable, set
    from ``nnunet_transfer env`` as a user would; CPU settings for tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(NNUNET_TRANSFER_HOME=str(root), nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")
    out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "env"], env=env, capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        key, value = line.removeprefix("export ").split("=", 1)
        env[key] = value.strip("'")
    return env


def run(env: dict[str, str], *cmd: str, ok: bool = True) -> subprocess.CompletedProcess:
    """Run a command line; with ``ok`` assert it succeeded (showing the end of its output otherwise)."""
    out = subprocess.run(list(cmd), env=env, capture_output=True, text=True)
    if ok:
        assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """``nnunet_transfer ARGS`` in a subprocess."""
    return run(env, sys.executable, "-m", "nnunet_transfer.cli", *args, ok=ok)


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by ``env`` inside the block."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def train(env: dict[str, str], dataset: str, configuration: str, fold: str, trainer: str, plans: str) -> None:
    """``nnUNetv2_train DATASET CONFIGURATION FOLD -tr TRAINER -p PLANS -device cpu``, in this process."""
    with environment(env):
        run_training(dataset, configuration, fold, trainer, plans, device=torch.device("cpu"))


def nnunet_checkpoint(path: Path, labels: dict[str, int] | None = None, channels: dict[str, str] | None = None,
                      seed: int = 0) -> None:
    """A checkpoint of another lab's 2D nnU-Net model as ``nnUNetTrainer.save_checkpoint`` writes it
    (``network_weights``, ``init_args`` with its plans, configuration and dataset.json, ...): a
    3-stage PlainConvUNet of its own plans, by default 1 channel (T1) and 3 classes."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    labels = labels or {"background": 0, "GM": 1, "WM": 2}
    channels = channels or {"0": "T1"}
    arch = {"n_stages": 3, "features_per_stage": [32, 64, 128], "conv_op": "torch.nn.modules.conv.Conv2d",
            "kernel_sizes": [[3, 3]] * 3, "strides": [[1, 1], [2, 2], [2, 2]], "n_conv_per_stage": [2, 2, 2],
            "n_conv_per_stage_decoder": [2, 2], "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
            "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True}}
    torch.manual_seed(seed)
    network = PlainConvUNet(len(channels), 3, [32, 64, 128], torch.nn.Conv2d, 3, [1, 2, 2], 2, len(labels), 2, True,
                            torch.nn.InstanceNorm2d, {"eps": 1e-5, "affine": True}, None, None, torch.nn.LeakyReLU,
                            {"inplace": True}, deep_supervision=True)
    plans = {"dataset_name": "Dataset300_Tissue", "plans_name": "nnUNetPlans",
             "configurations": {"2d": {"patch_size": [64, 64], "batch_size": 12, "spacing": [1.0, 1.0],
                                       "architecture": {"network_class_name": "dynamic_network_architectures."
                                                        "architectures.unet.PlainConvUNet", "arch_kwargs": arch,
                                                        "_kw_requires_import": ["conv_op", "norm_op", "nonlin"]}}}}
    dataset_json = {"channel_names": channels, "labels": labels, "numTraining": 40, "file_ending": ".nii.gz"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network_weights": network.state_dict(), "optimizer_state": {}, "grad_scaler_state": None,
                "logging": {}, "_best_ema": 0.8, "current_epoch": 1000,
                "init_args": {"plans": plans, "configuration": "2d", "fold": 0, "dataset_json": dataset_json,
                              "device": torch.device("cpu")},
                "trainer_name": "nnUNetTrainer", "inference_allowed_mirroring_axes": (0, 1)}, path)


def nnssl_checkpoint(path: Path, architecture: dict, patch_size: list[int], training_form: bool = True) -> None:
    """A checkpoint as nnssl writes it for a dynamic ``ResidualEncoderUNet`` plan (``architecture``:
    nnU-Net's block, 1 input channel): its training form (``AbstractBaseTrainer.save_checkpoint``)
    or the release form of ``add_adaptation_plan.py``, with a citation."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    network = get_network_from_plans(architecture["network_class_name"], architecture["arch_kwargs"],
                                     architecture["_kw_requires_import"], 1, 1, deep_supervision=False)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in network.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    plan = {"architecture_plans": {"arch_class_name": "ResidualEncoderUNet", "arch_kwargs": dict(architecture[
                "arch_kwargs"]), "arch_kwargs_requiring_import": ["conv_op", "norm_op", "nonlin"]},
            "pretrain_plan": {"dataset_name": "Dataset001_OpenMind", "plans_name": "nnsslPlans",
                              "configurations": {"onemmiso": {"spacing": [1, 1, 1], "patch_size": tuple(patch_size)}}},
            "pretrain_num_input_channels": 1, "recommended_downstream_patchsize": tuple(patch_size),
            "key_to_encoder": "encoder.stages", "key_to_stem": "encoder.stem",
            "keys_to_in_proj": ("encoder.stem.convs.0.conv", "encoder.stem.convs.0.all_modules.0"),
            "key_to_lpe": None}
    init_args = {"configuration_name": "onemmiso", "fold": 0, "device": torch.device("cpu"),
                 "pretrain_json": {"collection": ["/data/sub-001_T1w.nii.gz"]}}
    content = {"network_weights": network.state_dict(), "init_args": init_args, "trainer_name": "BaseMAETrainer",
               "nnssl_adaptation_plan": plan,
               "citations": [{"type": "pretraining", "name": "synthetic", "apa_citations": ["A test (2026)."]}]}
    if training_form:
        content.update(optimizer_state={}, grad_scaler_state=None, logging={}, _best_ema=None, current_epoch=1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)


def nnssl_primus_checkpoint(path: Path, pretrain_patch=(32, 32, 32), downstream_patch=(48, 48, 48),
                            training_form: bool = False, trainer: str = "BaseEvaMAETrainer", spacing=(1, 1, 1)):
    """A small Primus checkpoint in nnssl's exact format (see tests/nnssl_primus.py), pretrained at
    ``spacing``."""
    from tests.nnssl_primus import nnssl_primus_checkpoint as write
    return write(Path(path), pretrain_patch, downstream_patch, training_form, trainer, spacing=spacing)
