"""Attach a checkpoint to a target: a plans copy with a ``transfer`` block.

``nnUNetv2_train TARGET CONFIG FOLD -tr nnUNetTrainerFinetune -p <new plans>`` then needs no
extra flag. The copy keeps the ``data_identifier`` of every configuration, so the preprocessed
data of the original plans is reused.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.common import load_plans, plans_path, resolve_dataset, write_plans
from nnunet_transfer.planning.like_checkpoint import check_channels, describe_checkpoint
from nnunet_transfer.transfer.load import LOAD_PARTS

TRANSFER_KEY = "transfer"


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def default_output_plans(plans_name: str, source_dataset: str | None) -> str:
    tag = re.sub(r"^Dataset\d+_", "", source_dataset or "checkpoint")
    return f"{plans_name}_from_{re.sub(r'[^A-Za-z0-9]+', '', tag)}"


def attach(checkpoint: str | Path, target: int | str, plans_name: str, output_plans_name: str | None = None,
           load: str = "encoder+decoder", strict: bool = False, overwrite: bool = True) -> Path:
    """Write ``<output_plans_name>.json`` next to the target's plans with the transfer block.

    Raises NnunetTransferError for a missing plans file, a load rule we do not know, a
    checkpoint whose network cannot be shared with any configuration of the plans (2D vs 3D,
    channel count), or an output name containing ``__`` (nnU-Net splits folder names on it).
    """
    if load not in LOAD_PARTS:
        raise NnunetTransferError(f"Unknown --load {load!r}; choose one of {', '.join(LOAD_PARTS)}.")
    name = resolve_dataset(target)
    ckpt = describe_checkpoint(checkpoint)
    check_channels(ckpt, name)
    plans = load_plans(name, plans_name)
    dims = len(ckpt.configuration_dict["patch_size"])
    usable = [c for c, cfg in plans["configurations"].items()
              if "patch_size" in cfg and len(cfg["patch_size"]) == dims]
    if not usable:
        raise NnunetTransferError(
            f"Checkpoint {ckpt.path.name} holds a {dims}D network ({ckpt.configuration}) but plans '{plans_name}' of "
            f"{name} have no {dims}D configuration ({', '.join(plans['configurations'])}).")
    out_name = output_plans_name or default_output_plans(plans_name, ckpt.source_dataset)
    if "__" in out_name or not re.fullmatch(r"[A-Za-z0-9_\-.]+", out_name):
        raise NnunetTransferError(f"Plans name {out_name!r} must use letters, digits, '_', '-', '.' and no '__'.")
    if out_name == plans_name:
        raise NnunetTransferError("The plans copy needs a name of its own (-o); the original plans stay untouched.")
    new = dict(plans)
    new["plans_name"] = out_name
    new[TRANSFER_KEY] = {
        "checkpoint": str(ckpt.path),
        "checkpoint_sha256": sha256(ckpt.path),
        "source_dataset": ckpt.source_dataset,
        "source_configuration": ckpt.configuration,
        "configurations": usable,
        "load": load,
        "strict": bool(strict),
        "attached_to": plans_name,
    }
    if plans_path(name, out_name).exists() and not overwrite:
        raise NnunetTransferError(f"{plans_path(name, out_name)} exists; pass --overwrite to replace it.")
    return write_plans(new, name)
