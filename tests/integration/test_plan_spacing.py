"""plan-like-checkpoint's spacing rule on a real (tiny) target: an nnssl checkpoint pretrained at
1 mm and an anisotropic target at 2 x 2 x 3 mm (nnU-Net's image axis order). ``--spacing checkpoint``
preprocesses the cases at 1 mm (read from the preprocessed cases, not only the plans); ``none`` and
a fixed spacing are checked at the plans level; a bad value writes nothing."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.errors import NnunetTransferError
from tests.integration.nnunet import cli, env_from_cli, environment, nnssl_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_plan_spacing")]
TARGET = "Dataset950_Aniso"
SHAPE = (24, 20, 22)  # numpy (z, y, x) = nnU-Net's image axis order for NIfTI read by SimpleITK
SPACING_XYZ = (3.0, 2.0, 2.0)  # SimpleITK's x, y, z: nnU-Net's order (z, y, x) is 2 x 2 x 3 mm
ARCHITECTURE = {"network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 32],
                                "conv_op": "torch.nn.modules.conv.Conv3d", "kernel_sizes": [[3, 3, 3]] * 3,
                                "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]], "n_blocks_per_stage": [1, 1, 1],
                                "n_conv_per_stage_decoder": [1, 1], "conv_bias": True,
                                "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                                "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None,
                                "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                                "nonlin_kwargs": {"inplace": True}},
                "_kw_requires_import": ["conv_op", "norm_op", "nonlin"]}


def _target(raw: Path, n_cases: int = 3) -> None:
    """A T1-like ball (label 1) in noise, every case 24 x 20 x 22 voxels at 2 x 2 x 3 mm."""
    folder = raw / TARGET
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    z, y, x = np.indices(SHAPE)
    for i in range(n_cases):
        ball = ((z - 12) * 2.0) ** 2 + ((y - 10) * 2.0) ** 2 + ((x - 11 + i) * 3.0) ** 2 < 14.0 ** 2
        for array, name in ((ball * 100.0 + rng.normal(50, 5, SHAPE), f"imagesTr/case{i}_0000.nii.gz"),
                            (ball.astype(np.uint8), f"labelsTr/case{i}.nii.gz")):
            image = sitk.GetImageFromArray(array.astype(np.float32 if array.dtype != np.uint8 else np.uint8))
            image.SetSpacing(SPACING_XYZ)
            sitk.WriteImage(image, str(folder / name))
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1"}, "labels": {"background": 0, "ball": 1}, "numTraining": n_cases,
        "file_ending": ".nii.gz", "name": "Aniso"}))


def test_an_anisotropic_target_is_preprocessed_at_the_pretraining_s_1_mm(tmp_path):
    env = env_from_cli(tmp_path)
    _target(Path(env["nnUNet_raw"]))
    checkpoint = tmp_path / "openmind.pth"
    nnssl_checkpoint(checkpoint, ARCHITECTURE, [32, 32, 32])  # pretrained at 1 x 1 x 1 mm

    out = cli(env, "plan-like-checkpoint", str(checkpoint), "-d", "950", "--spacing", "checkpoint", "-np", "1",
              "-p", "LikeOpenMind")
    text = out.stdout + out.stderr
    assert "at spacing 1 x 1 x 1 mm (--spacing checkpoint" in text and "normalisation ZScoreNormalization" in text, \
        text[-2000:]
    preprocessed = Path(env["nnUNet_preprocessed"]) / TARGET
    plans = json.loads((preprocessed / "LikeOpenMind.json").read_text())
    cfg = plans["configurations"]["3d_fullres"]
    assert plans["transpose_forward"] == [2, 0, 1]  # nnU-Net's: the 3 mm axis first
    assert cfg["spacing"] == [1.0, 1.0, 1.0] and cfg["patch_size"] == [32, 32, 32]
    assert cfg["median_image_size_in_voxels"] == [66.0, 48.0, 40.0]  # 22 x 3, 24 x 2, 20 x 2 mm
    assert plans["shared_plans"]["spacing_rule"] == "checkpoint"
    assert plans["shared_plans"]["pretraining_spacing"] == [1.0, 1.0, 1.0]

    # what nnU-Net's preprocessing wrote: every case resampled to 1 mm
    cases = sorted((preprocessed / cfg["data_identifier"]).glob("*.pkl"))
    assert len(cases) == 3
    with environment(env):
        from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
        folder = str(preprocessed / cfg["data_identifier"])
        dataset = infer_dataset_class(folder)(folder)
        for pkl in cases:
            properties = pickle.loads(pkl.read_bytes())
            assert properties["spacing"] == pytest.approx([2.0, 2.0, 3.0])  # the case's own, nnU-Net's order
            cropped = np.array(properties["shape_after_cropping_and_before_resampling"])  # transposed
            data, seg, _, _ = dataset.load_case(pkl.stem)
            assert list(data.shape[1:]) == [int(round(n * s)) for n, s in zip(cropped, [3.0, 2.0, 2.0])]
            assert seg.shape[1:] == data.shape[1:]


def test_no_resampling_and_a_fixed_spacing_at_the_plans_level_and_bad_values_write_nothing(tmp_path):
    from nnunet_transfer.planning.like_checkpoint import plan_like_checkpoint
    env = env_from_cli(tmp_path)
    _target(Path(env["nnUNet_raw"]), n_cases=2)
    checkpoint = tmp_path / "openmind.pth"
    nnssl_checkpoint(checkpoint, ARCHITECTURE, [32, 32, 32])
    preprocessed = Path(env["nnUNet_preprocessed"]) / TARGET
    with environment(env):
        def plan(spacing, plans_name):
            path = plan_like_checkpoint(checkpoint, [950], plans_name, num_processes=1, run_preprocessing=False,
                                        progress=False, spacing=spacing)[TARGET]
            return json.loads(path.read_text())
        for bad, message in ((["1", "1"], "three positive spacings"), (["1", "-1", "1"], "three positive")):
            with pytest.raises(NnunetTransferError, match=message):
                plan(bad, "Bad")
        assert not (preprocessed / "Bad.json").exists()

        none = plan(["none"], "NoResample")
        cfg = none["configurations"]["3d_fullres"]
        assert cfg["spacing"] == [3.0, 2.0, 2.0] and cfg["median_image_size_in_voxels"] == [22.0, 24.0, 20.0]
        assert none["shared_plans"]["spacing_rule"] == "none"

        # given in nnU-Net's image axis order (z y x here), written transposed like the data
        fixed = plan(["1", "1.5", "2.5"], "Fixed")
        cfg = fixed["configurations"]["3d_fullres"]
        assert cfg["spacing"] == [2.5, 1.0, 1.5] and cfg["median_image_size_in_voxels"] == [26.0, 48.0, 27.0]
        assert fixed["shared_plans"]["fixed_spacing"] == [1.0, 1.5, 2.5]

        own = plan(["nnunet"], "OwnSpacing")
        assert own["configurations"]["3d_fullres"]["spacing"] == [3.0, 2.0, 2.0]
        assert own["shared_plans"]["spacing_rule"] == "nnunet"

        # the TransferReport shows the target's spacing next to the pretraining's when they differ
        from nnunet_transfer.planning.preview import preview
        report = preview(checkpoint, TARGET, "OwnSpacing", "3d_fullres")
        assert report.target_spacing == [3.0, 2.0, 2.0] and report.to_dict()["target_spacing"] == [3.0, 2.0, 2.0]
        assert "spacing: target 3 x 2 x 2 mm, pretraining 1 x 1 x 1 mm" in report.summary()
        default = preview(checkpoint, TARGET, plan(None, "Default")["plans_name"], "3d_fullres")
        assert "spacing:" not in default.summary()
