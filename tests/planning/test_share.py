"""share_architecture / resolved_configuration / attach naming: pure functions on plans dicts."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.attach import default_output_plans
from nnunet_transfer.planning.common import resolved_configuration, share_architecture


def _cfg(patch, features, norm="ZScoreNormalization", spacing=None, batch=2):
    return {"data_identifier": "P_x", "patch_size": patch, "batch_size": batch,
            "spacing": spacing or [1.0] * len(patch),
            "normalization_schemes": [norm], "use_mask_for_norm": [False],
            "architecture": {"network_class_name": "PlainConvUNet", "arch_kwargs": {"features_per_stage": features}}}


def _plans(name, configs):
    return {"dataset_name": name, "plans_name": "P", "configurations": configs}


def test_architecture_patch_and_batch_come_from_the_template_everything_else_stays():
    ref = _plans("Dataset001_Ref", {"2d": _cfg([64, 64], [32, 64], batch=12),
                                    "3d_fullres": _cfg([32, 32, 32], [32, 64])})
    own = _plans("Dataset002_Rgb", {"2d": _cfg([128, 96], [32, 64, 128], norm="RGBTo0_1Normalization",
                                               spacing=[0.5, 0.5], batch=40)})
    own["configurations"]["2d"]["normalization_schemes"] = ["RGB", "RGB", "RGB"]
    template = {c: resolved_configuration(ref, c) for c in ("2d", "3d_fullres")}
    shared, missing = share_architecture(own, template, {"reference_dataset": "Dataset001_Ref"})
    cfg = shared["configurations"]["2d"]
    assert missing == ["3d_fullres"]
    assert cfg["patch_size"] == [64, 64] and cfg["batch_size"] == 12
    assert cfg["architecture"] == ref["configurations"]["2d"]["architecture"]
    assert cfg["normalization_schemes"] == ["RGB", "RGB", "RGB"] and cfg["spacing"] == [0.5, 0.5]
    assert shared["shared_plans"]["reference_dataset"] == "Dataset001_Ref"
    assert own["configurations"]["2d"]["batch_size"] == 40  # input untouched


def test_configurations_not_in_the_template_are_dropped():
    own = _plans("D", {"2d": _cfg([8, 8], [4]), "3d_fullres": _cfg([8, 8, 8], [4]), "3d_lowres": _cfg([8, 8, 8], [4])})
    shared, missing = share_architecture(own, {"3d_fullres": _cfg([16, 16, 16], [8])}, {})
    assert list(shared["configurations"]) == ["3d_fullres"] and not missing


def test_inherited_configuration_is_resolved():
    plans = _plans("D", {"3d_fullres": _cfg([8, 8, 8], [4]),
                         "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}})
    cfg = resolved_configuration(plans, "3d_cascade_fullres")
    assert cfg["patch_size"] == [8, 8, 8] and cfg["previous_stage"] == "3d_lowres" and "inherits_from" not in cfg
    with pytest.raises(NnunetTransferError, match="'2d' is not in plans"):
        resolved_configuration(plans, "2d")


def test_default_plans_copy_name_is_nnunet_safe():
    name = default_output_plans("nnUNetTransferPlans", "Dataset901_DemoMRISegSource")
    assert name == "nnUNetTransferPlans_from_DemoMRISegSource" and "__" not in name


def test_write_plans_copies_dataset_files_and_keeps_an_existing_split(nnunet_folders):
    import json

    from nnunet_transfer.planning.common import write_plans
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
