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
