"""Trainer discovery and the environment of nnU-Net subprocesses."""
import os
import subprocess
import sys

from nnunet_transfer.environment import EXT_TRAINER_DIR, export_lines, ext_trainer_value, nnunet_subprocess_env
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


def test_export_lines_quote_for_the_shell(monkeypatch, tmp_path):
    home = tmp_path / "my data's folder"
    monkeypatch.setenv("NNUNET_TRANSFER_HOME", str(home))
    lines = export_lines({})
    out = subprocess.run(["bash", "-c", "\n".join(lines) + '\necho "$nnUNet_raw"'], capture_output=True, text=True)
    assert out.stdout.strip() == str(home / "nnUNet_raw")


def test_subprocess_environment_adds_our_trainers_and_extra_variables(monkeypatch):
    monkeypatch.setenv("nnUNet_extTrainer", "/theirs")
    env = nnunet_subprocess_env({"nnUNet_n_proc_DA": "0"})
    assert env["nnUNet_extTrainer"].split(os.pathsep) == [str(EXT_TRAINER_DIR), "/theirs"]
    assert env["nnUNet_n_proc_DA"] == "0" and env["OMP_WAIT_POLICY"] in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))


def test_temporary_environment_restores_set_and_unset_variables(monkeypatch):
    import os

    from nnunet_transfer.environment import temporary_environment
    monkeypatch.setenv("NNT_SET", "before")
    monkeypatch.delenv("NNT_UNSET", raising=False)
    with temporary_environment({"NNT_SET": "inside", "NNT_UNSET": "inside"}):
        assert os.environ["NNT_SET"] == os.environ["NNT_UNSET"] == "inside"
    assert os.environ["NNT_SET"] == "before" and "NNT_UNSET" not in os.environ
