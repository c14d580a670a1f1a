"""Another lab's nnU-Net model (1 channel T1, 3 classes, its own plans) into a 2-channel FLAIR + T1
target with 5 classes: planned like the checkpoint, channels mapped by name, the head rows of the
classes both have kept, fine-tuned 2 epochs by stock ``nnUNetv2_train``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from tests.integration.nnunet import cli, env_from_cli, nnunet_checkpoint, run

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_any_nnunet_model")]
ANATOMY, TARGET, PLANS = "Dataset913_DemoAnatomy", "Dataset921_FiveClass", "nnUNetTransferPlans"
LABELS = {"background": 0, "CSF": 1, "GM": 2, "WM": 3, "WM_right": 4}


def _five_class_two_channel(raw: Path) -> None:
    """The demo anatomy as FLAIR (channel 0: the T1 inverted) + T1 (channel 1), its white matter split
    into left (3) and right (4): five classes."""
    out = raw / TARGET
    for images, labels in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
        (out / images).mkdir(parents=True)
        (out / labels).mkdir(parents=True)
        for t1_path in sorted((raw / ANATOMY / images).glob("*_0000.nii.gz")):
            t1 = sitk.ReadImage(str(t1_path))
            array = sitk.GetArrayFromImage(t1).astype(np.float32)
            flair = sitk.GetImageFromArray(array.max() - array)
            flair.CopyInformation(t1)
            sitk.WriteImage(flair, str(out / images / t1_path.name))
            sitk.WriteImage(t1, str(out / images / t1_path.name.replace("_0000", "_0001")))
            case = t1_path.name.replace("_0000", "")
            label = sitk.ReadImage(str(raw / ANATOMY / labels / case))
            seg = sitk.GetArrayFromImage(label)
            seg[(seg == 3) & (np.arange(seg.shape[2]) >= seg.shape[2] // 2)] = 4
            relabelled = sitk.GetImageFromArray(seg)
            relabelled.CopyInformation(label)
            sitk.WriteImage(relabelled, str(out / labels / case))
    dataset = json.loads((raw / ANATOMY / "dataset.json").read_text())
    dataset.update(channel_names={"0": "FLAIR", "1": "T1"}, labels=LABELS, name="FiveClass")
    (out / "dataset.json").write_text(json.dumps(dataset))


def test_a_three_class_nnunet_model_fine_tunes_a_five_class_two_channel_target(tmp_path):
    env = env_from_cli(tmp_path)
    raw = Path(env["nnUNet_raw"])
    write_demo_datasets(raw, DemoDataSize(spacing_mm=8.0, n_train=4, n_test=1), seed=3, which=["anatomy"],
                        progress=False)
    _five_class_two_channel(raw)
    checkpoint = tmp_path / "earlier" / "checkpoint_final.pth"
    nnunet_checkpoint(checkpoint)  # T1, classes background / GM / WM

    cli(env, "plan-like-checkpoint", str(checkpoint), "-d", "921", "--channel-map", "auto", "-np", "2",
        "--epochs", "2", "--iterations-per-epoch", "2", "--val-iterations", "1")
    plans = json.loads((Path(env["nnUNet_preprocessed"]) / TARGET / f"{PLANS}.json").read_text())
    assert plans["configurations"]["2d"]["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128]

    rules = ["--channel-map", "auto", "--keep-classes", "auto"]
    preview = cli(env, "preview", str(checkpoint), "-d", "921", "-c", "2d", *rules).stdout
    assert "input channels by name: FLAIR<-zero, T1<-T1" in preview
    assert "head rows kept: background<-background, CSF<-initialised, GM<-GM, WM<-WM, WM_right<-initialised" in preview
    refused = cli(env, "attach", str(checkpoint), "-d", "921", *rules, "--load", "encoder", "-o", "Refused", ok=False)
    assert refused.returncode == 2 and "keep_classes keeps head rows" in refused.stderr
    assert not (Path(env["nnUNet_preprocessed"]) / TARGET / "Refused.json").exists()

    attached = cli(env, "attach", str(checkpoint), "-d", "921", *rules).stdout
    ft_plans = attached.split("-p ")[-1].split()[0]
    block = json.loads((Path(env["nnUNet_preprocessed"]) / TARGET / f"{ft_plans}.json").read_text())["transfer"]
    assert block["channel_map"] == "auto" and block["keep_classes"] == "auto" and block["unmapped_channels"] == "zero"
    run(env, "nnUNetv2_train", "921", "2d", "all", "-tr", "nnUNetTrainerFinetune", "-p", ft_plans, "-device", "cpu")
    fold = Path(env["nnUNet_results"]) / TARGET / f"nnUNetTrainerFinetune__{ft_plans}__2d" / "fold_all"
    report = json.loads((fold / "transfer_report.json").read_text())
    by_part = report["counts_by_part"]
    assert by_part["encoder"]["initialised"] == by_part["encoder"]["skipped"] == 0
    assert by_part["decoder"]["initialised"] == by_part["decoder"]["skipped"] == 0
    heads = [p for p in report["parameters"] if p["part"] == "head"]
    assert heads and all(p["status"] == "adapted" and p["shape"][0] == 5 and p["source_shape"][0] == 3 for p in heads)
    stem = next(p for p in report["parameters"] if p["name"] == "encoder.stages.0.0.convs.0.conv.weight")
    assert stem["status"] == "adapted" and stem["shape"][1] == 2 and stem["source_shape"][1] == 1
    assert (fold / "checkpoint_final.pth").is_file()
