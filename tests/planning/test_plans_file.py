"""Plans files: inherited configurations resolved, plans written with the dataset's own files."""
import json

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.plans_file import load_plans, resolved_configuration, write_plans
from tests.planning.fake_plans import cfg as _cfg, plans as _plans


def test_inherited_configuration_is_resolved():
    plans = _plans("D", {"3d_fullres": _cfg([8, 8, 8], [4]),
                         "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}})
    cfg = resolved_configuration(plans, "3d_cascade_fullres")
    assert cfg["patch_size"] == [8, 8, 8] and cfg["previous_stage"] == "3d_lowres" and "inherits_from" not in cfg
    with pytest.raises(NnunetTransferError, match="'2d' is not in plans"):
        resolved_configuration(plans, "2d")


def test_write_plans_copies_dataset_files_and_keeps_an_existing_split(nnunet_folders):
    raw = nnunet_folders["nnUNet_raw"] / "Dataset001_X"
    raw.mkdir()
    for file, content in (("dataset.json", {"labels": {}}), ("class_labels.json", {"class_names": ["a"]}),
                          ("splits_final.json", [{"train": ["a"], "val": ["b"]}])):
        (raw / file).write_text(json.dumps(content))
    pre = nnunet_folders["nnUNet_preprocessed"] / "Dataset001_X"
    write_plans({"plans_name": "P", "configurations": {}}, "Dataset001_X")
    assert all((pre / f).is_file() for f in ("dataset.json", "class_labels.json", "splits_final.json", "P.json"))
    (pre / "splits_final.json").write_text(json.dumps([{"train": ["b"], "val": ["a"]}]))
    write_plans({"plans_name": "P", "configurations": {}}, "Dataset001_X")
    assert json.loads((pre / "splits_final.json").read_text())[0]["val"] == ["a"]


def test_missing_plans_name_the_existing_ones(nnunet_folders):
    pre = nnunet_folders["nnUNet_preprocessed"] / "Dataset001_X"
    pre.mkdir()
    for name in ("dataset", "dataset_fingerprint", "splits_final", "class_labels", "PlansA", "PlansB"):
        (pre / f"{name}.json").write_text("{}")
    with pytest.raises(NnunetTransferError, match="Plans 'P' do not exist .* Existing plans: PlansA, PlansB"):
        load_plans("Dataset001_X", "P")
