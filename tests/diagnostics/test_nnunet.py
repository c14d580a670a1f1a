import json

import pytest

from nnunet_transfer.diagnostics.nnunet import (Target, build_trainer, nnunet_scratch_environment, parse_fold,
                                                resolve_target)
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.plans_blocks import parse_transfer

NAME = "Dataset911_Target"
BLOCK = {"checkpoint": "/c/checkpoint_final.pth"}


@pytest.fixture
def dataset(nnunet_folders):
    """A target with plans 'Plain' (no transfer block) and 'Ft' (with one, 2d and 3d_fullres), 2d preprocessed."""
    (nnunet_folders["nnUNet_raw"] / NAME).mkdir()
    pre = nnunet_folders["nnUNet_preprocessed"] / NAME
    (pre / "Plain_2d").mkdir(parents=True)
    (pre / "Plain_2d" / "case_000.b2nd").write_bytes(b"")
    arch = {"network_class_name": "PlainConvUNet", "arch_kwargs": {}, "_kw_requires_import": []}
    configurations = {c: {"data_identifier": f"Plain_{c}", "architecture": arch} for c in ("2d", "3d_fullres")}
    for plans, extra in (("Plain", {}), ("Ft", {"transfer": BLOCK})):
        (pre / f"{plans}.json").write_text(json.dumps({"dataset_name": NAME, "plans_name": plans,
                                                       "configurations": configurations, **extra}))
    return nnunet_folders


def test_a_checked_target(dataset):
    target = resolve_target("911", "Ft", "2d", "all", "nnUNetTrainerFinetune")
    assert target == Target(NAME, "Ft", "2d", "all", "nnUNetTrainerFinetune", parse_transfer({"transfer": BLOCK}, "x"))


def test_the_configuration_of_the_existing_run_is_the_default(dataset):
    with pytest.raises(NnunetTransferError, match="configurations 2d, 3d_fullres: pass -c CONFIGURATION"):
        resolve_target("911", "Ft", None, 0, "nnUNetTrainerFinetune")
    (dataset["nnUNet_results"] / NAME / "nnUNetTrainerFinetune__Ft__2d").mkdir(parents=True)
    assert resolve_target("911", "Ft", None, 0, "nnUNetTrainerFinetune").configuration == "2d"


@pytest.mark.parametrize("plans, configuration, message", [
    ("Plain", "2d", "no 'transfer' block naming a checkpoint. Diagnose a fine-tuning: attach a checkpoint first"),
    ("Missing", "2d", "Plans 'Missing' of Dataset911_Target do not exist"),
    ("Ft", "3d_lowres", "no configuration '3d_lowres' (available: 2d, 3d_fullres)"),
    ("Ft", "3d_fullres", "preprocessed data of Dataset911_Target for configuration 3d_fullres are missing"),
])
def test_bad_input_is_one_error_naming_what_to_do(dataset, plans, configuration, message):
    with pytest.raises(NnunetTransferError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_target("911", plans, configuration, 0, "nnUNetTrainerFinetune")


def test_folds():
    assert parse_fold("all") == "all" and parse_fold("3") == 3
    with pytest.raises(NnunetTransferError, match="neither a number nor 'all'"):
        parse_fold("first")


def test_an_unknown_trainer_is_one_error(dataset, tmp_path):
    target = resolve_target("911", "Ft", "2d", 0, "nnUNetTrainerNoSuchThing")
    with nnunet_scratch_environment(tmp_path), pytest.raises(NnunetTransferError, match="Unknown trainer"):
        build_trainer(target, device=None)


def test_the_scratch_environment_is_restored(monkeypatch, tmp_path):
    monkeypatch.setenv("nnUNet_results", "/real/results")
    monkeypatch.delenv("nnUNet_compile", raising=False)
    import os
    with nnunet_scratch_environment(tmp_path):
        assert os.environ["nnUNet_results"] == str(tmp_path) and os.environ["nnUNet_compile"] == "false"
        assert os.environ["nnUNet_extTrainer"].endswith("nnunet_ext") and os.environ["nnUNet_wandb_enabled"] == "0"
    assert os.environ["nnUNet_results"] == "/real/results" and "nnUNet_compile" not in os.environ
