"""nnssl-format checkpoints into stock nnU-Net: a 1-channel ResEnc network pretrained "by nnssl"
(its training-checkpoint structure, written here) attached to a 2-channel target planned with
nnU-Net's ResEnc M preset, fine-tuned 2 epochs by ``nnUNetv2_train``; a 1-channel Primus in
nnssl's release form into a 2-channel target planned like it, fine-tuned and predicted, with its
scratch baseline in the same architecture and recipe."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
import torch

from tests.integration.nnunet import cli, env_from_cli, nnssl_checkpoint, nnssl_primus_checkpoint, run

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


def test_an_nnssl_primus_checkpoint_fine_tunes_a_two_channel_target_planned_like_it(tmp_path):
    env = env_from_cli(tmp_path)
    raw = Path(env["nnUNet_raw"])
    write_demo_datasets(raw, DemoDataSize(spacing_mm=8.0, n_train=4, n_test=1), seed=6, which=["stroke"],
                        progress=False)
    _add_second_channel(raw / TARGET)
    checkpoint = tmp_path / "openmind_primus" / "checkpoint_final.pth"  # pretrained on 32^3 patches: 4^3 tokens
    module = nnssl_primus_checkpoint(checkpoint, pretrain_patch=(32, 32, 32), downstream_patch=(24, 32, 24),
                                     spacing=(8, 8, 8))
    cli(env, "plan-like-checkpoint", str(checkpoint), "-d", "911", "-np", "2", "--epochs", "2",
        "--iterations-per-epoch", "2", "--val-iterations", "1")
    plans = json.loads((Path(env["nnUNet_preprocessed"]) / TARGET / f"{PLANS}.json").read_text())
    cfg = plans["configurations"]["3d_fullres"]
    assert cfg["architecture"]["network_class_name"] == "nnunet_transfer.networks.primus.TransferPrimus"
    assert cfg["patch_size"] == [24, 32, 24] and cfg["architecture"]["arch_kwargs"]["token_order"] == "yxz"
    assert plans["training_schedule"] == {"num_epochs": 2, "num_iterations_per_epoch": 2,
                                          "num_val_iterations_per_epoch": 1, "optimizer": "adamw",
                                          "initial_lr": 1e-4, "weight_decay": 0.05, "grad_clip": 1.0,
                                          "warmup_epochs": 50} | {k: plans["training_schedule"][k] for k in
                                                                  plans["training_schedule"] if k == "seed"}
    attached = cli(env, "attach", str(checkpoint), "-d", "911", "-p", PLANS).stdout
    ft_plans = attached.split("-p ")[-1].split()[0]
    results = Path(env["nnUNet_results"]) / TARGET
    for trainer, plans_name in (("nnUNetTrainerFinetune", ft_plans), ("nnUNetTrainerFromScratch", PLANS)):
        run(env, "nnUNetv2_train", "911", "3d_fullres", "all", "-tr", trainer, "-p", plans_name, "-device", "cpu")
        final = torch.load(results / f"{trainer}__{plans_name}__3d_fullres" / "fold_all" / "checkpoint_final.pth",
                           map_location="cpu", weights_only=False)
        groups = final["optimizer_state"]["param_groups"]  # the same recipe in both arms
        assert all(g["betas"] == (0.9, 0.98) and g["weight_decay"] == 0.05 for g in groups)
    fold = results / f"nnUNetTrainerFinetune__{ft_plans}__3d_fullres" / "fold_all"
    report = json.loads((fold / "transfer_report.json").read_text())
    by_name = {p["name"]: p for p in report["parameters"]}
    encoder = [p for p in report["parameters"] if p["part"] == "encoder"]
    assert len(encoder) == len([k for k in module.state_dict() if k.startswith(("eva.", "down_projection."))])
    assert all(p["status"] in ("loaded", "adapted") for p in encoder)
    assert "input channels 1->2" in by_name["down_projection.proj.weight"]["how"]
    assert by_name["eva.pos_embed"]["how"] == "positional embedding: token grid 4x4x4 -> 3x4x3 (trilinear)"
    assert "decoder.pos_embed" in report["unused_source_keys"]
    predictions = tmp_path / "predictions"
    run(env, "nnUNetv2_predict", "-i", str(raw / TARGET / "imagesTs"), "-o", str(predictions), "-d", "911",
        "-c", "3d_fullres", "-f", "all", "-tr", "nnUNetTrainerFinetune", "-p", ft_plans, "-device", "cpu",
        "--disable_tta", "-npp", "1", "-nps", "1")
    written = sorted(predictions.glob("*.nii.gz"))
    image = sitk.ReadImage(str(next((raw / TARGET / "imagesTs").glob("*_0000.nii.gz"))))
    assert len(written) == 1 and sitk.ReadImage(str(written[0])).GetSize() == image.GetSize()
