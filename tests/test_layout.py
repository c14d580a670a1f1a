"""nnU-Net's folder layout: the folders from the environment, dataset lookup, paths of plans and runs."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.layout import (dataset_folder_name, plans_path, require_nnunet_folders, resolve_dataset,
                                    results_folder)


def test_unset_folders_are_one_clear_error(monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NnunetTransferError, match="nnUNet_raw, nnUNet_preprocessed, nnUNet_results are not set"):
        require_nnunet_folders()


def test_datasets_are_found_by_id_or_name(nnunet_folders):
    for name in ("Dataset005_A", "Dataset012_B", "Dataset112_C"):
        (nnunet_folders["nnUNet_raw"] / name).mkdir()
    assert resolve_dataset(5) == resolve_dataset("005") == resolve_dataset("Dataset005_A") == "Dataset005_A"
    (nnunet_folders["nnUNet_preprocessed"] / "Dataset005_Other").mkdir()
    with pytest.raises(NnunetTransferError, match="Dataset id 5 is ambiguous: Dataset005_A, Dataset005_Other"):
        resolve_dataset(5)
    with pytest.raises(NnunetTransferError, match="Unknown dataset '7'.*Available: Dataset005_A"):
        resolve_dataset(7)
    with pytest.raises(NnunetTransferError, match="neither an id"):
        resolve_dataset("five")


def test_paths_follow_nnunet(nnunet_folders):
    assert dataset_folder_name(7, "X") == "Dataset007_X"
    assert plans_path("Dataset007_X", "P") == nnunet_folders["nnUNet_preprocessed"] / "Dataset007_X" / "P.json"
    assert results_folder("Dataset007_X", "T", "P", "2d", "all") == (
        nnunet_folders["nnUNet_results"] / "Dataset007_X" / "T__P__2d" / "fold_all")
