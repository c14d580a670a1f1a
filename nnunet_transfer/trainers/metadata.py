"""The self-describing block a pretraining checkpoint carries (plain JSON-able data)."""
from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import nnunetv2
import torch

import nnunet_transfer
from nnunet_transfer.io import atomic_path, plain_data
from nnunet_transfer.transfer.checkpoint import METADATA_KEY, load_checkpoint

MRI_CHANNELS = {"t1", "t1w", "t2", "t2w", "flair", "pd", "mprage", "dwi", "adc", "mri"}
NATURAL_CHANNELS = {"r", "g", "b", "red", "green", "blue", "rgb_to_0_1"}


def guess_domain(dataset_json: dict) -> str:
    """``dataset.json``'s ``nnunet_transfer.domain`` if given, else a guess from the channel names."""
    declared = (dataset_json.get("nnunet_transfer") or {}).get("domain")
    if declared:
        return str(declared)
    names = {str(v).lower() for v in dataset_json.get("channel_names", dataset_json.get("modality", {})).values()}
    if names and names <= NATURAL_CHANNELS:
        return "natural"
    if names & MRI_CHANNELS:
        return "mri"
    return "unknown"


def build_metadata(trainer: Any, mode: str, pretext: str | None = None) -> dict[str, Any]:
    """Describe a pretraining run from its nnU-Net trainer (plans, configuration, dataset.json)."""
    cm, pm = trainer.configuration_manager, trainer.plans_manager
    arch = pm.plans["configurations"][trainer.configuration_name].get("architecture")
    if arch is None:  # configuration inherits its architecture: resolve through the manager
        arch = {"network_class_name": cm.network_arch_class_name,
                "arch_kwargs": cm.network_arch_init_kwargs,
                "_kw_requires_import": list(cm.network_arch_init_kwargs_req_import)}
    channels = trainer.dataset_json.get("channel_names", trainer.dataset_json.get("modality", {}))
    return {
        "format": 1,
        "mode": mode,
        "pretext": pretext,
        "source_dataset": pm.dataset_name,
        "domain": guess_domain(trainer.dataset_json),
        "input_channels": len(channels),
        "channel_names": {str(k): str(v) for k, v in channels.items()},
        "normalization_schemes": list(cm.normalization_schemes),
        "configuration": trainer.configuration_name,
        "plans_name": pm.plans_name,
        "architecture": arch,
        "patch_size": [int(i) for i in cm.patch_size],
        "batch_size": int(cm.batch_size),
        "spacing": [float(i) for i in cm.spacing],
        "labels": trainer.dataset_json.get("labels"),
        "trainer": trainer.__class__.__name__,
        "fold": trainer.fold,
        "epochs_trained": int(trainer.current_epoch) + 1,
        "nnunet_transfer_version": nnunet_transfer.__version__,
        "nnunetv2_version": getattr(nnunetv2, "__version__", None) or _dist_version("nnunetv2"),
    }


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def add_metadata_to_checkpoint(filename: str | os.PathLike, metadata: dict[str, Any]) -> None:
    """Rewrite the checkpoint nnU-Net just saved with our block added (temporary file + rename)."""
    checkpoint = load_checkpoint(filename)
    # numpy scalars in nnU-Net's training log -> Python numbers, so the file loads with weights_only
    checkpoint["logging"] = plain_data(checkpoint.get("logging"))
    checkpoint["_best_ema"] = plain_data(checkpoint.get("_best_ema"))
    checkpoint[METADATA_KEY] = metadata
    with atomic_path(filename) as tmp:
        torch.save(checkpoint, tmp)
