import os
import subprocess
import sys

import pytest

from nnunet_transfer.environment import (EXT_TRAINER_DIR, export_lines, ext_trainer_value, nnunet_subprocess_env,
                                         require_nnunet_folders)
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.trainers.registry import TRAINERS


def test_export_lines_print_ext_trainer_and_only_the_unset_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("NNUNET_TRANSFER_HOME", str(tmp_path))
    lines = export_lines({"nnUNet_raw": "/data/raw"})
    assert lines[0] == f"export nnUNet_extTrainer={EXT_TRAINER_DIR}"
    assert f"export nnUNet_preprocessed={tmp_path / 'nnUNet_preprocessed'}" in lines
    assert f"export nnUNet_results={tmp_path / 'nnUNet_results'}" in lines
    assert not any(line.startswith("export nnUNet_raw") for line in lines)


def test_existing_ext_trainer_folders_are_kept():
    value = ext_trainer_value(os.pathsep.join(["/a", str(EXT_TRAINER_DIR), "/b"]))
    assert value.split(os.pathsep) == [str(EXT_TRAINER_DIR), "/a", "/b"]


def test_unset_folders_are_one_clear_error(monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NnunetTransferError, match="nnUNet_raw, nnUNet_preprocessed, nnUNet_results are not set"):
        require_nnunet_folders()


def test_nnunet_finds_every_trainer_through_ext_trainer():
    """nnU-Net's own lookup, in a fresh interpreter, as nnUNetv2_train and nnUNetv2_predict do it."""
    code = ("from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as f\n"
            f"for name in {sorted(TRAINERS)!r}:\n    print('FOUND', name, f(name).__module__)")
    out = subprocess.run([sys.executable, "-c", code], env=nnunet_subprocess_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    found = [line.split() for line in out.stdout.splitlines() if line.startswith("FOUND")]
    assert [f[1] for f in found] == sorted(TRAINERS)
    assert all(f[2].startswith("nnunet_transfer.trainers.") for f in found)


def test_shim_folder_holds_a_single_module():
    modules = [p.name for p in EXT_TRAINER_DIR.glob("*.py")]
    assert modules == ["nnunet_transfer_trainer_registry.py"]
    assert not (EXT_TRAINER_DIR / "__init__.py").exists()


def test_train_command_multi_gpu_and_continue():
    from nnunet_transfer.nnunet_commands import train_command
    assert train_command("D", "3d_fullres", 0, "T", "P", device="cpu") == [
        "nnUNetv2_train", "D", "3d_fullres", "0", "-tr", "T", "-p", "P", "-device", "cpu"]
    cmd = train_command("D", "3d_fullres", "all", "T", "P", continue_training=True, device="cuda", num_gpus=4)
    assert cmd[-3:] == ["-num_gpus", "4", "--c"]


def test_every_code_folder_is_an_installed_package():
    """A folder without __init__.py is silently left out of a (non-editable) install."""
    from pathlib import Path

    from setuptools import find_packages
    root = Path(__file__).resolve().parents[1]
    packages = set(find_packages(str(root), include=["nnunet_transfer", "nnunet_transfer.*"]))
    folders = {".".join(p.parent.relative_to(root).parts) for p in (root / "nnunet_transfer").rglob("*.py")}
    assert folders - packages == {"nnunet_transfer.nnunet_ext"}  # the trainer lookup folder, shipped as data
