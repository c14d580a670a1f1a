"""Dataset lookup, planning without side effects, plans writing and preprocessing (nnU-Net API)."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
from copy import deepcopy
from pathlib import Path
from typing import Iterator

from nnunet_transfer.environment import require_nnunet_folders
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json, write_json_atomic

SHARED_KEYS = ("architecture", "patch_size", "batch_size")


def available_datasets() -> list[str]:
    """Dataset folder names in nnUNet_raw and nnUNet_preprocessed."""
    names = set()
    for var in ("nnUNet_raw", "nnUNet_preprocessed"):
        root = os.environ.get(var)
        if root and os.path.isdir(root):
            names |= {d for d in os.listdir(root) if d.startswith("Dataset") and os.path.isdir(os.path.join(root, d))}
    return sorted(names)


def resolve_dataset(dataset: int | str) -> str:
    """``DatasetXXX_Name`` for an id (``5``, ``"005"``) or a name; NnunetTransferError if unknown."""
    require_nnunet_folders("nnUNet_raw", "nnUNet_preprocessed")
    names = available_datasets()
    text = str(dataset)
    if text.startswith("Dataset"):
        if text in names:
            return text
    else:
        try:
            number = int(text)
        except ValueError:
            raise NnunetTransferError(f"Dataset {text!r} is neither an id (e.g. 5) nor a name like Dataset005_X.")
        matches = [n for n in names if n[len("Dataset"):len("Dataset") + 3] == f"{number:03d}"]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NnunetTransferError(f"Dataset id {number} is ambiguous: {', '.join(matches)}. Use the full name.")
    raise NnunetTransferError(
        f"Unknown dataset {text!r}: not found in nnUNet_raw ({os.environ.get('nnUNet_raw')}) or nnUNet_preprocessed. "
        f"Available: {', '.join(names) if names else 'none'}.")


def channel_names(name: str) -> dict[str, str]:
    """The ``channel_names`` (or legacy ``modality``) of a raw dataset's dataset.json."""
    path = require_nnunet_folders("nnUNet_raw")["nnUNet_raw"] / name / "dataset.json"
    if not path.is_file():
        raise NnunetTransferError(f"{path} is missing: {name} is not an nnU-Net raw dataset.")
    data = read_json(path)
    return {str(k): str(v) for k, v in data.get("channel_names", data.get("modality", {})).items()}


def dataset_id(name: str) -> int:
    return int(name[len("Dataset"):len("Dataset") + 3])


def preprocessed_dir(name: str) -> Path:
    return require_nnunet_folders("nnUNet_preprocessed")["nnUNet_preprocessed"] / name


def plans_path(name: str, plans_name: str) -> Path:
    return preprocessed_dir(name) / f"{plans_name}.json"


def load_plans(name: str, plans_name: str) -> dict:
    path = plans_path(name, plans_name)
    if not path.is_file():
        existing = sorted(p.stem for p in path.parent.glob("*.json")
                          if p.stem not in ("dataset", "dataset_fingerprint", "splits_final"))
        raise NnunetTransferError(
            f"Plans '{plans_name}' do not exist for {name} ({path}). Existing plans: "
            f"{', '.join(existing) if existing else 'none'}. Run `nnunet_transfer plan` first.")
    return read_json(path)


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Silence nnU-Net's prints of whole plans dicts (stdout); its progress bars (stderr) stay."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def ensure_fingerprint(name: str, num_processes: int, clean: bool = False, verify: bool = False) -> None:
    """Extract nnU-Net's dataset fingerprint unless it exists (or ``clean``)."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
    raw = require_nnunet_folders("nnUNet_raw")["nnUNet_raw"] / name
    if not (raw / "dataset.json").is_file():
        raise NnunetTransferError(f"{raw / 'dataset.json'} is missing: {name} is not an nnU-Net raw dataset.")
    if verify:
        try:
            verify_dataset_integrity(str(raw), num_processes)
        except (AssertionError, RuntimeError) as e:
            raise NnunetTransferError(f"{name} failed nnU-Net's dataset integrity check: {e}") from None
    if clean or not (preprocessed_dir(name) / "dataset_fingerprint.json").is_file():
        with quiet():
            extract_fingerprint_dataset(dataset_id(name), num_processes=num_processes, clean=True, verbose=False,
                                        show_progress_bar=True)


@contextlib.contextmanager
def _augmentation_workers_at_least_one() -> Iterator[None]:
    """nnU-Net's planner calls ``torch.set_num_threads(nnUNet_n_proc_DA)``, which fails for 0, a
    common setting for CPU training. Planning does no augmentation: use 1 while it runs."""
    old = os.environ.get("nnUNet_n_proc_DA")
    if old is not None and old.strip() == "0":
        os.environ["nnUNet_n_proc_DA"] = "1"
    try:
        yield
    finally:
        if old is not None:
            os.environ["nnUNet_n_proc_DA"] = old


def plan_dataset(name: str, plans_name: str, gpu_memory_target_in_gb: float | None = None) -> dict:
    """nnU-Net's ExperimentPlanner result for ``name``, without writing anything."""
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

    class _InMemoryPlanner(ExperimentPlanner):
        def save_plans(self, plans):  # we write plans ourselves, atomically, after sharing
            self.plans = plans

    kwargs = {"plans_name": plans_name}
    if gpu_memory_target_in_gb is not None:
        kwargs["gpu_memory_target_in_gb"] = gpu_memory_target_in_gb
    with quiet(), _augmentation_workers_at_least_one():
        planner = _InMemoryPlanner(name, **kwargs)
        plans = planner.plan_experiment()
    plans["experiment_planner_used"] = "ExperimentPlanner"
    return plans


