"""An nnssl-format checkpoint into stock nnU-Net: a 1-channel ResEnc network pretrained "by nnssl"
(its training-checkpoint structure, written here) attached to a 2-channel target planned with
nnU-Net's ResEnc M preset, fine-tuned 2 epochs by ``nnUNetv2_train``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from tests.integration.nnunet import cli, env_from_cli, nnssl_checkpoint, run

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_nnssl")]
TARGET, PLANS = "Dataset911_DemoStroke", "nnUNetTransferPlans"


def _add_second_channel(raw: Path) -> None:
    """A FLAIR-like second channel (the T1 inverted) for every case; dataset.json says so."""
    for folder in ("imagesTr", "imagesTs"):
        for t1 in sorted((raw / folder).glob("*_0000.nii.gz")):
            image = sitk.ReadImage(str(t1))
            array = sitk.GetArrayFromImage(image).astype(np.float32)
            flair = sitk.GetImageFromArray(array.max() - array)
            flair.CopyInformation(image)
            sitk.WriteImage(flair, str(t1).replace("_0000.nii.gz", "_0001.nii.gz"))
    dataset = json.loads((raw / "dataset.json").read_text())
    dataset["channel_names"] = {"0": "T1", "1": "FLAIR"}
    (raw / "dataset.json").write_text(json.dumps(dataset))


def test_an_nnssl_checkpoint_fine_tunes_a_two_channel_resenc_target(tmp_path):
    env = env_from_cli(tmp_path)
    write_demo_datasets(env["nnUNet_raw"], DemoDataSize(spacing_mm=8.0, n_train=4, n_test=1), seed=6,
                        which=["stroke"], progress=False)
    _add_second_channel(Path(env["nnUNet_raw"]) / TARGET)
    cli(env, "plan", "-d", "911", "-c", "3d_fullres", "--planner", "nnUNetPlannerResEncM", "-np", "2",
        "--epochs", "2", "--iterations-per-epoch", "2", "--val-iterations", "1")
    plans = json.loads((Path(env["nnUNet_preprocessed"]) / TARGET / f"{PLANS}.json").read_text())
    cfg = plans["configurations"]["3d_fullres"]
    assert cfg["architecture"]["network_class_name"].endswith("ResidualEncoderUNet")
    checkpoint = tmp_path / "nnssl_checkpoint_final.pth"
    nnssl_checkpoint(checkpoint, cfg["architecture"], cfg["patch_size"])
    preview = cli(env, "preview", str(checkpoint), "-d", "911", "-c", "3d_fullres").stdout
    assert "load=encoder" in preview and "cite (pretraining 'synthetic'): A test (2026)." in preview
    attached = cli(env, "attach", str(checkpoint), "-d", "911", "-p", PLANS).stdout
    ft_plans = attached.split("-p ")[-1].split()[0]
    run(env, "nnUNetv2_train", "911", "3d_fullres", "all", "-tr", "nnUNetTrainerFinetune", "-p", ft_plans,
        "-device", "cpu")
    fold = Path(env["nnUNet_results"]) / TARGET / f"nnUNetTrainerFinetune__{ft_plans}__3d_fullres" / "fold_all"
    report = json.loads((fold / "transfer_report.json").read_text())
    encoder = [p for p in report["parameters"] if p["part"] == "encoder"]
    assert encoder and all(p["status"] in ("loaded", "adapted") for p in encoder)
    stem = next(p for p in encoder if p["name"] == "encoder.stem.convs.0.conv.weight")
    assert stem["status"] == "adapted" and "input channels 1->2" in stem["how"]
    assert report["source"]["mode"] == "nnssl" and report["source"]["citations"][0]["name"] == "synthetic"
    assert (fold / "checkpoint_final.pth").is_file()
