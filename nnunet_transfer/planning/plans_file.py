"""Plans files: read one, resolve a configuration's ``inherits_from`` chain, write one atomically."""
from __future__ import annotations

import os
import shutil
from copy import deepcopy
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json, write_json_atomic
from nnunet_transfer.layout import (CLASS_LABELS_FILE, DATASET_JSON, SPLITS_FILE, existing_plans, plans_path,
                                    preprocessed_dir, raw_dir)


def load_plans(name: str, plans_name: str) -> dict:
    """The plans ``plans_name`` of dataset ``name``; NnunetTransferError listing the existing plans if missing."""
    path = plans_path(name, plans_name)
    if not path.is_file():
        existing = existing_plans(name) if path.parent.is_dir() else []
        raise NnunetTransferError(
            f"Plans '{plans_name}' do not exist for {name} ({path}). Existing plans: "
            f"{', '.join(existing) if existing else 'none'}. Run `nnunet_transfer plan` first.")
    return read_json(path)


def resolved_configuration(plans: dict, cfg_name: str) -> dict:
    """A configuration dict with nnU-Net's ``inherits_from`` chain applied."""
    cfgs = plans["configurations"]
    if cfg_name not in cfgs:
        raise NnunetTransferError(f"Configuration '{cfg_name}' is not in plans '{plans.get('plans_name')}' of "
                                  f"{plans.get('dataset_name')}; available: {', '.join(cfgs)}.")
    cfg = deepcopy(cfgs[cfg_name])
    parent = cfg.pop("inherits_from", None)
    if parent:
        merged = resolved_configuration(plans, parent)
        merged.update(cfg)
        return merged
    return cfg


def write_plans(plans: dict, name: str) -> Path:
    """Write plans atomically and give the preprocessed folder the raw dataset's own files.

    Training needs dataset.json (and a classification source its class_labels.json) where only
    preprocessed data exist; nnU-Net's ``extract_fingerprint`` does not copy them. A converter's
    patient-level splits_final.json is copied only when the preprocessed folder has none: a split
    chosen there (or made by an earlier training) is kept.
    """
    raw, preprocessed = raw_dir(name), preprocessed_dir(name)
    preprocessed.mkdir(parents=True, exist_ok=True)
    for file in (DATASET_JSON, CLASS_LABELS_FILE, SPLITS_FILE):
        target = preprocessed / file
        if (raw / file).is_file() and not (file == SPLITS_FILE and target.is_file()):
            tmp = preprocessed / f".{file}.{os.getpid()}.tmp"
            shutil.copyfile(raw / file, tmp)
            os.replace(tmp, target)
    return write_json_atomic(plans, plans_path(name, plans["plans_name"]))
