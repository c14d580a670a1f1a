"""The how-to guides run as written: their bash blocks, in order, in a fresh folder; then what a guide
promises is checked on the files it made (transfer reports, plans, predictions)."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import SimpleITK as sitk
import torch

pytestmark = pytest.mark.integration
HOWTO = Path(__file__).resolve().parents[2] / "documentation" / "howto"


def bash_blocks(path: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)


def _resenc_stand_in(path: Path, features: list[int]) -> None:
    """A small 4-stage ResEnc with ``features`` in the exact format of an nnssl release checkpoint
    (1 channel, patch 32^3)."""
    from tests.integration.nnunet import nnssl_checkpoint
    kwargs = {"n_stages": 4, "features_per_stage": features, "conv_op": "torch.nn.modules.conv.Conv3d",
              "kernel_sizes": [[3, 3, 3]] * 4, "strides": [[1, 1, 1]] + [[2, 2, 2]] * 3,
              "n_blocks_per_stage": [1, 1, 1, 1], "n_conv_per_stage_decoder": [1, 1, 1], "conv_bias": True,
              "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
              "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
              "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}
    architecture = {"network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                    "arch_kwargs": kwargs, "_kw_requires_import": ["conv_op", "norm_op", "nonlin"]}
    nnssl_checkpoint(path, architecture, [32, 32, 32], training_form=False)


def _nnssl_download(path: Path) -> None:
    """A small network in the exact format of an nnssl release checkpoint (1 channel, ResEnc)."""
    _resenc_stand_in(path, [16, 32, 64, 128])


def _zoo_resenc(path: Path, seed: int, trainer: str) -> None:
    """A stand-in for an OpenMind ResEnc-L checkpoint: nnssl's format, a small ResEnc (4 stages, 8-64
    features, patch 32^3) pretrained at 8 mm like the demo data, so the default spacing rule (the
    pretraining's) keeps the how-to small."""
    torch.manual_seed(seed)
    _resenc_stand_in(path, [8, 16, 32, 64])
    content = torch.load(path, map_location="cpu", weights_only=False)
    content["trainer_name"] = trainer
    for key, tensor in content["network_weights"].items():  # other weights than the MAE stand-in's
        content["network_weights"][key] = tensor + 0.01 * seed
    content["nnssl_adaptation_plan"]["pretrain_plan"]["configurations"]["onemmiso"]["spacing"] = [8, 8, 8]
    torch.save(content, path)


def _zoo_primus(path: Path) -> None:
    """A stand-in for OpenMind's Primus-M MAE checkpoint: nnssl's EvaMAE format, a tiny Primus
    (its plan says PrimusM), pretrained on 32^3 patches at 8 mm."""
    from tests.integration.nnunet import nnssl_primus_checkpoint
    nnssl_primus_checkpoint(path, pretrain_patch=(32, 32, 32), downstream_patch=(32, 32, 32), spacing=(8, 8, 8))


CHECKPOINT_DOWNLOADS = {"openmind_checkpoint.pth": _nnssl_download,
                        "openmind_resencl_mae.pth": lambda p: _zoo_resenc(p, 0, "BaseMAETrainer"),
                        "openmind_resencl_simclr.pth": lambda p: _zoo_resenc(p, 1, "SimCLRTrainer"),
                        "openmind_primusm_mae.pth": _zoo_primus}


def _downloads(script: str, home: Path) -> None:
    """Miniature copies of the public downloads a guide uses (datasets it converts, checkpoints),
    under ``home/downloads``."""
    from tests.conversion.fixtures import fixture_modules
    for key in dict.fromkeys(re.findall(r"nnunet_transfer convert ([a-z0-9-]+) ", script)):
        fixture_modules()[key].build(home / "downloads")
    for name in dict.fromkeys(re.findall(r"~/downloads/([\w.-]+\.pth)", script)):
        CHECKPOINT_DOWNLOADS[name](home / "downloads" / name)


def _same_geometry(predictions: Path, images: Path) -> None:
    cases = sorted(images.glob("*_0000.nii.gz"))
    assert cases
    for image in cases:
        pred, ref = sitk.ReadImage(str(predictions / image.name.replace("_0000", ""))), sitk.ReadImage(str(image))
        assert pred.GetSize() == ref.GetSize() and pred.GetSpacing() == pytest.approx(ref.GetSpacing())


def check_natural_images_into_3d(root: Path) -> None:
    """The 2D RGB pretraining inflated into the 3D T1 network, every convolution adapted; 3D predictions."""
    home = root / "howto_natural"
    fold = (home / "nnUNet_results" / "Dataset913_DemoAnatomy" /
            "nnUNetTrainerFinetuneWarmup__nnUNetTransferPlans_from_DemoNaturalSegSource__3d_fullres" / "fold_all")
    params = json.loads((fold / "transfer_report.json").read_text())["parameters"]
    assert len({p["name"] for p in params}) == len(params)
    stem = next(p for p in params if p["name"] == "encoder.stages.0.0.convs.0.conv.weight")
    assert stem["status"] == "adapted" and "inflated 2D->3D (average" in stem["how"]
    assert "input channels 3->1 (sum)" in stem["how"]
    convs = [p for p in params if len(p["shape"]) == 5 and p["part"] in ("encoder", "decoder")]
    assert convs and all(p["status"] == "adapted" for p in convs)
    _same_geometry(home / "pred_anatomy", home / "nnUNet_raw" / "Dataset913_DemoAnatomy" / "imagesTs")


def check_pretrain_then_plan(root: Path) -> None:
    """Targets planned exactly like the checkpoint's network, the checkpoint attached to each."""
    home = root / "howto_ptp"
    ckpt = (home / "nnUNet_results" / "Dataset901_DemoMRISegSource" /
            "nnUNetTrainerPretrainSegmentation__nnUNetTransferPlans__2d" / "fold_all" / "checkpoint_final.pth")
    meta = torch.load(ckpt, map_location="cpu", weights_only=True)["nnunet_transfer"]
    for target in ("Dataset912_DemoMS", "Dataset913_DemoAnatomy"):
        pre = home / "nnUNet_preprocessed" / target
        cfg = json.loads((pre / "nnUNetTransferPlans.json").read_text())["configurations"]["2d"]
        assert cfg["architecture"] == meta["architecture"] and cfg["patch_size"] == meta["patch_size"]
        block = json.loads((pre / "nnUNetTransferPlans_from_DemoMRISegSource.json").read_text())["transfer"]
        assert block["checkpoint"] == str(ckpt) and block["load"] == "encoder+decoder"


def check_shared_plans(root: Path) -> None:
    """One architecture for source and targets; the fine-tuned model's predictions."""
    home = root / "howto_shared"
    plans = [json.loads((home / "nnUNet_preprocessed" / d / "nnUNetTransferPlans.json").read_text())
             for d in ("Dataset901_DemoMRISegSource", "Dataset911_DemoStroke", "Dataset913_DemoAnatomy")]
    assert all(p["configurations"]["2d"]["architecture"] == plans[0]["configurations"]["2d"]["architecture"]
               for p in plans)
    _same_geometry(home / "pred_stroke", home / "nnUNet_raw" / "Dataset911_DemoStroke" / "imagesTs")


def check_label_efficiency(root: Path) -> None:
    """Nested recorded subsets, the same cases in the fine-tuned and the scratch plans, one block per size."""
    study = root / "efficiency"
    subsets = json.loads((study / "subsets" / "anatomy.json").read_text())["folds"]["all"]
    assert len(subsets["2"]) == 2 and len(subsets["4"]) == 4 and set(subsets["2"]) < set(subsets["4"])
    results = root / "howto_efficiency" / "nnUNet_results" / "Dataset913_DemoAnatomy"
    for size in ("2", "4"):
        plans = [json.loads(p.read_text()) for p in results.glob(f"*_n{size}__2d/plans.json")]
        assert len(plans) == 2 and all(p["training_schedule"]["train_subset"] == {"all": subsets[size]} for p in plans)
    table = (study / "results" / "comparison.md").read_text()
    assert "### 2 training patients" in table and "### 4 training patients" in table
    assert (study / "results" / "data_efficiency.png").stat().st_size > 1000


def check_evaluate_like_the_challenges(root: Path) -> None:
    """Profile columns beside this project's; the guide's claim that --connectivity 6 gives ATLAS's F1."""
    import pandas as pd
    from nnunet_transfer.evaluation.evaluate import EvaluationSettings, evaluate_folders
    home = root / "howto_evaluate"
    stroke = pd.read_csv(root / "evaluation" / "stroke" / "evaluation_per_case.csv")
    assert {"lesion_F1_1", "atlas2_lesionwise_F1_1", "PQ_1", "HD95_1", "NSD_1"} <= set(stroke.columns)
    raw = home / "nnUNet_raw" / "Dataset911_DemoStroke"
    six = evaluate_folders(raw / "labelsTs", root / "predictions" / "Dataset911_DemoStroke",
                           settings=EvaluationSettings(connectivity=6, boundary=False, instances=False),
                           dataset_json=raw / "dataset.json", progress=False).per_case
    assert six["lesion_F1_1"].tolist() == pytest.approx(stroke["atlas2_lesionwise_F1_1"].tolist())
    ms = json.loads((root / "evaluation" / "ms" / "evaluation_summary.json").read_text())
    assert set(ms["isbi2015"]["1"]) == {"Corr", "SC"} and "msseg2016_F1" in ms["mean"]["1"]


def check_nnssl_checkpoint(root: Path) -> None:
    """The target planned with the checkpoint's network; every encoder weight loaded, the decoder
    initialised (load=encoder), the citation and the adaptation plan's facts in the report."""
    home = root / "howto_nnssl"
    plans = json.loads((home / "nnUNet_preprocessed" / "Dataset911_DemoStroke" / "nnUNetTransferPlans.json")
                       .read_text())["configurations"]["3d_fullres"]
    assert plans["architecture"]["network_class_name"].endswith("ResidualEncoderUNet")
    assert plans["patch_size"] == [32, 32, 32] and plans["batch_size"] == 2
    fold = (home / "nnUNet_results" / "Dataset911_DemoStroke" /
            "nnUNetTrainerFinetune__nnUNetTransferPlans_from_OpenMind__3d_fullres" / "fold_all")
    report = json.loads((fold / "transfer_report.json").read_text())
    assert report["load"] == "encoder" and report["source"]["mode"] == "nnssl"
    assert report["source"]["spacing"] == [1.0, 1.0, 1.0]
    assert report["source"]["citations"][0]["apa_citations"] == ["A test (2026)."]
    parts = report["counts_by_part"]
    assert parts["encoder"]["loaded"] > 0 and parts["encoder"]["initialised"] == parts["encoder"]["skipped"] == 0
    assert parts["decoder"]["loaded"] == 0
    _same_geometry(home / "pred_stroke", home / "nnUNet_raw" / "Dataset911_DemoStroke" / "imagesTs")


def check_any_nnunet_model(root: Path) -> None:
    """A plain nnU-Net checkpoint (no block of ours) of a 4-class model into a 2-class target:
    encoder and decoder loaded, heads skipped and initialised."""
    home = root / "howto_anymodel"
    fold = (home / "nnUNet_results" / "Dataset911_DemoStroke" /
            "nnUNetTrainerFinetune__LikeModelPlans_from_anatomy__2d" / "fold_all")
    report = json.loads((fold / "transfer_report.json").read_text())
    assert report["source"] is None and report["load"] == "encoder+decoder"
    for part in ("encoder", "decoder"):
        assert report["counts_by_part"][part]["initialised"] == report["counts_by_part"][part]["skipped"] == 0
    heads = [p for p in report["parameters"] if p["part"] == "head"]
    assert heads and all(p["status"] == "skipped" and p["source_shape"][0] == 4 and p["shape"][0] == 2
                         for p in heads)


def check_study(root: Path) -> None:
    """The study ran on two device slots (job logs of the multi-GPU launcher), every step done."""
    study = root / "my_study"
    states = [json.loads(p.read_text())["status"] for p in (study / "state").glob("*.json")]
    assert states and set(states) == {"done"}
    logs = {p.name for p in (study / "logs").glob("*.job.log")}
    assert {"plan.job.log", "pretrain__mri_segmentation.job.log"} <= logs
    assert (study / "results" / "comparison.md").is_file()


def check_compare_initialisations(root: Path) -> None:
    """One pretraining, two rows labelled by rule, three seeds paired, the fairness statement, each
    row's transfer as its rule says (the decoder loaded only with encoder+decoder), and a diagnosis
    of the encoder+decoder fine-tuning written next to it."""
    import pandas as pd
    study = root / "compare"
    assert sorted(p.name for p in (study / "state").glob("pretrain__*.json")) == ["pretrain__MRI_Models_Genesis.json"]
    table = pd.read_csv(study / "results" / "comparison.csv")
    assert table["initialisation"].tolist() == ["MRI Models Genesis [load=encoder]",
                                                "MRI Models Genesis [load=encoder+decoder]", "scratch"]
    assert (table["anatomy dice seeds"] == 3).all() and table["anatomy dice seed_sd"].notna().all()
    assert table["anatomy dice p"].notna().tolist() == [True, True, False]  # 3 seeds x 6 cases: a p-value
    per_case = pd.read_csv(study / "results" / "per_case.csv")
    assert sorted(set(per_case["seed"])) == [0, 1, 2] and len(per_case) == 3 * 3 * 6
    markdown = (study / "results" / "comparison.md").read_text()
    assert "training seeds: 3" in markdown and "Fairness (checked by `study report`)" in markdown
    results = root / "howto_compare" / "nnUNet_results" / "Dataset913_DemoAnatomy"
    for rule, decoder_loaded in (("encoder", False), ("encoder_decoder", True)):
        for seed in ("", "_s1", "_s2"):
            folder = results / f"nnUNetTrainerFinetune__nnUNetTransferPlans_from_MRI_Models_Genesis_load_{rule}" \
                f"_finetune{seed}__2d"
            plans = json.loads((folder / "plans.json").read_text())
            assert plans["training_schedule"].get("seed", 0) == (int(seed[2:]) if seed else 0)
            report = json.loads((folder / "fold_all" / "transfer_report.json").read_text())
            assert (report["counts_by_part"]["decoder"]["loaded"] > 0) == decoder_loaded
        assert f"load {rule.replace('_', '+')}; strategy finetune" in markdown
    diagnosis = json.loads((results / "nnUNetTrainerFinetune__nnUNetTransferPlans_from_MRI_Models_Genesis_load_"
                                      "encoder_decoder_finetune__2d" / "fold_all" / "diagnostics" /
                            "diagnostics.json").read_text())
    assert diagnosis["transfer"]["load"] == "encoder+decoder" and diagnosis["curves"]["baseline"]


def check_compare_openmind_zoo(root: Path) -> None:
    """One plan per architecture (the two ResEnc checkpoints share one), no shared plans, scratch in each
    architecture with its network, rows grouped by architecture and each compared with its own scratch,
    every encoder weight loaded."""
    import pandas as pd
    study = root / "zoo"
    plans_steps = sorted(p.name for p in (study / "state").glob("plan*.json"))
    assert len(plans_steps) == 2 and plans_steps[0].startswith("plan__Primus_") and \
        plans_steps[1].startswith("plan__ResidualEncoderUNet_")
    primus, resenc = (name[len("plan__"):-len(".json")] for name in plans_steps)
    table = pd.read_csv(study / "results" / "comparison.csv")
    assert list(zip(table["architecture"], table["initialisation"])) == [
        ("ResidualEncoderUNet", "ResEnc-L MAE"), ("ResidualEncoderUNet", "ResEnc-L SimCLR"),
        ("ResidualEncoderUNet", "scratch"), ("Primus (nnssl PrimusM)", "Primus-M MAE"),
        ("Primus (nnssl PrimusM)", "scratch")]
    assert table["anatomy dice diff"].notna().tolist() == [True, True, False, True, False]
    scratch = table.set_index(["architecture", "initialisation"])["anatomy dice mean"]
    assert table.loc[3, "anatomy dice diff"] == pytest.approx(
        table.loc[3, "anatomy dice mean"] - scratch[("Primus (nnssl PrimusM)", "scratch")])
    per_case = pd.read_csv(study / "results" / "per_case.csv")
    assert len(per_case) == 5 * 2 and set(per_case["architecture"]) == set(table["architecture"])
    markdown = (study / "results" / "comparison.md").read_text()
    assert "#### ResidualEncoderUNet: each row against scratch" in markdown
    assert "#### Primus (nnssl PrimusM): each row against scratch" in markdown
    assert "compared with scratch planned like the same checkpoint" in markdown
    results = root / "howto_zoo" / "nnUNet_results" / "Dataset913_DemoAnatomy"
    for arch, network, sources in ((resenc, "ResidualEncoderUNet", ("ResEnc_L_MAE", "ResEnc_L_SimCLR")),
                                   (primus, "TransferPrimus", ("Primus_M_MAE",))):
        folder = results / f"nnUNetTrainerFromScratch__nnUNetTransferPlans_{arch}__3d_fullres"
        cfg = json.loads((folder / "plans.json").read_text())["configurations"]["3d_fullres"]
        assert cfg["architecture"]["network_class_name"].endswith(network)
        assert cfg["patch_size"] == [32, 32, 32] and cfg["spacing"] == [8.0, 8.0, 8.0]  # the pretraining's
        for source in sources:
            fold = results / f"nnUNetTrainerFinetune__nnUNetTransferPlans_{arch}_from_{source}_finetune__3d_fullres"
            assert json.loads((fold / "plans.json").read_text())["configurations"]["3d_fullres"] == cfg
            counts = json.loads((fold / "fold_all" / "transfer_report.json").read_text())["counts_by_part"]
            assert counts["encoder"]["loaded"] > 0 and counts["encoder"]["initialised"] == 0


CHECKS = {"natural_images_into_3d.md": check_natural_images_into_3d, "pretrain_then_plan.md": check_pretrain_then_plan,
          "shared_plans.md": check_shared_plans, "label_efficiency.md": check_label_efficiency,
          "evaluate_like_the_challenges.md": check_evaluate_like_the_challenges,
          "nnssl_checkpoint.md": check_nnssl_checkpoint, "any_nnunet_model.md": check_any_nnunet_model,
          "study.md": check_study, "compare_initialisations.md": check_compare_initialisations,
          "compare_openmind_zoo.md": check_compare_openmind_zoo}


@pytest.mark.parametrize("guide", sorted(p.name for p in HOWTO.glob("*.md")))
def test_guide_runs_as_written(guide, tmp_path):
    blocks = bash_blocks(HOWTO / guide)
    assert blocks, f"{guide} has no bash commands"
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")  # CPU settings, as for every test here
    script = "set -euo pipefail\n" + "\n".join(blocks)
    if "~/downloads" in script:  # a guide on public datasets runs on miniature copies of them
        _downloads(script, tmp_path)
        env["HOME"] = str(tmp_path)
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{guide} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    if guide in CHECKS:
        CHECKS[guide](tmp_path)
