"""nnU-Net's folder layout: where raw datasets, preprocessed data, plans and training runs live.

Every path into ``nnUNet_raw`` / ``nnUNet_preprocessed`` / ``nnUNet_results`` is built here, from
the environment variables nnU-Net itself reads, so the rest of the package never spells out
nnU-Net's naming scheme (``DatasetXXX_Name``, ``<trainer>__<plans>__<configuration>/fold_<f>``).
"""
from __future__ import annotations

import os
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json

NNUNET_FOLDERS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
DATA_HOME_VARIABLE = "NNUNET_TRANSFER_HOME"

DATASET_JSON = "dataset.json"
CLASS_LABELS_FILE = "class_labels.json"  # per-case classes of a classification source
SPLITS_FILE = "splits_final.json"
PATIENTS_FILE = "patients.json"  # case id -> patient id, where a patient has several cases (time points)
CHECKPOINT_FINAL = "checkpoint_final.pth"
CHECKPOINT_LATEST = "checkpoint_latest.pth"
# files nnU-Net keeps in a preprocessed dataset folder that are not plans
NOT_PLANS = ("dataset", "dataset_fingerprint", "splits_final", "class_labels")


def default_data_root() -> Path:
    """Where nnU-Net's three folders go when the user has not chosen: ``$NNUNET_TRANSFER_HOME``
    or ``~/nnunet_transfer_data``."""
    return Path(os.environ.get(DATA_HOME_VARIABLE, Path.home() / "nnunet_transfer_data")).expanduser()


def require_nnunet_folders(*names: str) -> dict[str, Path]:
    """The nnU-Net folders named in ``names`` (default: all three) from the environment.

    Raises NnunetTransferError naming every unset variable and how to set them.
    """
    names = names or NNUNET_FOLDERS
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise NnunetTransferError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. nnU-Net needs its data folders: "
            f"run `eval \"$(nnunet_transfer env)\"` (defaults under {default_data_root()}) or export "
            f"{' / '.join(missing)} yourself.")
    return {n: Path(os.environ[n]) for n in names}


def _folder(name: str) -> Path:
    return require_nnunet_folders(name)[name]


# ---------------------------------------------------------------------------- datasets

def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset005_Name``."""
    return f"Dataset{dataset_id:03d}_{name}"


def dataset_id(name: str) -> int:
    """The id of ``DatasetXXX_Name``."""
    return int(name[len("Dataset"):len("Dataset") + 3])


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


def raw_dir(name: str) -> Path:
    """``$nnUNet_raw/<name>``."""
    return _folder("nnUNet_raw") / name


def raw_dataset_json(name: str) -> dict:
    """The raw dataset's dataset.json; NnunetTransferError when it is missing."""
    path = raw_dir(name) / DATASET_JSON
    if not path.is_file():
        raise NnunetTransferError(f"{path} is missing: {name} is not an nnU-Net raw dataset.")
    return read_json(path)


def channel_names(name: str) -> dict[str, str]:
    """The ``channel_names`` (or legacy ``modality``) of a raw dataset's dataset.json."""
    data = raw_dataset_json(name)
    return {str(k): str(v) for k, v in data.get("channel_names", data.get("modality", {})).items()}


def preprocessed_dir(name: str) -> Path:
    """``$nnUNet_preprocessed/<name>``."""
    return _folder("nnUNet_preprocessed") / name


def plans_path(name: str, plans_name: str) -> Path:
    """``$nnUNet_preprocessed/<name>/<plans_name>.json``."""
    return preprocessed_dir(name) / f"{plans_name}.json"


def existing_plans(name: str) -> list[str]:
    """Names of the plans files of a preprocessed dataset."""
    return sorted(p.stem for p in preprocessed_dir(name).glob("*.json") if p.stem not in NOT_PLANS)


# ---------------------------------------------------------------------------- training runs

def model_folder(dataset: str, trainer: str, plans: str, configuration: str) -> Path:
    """nnU-Net's ``<trainer>__<plans>__<configuration>`` folder (what its predictor loads)."""
    return _folder("nnUNet_results") / dataset / f"{trainer}__{plans}__{configuration}"


def results_folder(dataset: str, trainer: str, plans: str, configuration: str, fold: str | int) -> Path:
    """nnU-Net's output folder of one training run: ``<model folder>/fold_<fold>``."""
    return model_folder(dataset, trainer, plans, configuration) / f"fold_{fold}"
