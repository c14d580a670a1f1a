"""share_architecture: the template's architecture, patch and batch size; everything else the dataset's own."""
from nnunet_transfer.planning.plans_file import resolved_configuration
from nnunet_transfer.planning.shared import share_architecture
from tests.planning.fake_plans import cfg as _cfg, plans as _plans


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