def share_architecture(plans: dict, template: dict[str, dict], provenance: dict) -> tuple[dict, list[str]]:
    """Give ``plans`` the architecture, patch size and batch size of ``template`` (configuration
    name -> configuration dict) and keep only those configurations.

    The dataset's own spacing, normalisation, channels, resampling and intensity properties stay.
    Returns the new plans and the template configurations the dataset cannot have (a 3d
    configuration for a 2D dataset). Pure: ``plans`` is not modified.
    """
    out = deepcopy(plans)
    own = out["configurations"]
    kept, missing = {}, []
    for cfg_name, cfg in template.items():
        # a twin configuration is the dataset's own 2d configuration with the twin's network
        base = own.get(cfg_name) or (own.get("2d") if cfg.get("twin_of") else None)
        if base is None or "patch_size" not in base or len(base["patch_size"]) != len(cfg["patch_size"]):
            missing.append(cfg_name)
            continue
        base = deepcopy(base)
        base.pop("inherits_from", None)
        for key in SHARED_KEYS:
            base[key] = deepcopy(cfg[key])
        if cfg.get("twin_of"):
            base["twin_of"] = cfg["twin_of"]
        kept[cfg_name] = base
    out["configurations"] = kept
    out["shared_plans"] = dict(provenance, shared_keys=list(SHARED_KEYS), configurations=sorted(kept))
    return out, missing


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
    """Write plans atomically and make sure the preprocessed folder has its dataset.json."""
    raw_folder = require_nnunet_folders("nnUNet_raw")["nnUNet_raw"] / name
    preprocessed_dir(name).mkdir(parents=True, exist_ok=True)
    # Training needs these where only preprocessed data exist. A converter's patient-level
    # splits_final.json is copied only when the preprocessed folder has none: a split chosen
    # there (or made by an earlier training) is kept.
    for file in ("dataset.json", "class_labels.json", "splits_final.json"):
        target = preprocessed_dir(name) / file
        if (raw_folder / file).is_file() and not (file == "splits_final.json" and target.is_file()):
            tmp = preprocessed_dir(name) / f".{file}.tmp"
            shutil.copyfile(raw_folder / file, tmp)
            os.replace(tmp, target)
    return write_json_atomic(plans, plans_path(name, plans["plans_name"]))


def preprocess(name: str, plans_name: str, configurations: list[str], num_processes: int) -> None:
    """Run nnU-Net's preprocessing for the configurations the plans hold."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import preprocess_dataset
    available = load_plans(name, plans_name)["configurations"]
    configs = [c for c in configurations if c in available]
    if configs:
        with quiet():
            preprocess_dataset(dataset_id(name), plans_name, configs, [num_processes] * len(configs),
                               verbose=False, show_progress_bar=True)
