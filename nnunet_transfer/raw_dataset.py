"""The one writer of nnU-Net raw datasets: the new dataset folder and its checks, ``dataset.json``
with this package's extras and ``class_labels.json``.

The converters (``conversion/run.py``) and the demo (``demo/datasets.py``) both write through here,
so a dataset.json of either has the same keys in the same order and a dataset id is refused in
the same way. The images and label maps themselves are each writer's own.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import write_json_atomic
from nnunet_transfer.layout import CLASS_LABELS_FILE, DATASET_JSON, dataset_folder_name


def new_dataset_folder(raw_root: Path, dataset_id: int, name: str, overwrite: bool, raw_folder: str,
                       another_id: str, overwrite_option: str = "--overwrite") -> Path:
    """``raw_root/DatasetXXX_<name>``, checked before anything is written.

    ``raw_folder`` names the option that chose ``raw_root``, ``another_id`` how to choose
    another id, ``overwrite_option`` how to allow replacing (all for the error messages). Raises
    NnunetTransferError when ``raw_root`` is a file, another dataset folder has ``dataset_id``
    (nnU-Net needs unique ids) or the folder exists and ``overwrite`` is false.
    """
    if raw_root.exists() and not raw_root.is_dir():
        raise NnunetTransferError(f"the nnU-Net raw folder {raw_root} ({raw_folder}) is a file, not a folder; "
                                  f"choose a folder")
    folder = raw_root / dataset_folder_name(dataset_id, name)
    clashes = sorted(p for p in raw_root.glob(f"Dataset{dataset_id:03d}_*") if p.is_dir() and p.name != folder.name)
    if clashes:
        raise NnunetTransferError(f"dataset id {dataset_id} is taken by {clashes[0]}; nnU-Net needs unique ids: "
                                  f"{another_id}")
    if folder.exists() and not overwrite:
        raise NnunetTransferError(f"{folder} already exists; pass {overwrite_option} to replace it")
    return folder


def write_dataset_files(folder: Path, *, channel_names: Mapping[str, str], labels: Mapping[str, Any],
                        num_training: int, num_test: int, file_ending: str, name: str, description: str,
                        provenance: Mapping[str, Any], ours: Mapping[str, Any], placeholder_note: str | None = None,
                        class_names: Sequence[str] | None = None, class_labels: Mapping[str, int] | None = None,
                        class_descriptions: Mapping[str, str] | None = None) -> list[str]:
    """Write ``dataset.json`` into ``folder`` (and ``class_labels.json`` for a classification source).

    dataset.json holds nnU-Net's keys, then ``provenance`` (source, reference, licence, ...), the
    placeholder flag and ``placeholder_note`` when label maps are placeholders, ``class_names``
    (with the class-labels file name and ``class_descriptions``) and ``ours`` as the
    ``nnunet_transfer`` block. ``class_labels``: case id -> index into ``class_names``. Returns the
    names of the files written.
    """
    content: dict[str, Any] = {
        "channel_names": dict(channel_names), "labels": dict(labels), "numTraining": num_training,
        "file_ending": file_ending, "name": name, "description": description, "numTest": num_test, **provenance,
    }
    if placeholder_note:
        content["placeholder_labels"] = True
        content["label_note"] = placeholder_note
    if class_names is not None:
        content["class_names"] = list(class_names)
        content["class_labels_file"] = CLASS_LABELS_FILE
        if class_descriptions:
            content["class_descriptions"] = dict(class_descriptions)
    content["nnunet_transfer"] = dict(ours)
    write_json_atomic(content, folder / DATASET_JSON)
    if class_names is None:
        return [DATASET_JSON]
    write_json_atomic({"class_names": list(class_names), "labels": dict(class_labels or {})},
                      folder / CLASS_LABELS_FILE)
    return [DATASET_JSON, CLASS_LABELS_FILE]
