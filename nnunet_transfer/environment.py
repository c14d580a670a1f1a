"""nnU-Net environment: data folders, trainer discovery and the environment of nnU-Net subprocesses.

nnU-Net finds trainers outside its own package through ``nnUNet_extTrainer`` (nnunetv2 >= 2.8).
It imports every module of that folder as a *top-level* module and drops it from ``sys.modules``
after the lookup, so the folder we point it at (``nnunet_transfer/nnunet_ext``) holds a single
module that re-exports our trainer classes from the installed package.
"""
from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path

from nnunet_transfer.layout import NNUNET_FOLDERS, default_data_root

EXT_TRAINER_DIR = Path(__file__).resolve().parent / "nnunet_ext"


def ext_trainer_value(current: str | None = None) -> str:
    """Value for ``nnUNet_extTrainer`` that contains our trainer folder (kept first) plus any
    folders already in ``current``."""
    ours = str(EXT_TRAINER_DIR)
    parts = [p for p in (current or "").split(os.pathsep) if p and p != ours]
    return os.pathsep.join([ours] + parts)


def export_lines(environ: dict[str, str] | None = None) -> list[str]:
    """The ``export`` lines a shell needs to use our trainers with stock nnU-Net commands.

    ``nnUNet_extTrainer`` is always printed; ``nnUNet_raw`` / ``_preprocessed`` / ``_results``
    only when unset, pointing into :func:`default_data_root`.
    """
    environ = dict(os.environ if environ is None else environ)
    lines = [f"export nnUNet_extTrainer={shlex.quote(ext_trainer_value(environ.get('nnUNet_extTrainer')))}"]
    root = default_data_root()
    for name in NNUNET_FOLDERS:
        if not environ.get(name):
            lines.append(f"export {name}={shlex.quote(str(root / name))}")
    return lines


def nnunet_subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an nnU-Net subprocess: the current one with our trainer folder added to
    ``nnUNet_extTrainer`` and ``extra`` applied on top."""
    env = dict(os.environ)
    env["nnUNet_extTrainer"] = ext_trainer_value(env.get("nnUNet_extTrainer"))
    # With libgomp's default wait policy, every parallel torch op on a small CPU machine can stall
    # for a scheduler tick; measured on 2 cores: 3.9 s vs 0.1 s per nnU-Net 2d training step.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(extra or {})
    return env


@contextlib.contextmanager
def temporary_environment(changes: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with ``changes`` set inside the block; each changed variable is
    restored afterwards (removed again where it was unset)."""
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
