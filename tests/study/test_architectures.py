"""Studies over several architectures: sources with plan = "like_checkpoint" get plans (and a scratch
baseline) of their checkpoint's architecture; the steps, plans names, checks, fairness pairing and table."""
import json

import pandas as pd
import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study.architectures import (architecture_label, architectures_used, check_like_checkpoint_sources,
                                                 like_checkpoint_architectures)
from nnunet_transfer.study.fairness import check_fairness
from nnunet_transfer.study.report import collect, comparison_table, markdown
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import activate, evaluation_file, expand, finetune_plans, run_folder, runs
from tests.integration.nnunet import nnssl_checkpoint

ZOO = """
name = "zoo"
nnunet_root = "nn"
[[sources]]
dataset = 1
label = "mri seg"
[[sources]]
checkpoint = "small_mae.pth"
label = "small mae"
plan = "like_checkpoint"
[[sources]]
checkpoint = "small_simclr.pth"
label = "small simclr"
plan = "like_checkpoint"
[[sources]]
checkpoint = "large_mae.pth"
label = "large mae"
plan = "like_checkpoint"
[[targets]]
dataset = 3
label = "t"
"""


def _resenc(path, features, seed=0):
    """A small nnssl ResEnc checkpoint of ``len(features)`` stages (1 input channel, patch 16^3)."""
    n = len(features)
    kwargs = {"n_stages": n, "features_per_stage": list(features), "conv_op": "torch.nn.modules.conv.Conv3d",
              "kernel_sizes": [[3, 3, 3]] * n, "strides": [[1, 1, 1]] + [[2, 2, 2]] * (n - 1),
              "n_blocks_per_stage": [1] * n, "n_conv_per_stage_decoder": [1] * (n - 1), "conv_bias": True,
              "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
              "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
              "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}
    torch.manual_seed(seed)
    nnssl_checkpoint(path, {"network_class_name": "dynamic_network_architectures.architectures.unet."
                                                  "ResidualEncoderUNet", "arch_kwargs": kwargs,
                            "_kw_requires_import": ["conv_op", "norm_op", "nonlin"]}, [16, 16, 16])
    return path


def _zoo(tmp_path, text=ZOO):
    _resenc(tmp_path / "small_mae.pth", [4, 8])
    _resenc(tmp_path / "small_simclr.pth", [4, 8])  # other weights, the same architecture
    _resenc(tmp_path / "large_mae.pth", [4, 8, 16])
    (tmp_path / "zoo.toml").write_text(text)
    return load_study(tmp_path / "zoo.toml")


def test_a_study_without_the_key_keeps_its_steps_and_reads_no_checkpoint(tmp_path):
    (tmp_path / "s.toml").write_text(ZOO.replace('plan = "like_checkpoint"\n', ""))  # no checkpoint file exists
    study = load_study(tmp_path / "s.toml")
    assert architectures_used(study) == [None]
    ids = [s.id for s in expand(study)]
    assert ids[:2] == ["plan", "pretrain/mri_seg"]
    assert [i for i in ids if i.startswith("train/")] == [
        "train/t/mri_seg/finetune/fold_0", "train/t/small_mae/finetune/fold_0", "train/t/small_simclr/finetune/fold_0",
        "train/t/large_mae/finetune/fold_0", "train/t/scratch/scratch/fold_0"]
    assert {finetune_plans(study, r) for r in runs(study) if r.source is None} == {"nnUNetTransferPlans"}


def test_one_plan_per_architecture_and_scratch_in_each(tmp_path):
    study = _zoo(tmp_path)
    archs = like_checkpoint_architectures(study)
    small, large = archs["small_mae"].key, archs["large_mae"].key
    assert archs["small_simclr"].key == small != large  # two checkpoints of one architecture share a plan
    assert small.startswith("ResidualEncoderUNet_") and len(small) == len("ResidualEncoderUNet_") + 8
    assert archs["small_mae"].sources == ("small_mae", "small_simclr")
    assert architectures_used(study) == [None, small, large]
    steps = {s.id: s for s in expand(study)}
    assert [i for i in steps if i.startswith("plan")] == ["plan", f"plan/{small}", f"plan/{large}"]
    assert steps[f"plan/{small}"].deps == ("plan",) and steps[f"plan/{large}"].deps == (f"plan/{small}",)
    assert [i for i in steps if i.startswith("train/")] == [
        "train/t/mri_seg/finetune/fold_0", "train/t/scratch/scratch/fold_0",
        f"train/t/{small}/small_mae/finetune/fold_0", f"train/t/{small}/small_simclr/finetune/fold_0",
        f"train/t/{small}/scratch/scratch/fold_0",
        f"train/t/{large}/large_mae/finetune/fold_0", f"train/t/{large}/scratch/scratch/fold_0"]
    assert steps[f"train/t/{small}/scratch/scratch/fold_0"].deps == (f"plan/{small}",)
    assert steps[f"train/t/{large}/large_mae/finetune/fold_0"].deps == (f"plan/{large}",)
    plans = {r.path: finetune_plans(study, r) for r in runs(study)}
    assert plans[f"t/{small}/scratch/scratch/fold_0"] == f"nnUNetTransferPlans_{small}"
    assert plans[f"t/{small}/small_mae/finetune/fold_0"] == f"nnUNetTransferPlans_{small}_from_small_mae_finetune"
    assert plans["t/scratch/scratch/fold_0"] == "nnUNetTransferPlans"
    label = architecture_label(study, small)
    assert label.startswith("ResidualEncoderUNet ") and label != architecture_label(study, large)  # told apart


def test_the_shared_plans_only_when_a_source_uses_them(tmp_path):
    study = _zoo(tmp_path, ZOO.replace('[[sources]]\ndataset = 1\nlabel = "mri seg"\n', "")
                 .replace('name = "zoo"', 'name = "zoo"\nseeds = [0, 2]'))
    steps = expand(study)
    assert not any(s.id == "plan" for s in steps) and steps[0].id.startswith("plan/") and steps[0].deps == ()
    scratch = [s.id for s in steps if s.kind == "train" and s.run.source is None]
    archs = architectures_used(study)
    assert None not in archs and len(archs) == 2
    assert scratch == [f"train/t/{a}/scratch/scratch/{seed}fold_0" for seed in ("", "seed_2/") for a in archs]


def test_a_checkpoint_that_cannot_describe_its_network_is_refused_naming_the_source(tmp_path):
    study = _zoo(tmp_path)
    torch.save({"encoder.stem.weight": torch.zeros(4, 1, 3, 3, 3)}, tmp_path / "large_mae.pth")  # a bare state dict
    with pytest.raises(NnunetTransferError, match="source 'large mae' \\(plan = \"like_checkpoint\"\\): .*does not "
                                                  "describe its network"):
        expand(study)
    (tmp_path / "large_mae.pth").unlink()
    with pytest.raises(NnunetTransferError, match="source 'large mae' has plan = \"like_checkpoint\" but its "
                                                  "checkpoint .* does not exist"):
        expand(study)


def test_a_3d_checkpoint_in_a_2d_study_and_the_key_without_a_checkpoint_are_refused(tmp_path):
    study = _zoo(tmp_path, ZOO.replace('name = "zoo"', 'name = "zoo"\nconfiguration = "2d"'))
    with pytest.raises(NnunetTransferError, match="source 'small mae' \\(plan = \"like_checkpoint\"\\): .*3D network"):
        expand(study)
    with pytest.raises(NnunetTransferError,
                       match="'sources\\[0\\].plan' is 'like_checkpoint', which needs a checkpoint"):
        _zoo(tmp_path, ZOO.replace('label = "mri seg"', 'label = "mri seg"\nplan = "like_checkpoint"'))


def test_a_target_whose_channels_the_checkpoint_cannot_feed_is_refused_before_anything_runs(tmp_path, monkeypatch):
    study = _zoo(tmp_path, ZOO.replace('label = "large mae"\nplan = "like_checkpoint"\n', 'label = "large mae"\n'
                                       'plan = "like_checkpoint"\n[sources.transfer]\n'
                                       'channel_map = { FLAIR = "T2" }\n'))
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")
    activate(study)
    raw = tmp_path / "nn" / "nnUNet_raw" / "Dataset003_T"
    raw.mkdir(parents=True)
    (raw / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1"}, "labels": {"background": 0, "x": 1},
                                                  "numTraining": 2, "file_ending": ".nii.gz"}))
    with pytest.raises(NnunetTransferError, match="source 'large mae \\[channel_map=FLAIR<-T2\\]' \\(plan = "
                                                  "\"like_checkpoint\"\\) cannot be fine-tuned on target 't'"):
        check_like_checkpoint_sources(study)


def _planned(tmp_path, monkeypatch):
    """The zoo with every run's plans.json: each architecture's own network, the schedule the same."""
    study = _zoo(tmp_path)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")
    activate(study)
    (tmp_path / "nn" / "nnUNet_raw" / "Dataset003_T").mkdir(parents=True)
    for run in runs(study):
        plans = {"plans_name": finetune_plans(study, run), "training_schedule": {"num_epochs": 10},
                 "configurations": {"3d_fullres": {"architecture": {"network_class_name": str(run.arch)}}}}
        if run.source is not None:
            plans["transfer"] = {"checkpoint": "c.pth"}
        folder = run_folder(study, run).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plans.json").write_text(json.dumps(plans))
    return study


def test_fairness_pairs_each_arm_with_scratch_of_its_architecture(tmp_path, monkeypatch):
    study = _planned(tmp_path, monkeypatch)
    assert "compared with scratch planned like the same checkpoint" in check_fairness(study)
    large = like_checkpoint_architectures(study)["large_mae"].key
    arm = next(r for r in runs(study) if r.source is not None and r.source.key == "large_mae")
    plans_file = run_folder(study, arm).parent / "plans.json"
    plans = json.loads(plans_file.read_text())
    plans["training_schedule"]["num_epochs"] = 3
    plans_file.write_text(json.dumps(plans))
    with pytest.raises(NnunetTransferError, match="target t, fold 0, architecture ResidualEncoderUNet.*: arm 'large "
                                                  "mae' was trained with other plans than scratch"):
        check_fairness(study)
    assert large in str(run_folder(study, arm))


def test_the_table_groups_rows_by_architecture_and_compares_within_each(tmp_path, monkeypatch):
    study = _planned(tmp_path, monkeypatch)
    small = like_checkpoint_architectures(study)["small_mae"].key
    base = {None: 0.5, small: 0.3}  # another architecture's scratch is much worse: it must not be the reference
    for run in runs(study):
        gain = 0.0 if run.source is None else 0.1
        rows = [{"case": f"c{i}", "mDice": base.get(run.arch, 0.4) + gain + 0.01 * i} for i in range(6)]
        out = evaluation_file(study, run)
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)
    per_case = collect(study)
    table = comparison_table(study, per_case)
    labels = [architecture_label(study, a) for a in architectures_used(study)]
    assert list(zip(table["architecture"], table["initialisation"])) == [
        (labels[0], "mri seg"), (labels[0], "scratch"), (labels[1], "small mae"), (labels[1], "small simclr"),
        (labels[1], "scratch"), (labels[2], "large mae"), (labels[2], "scratch")]
    assert table["t dice diff"].dropna().tolist() == pytest.approx([0.1] * 4)  # each against its own scratch
    assert table["t dice n"].dropna().tolist() == [6] * 4
    text = markdown(study, table)
    for label in labels:
        assert f"#### {label}: each row against scratch in this architecture" in text
    assert text.count("| scratch |") == 3 and "Every row is compared with scratch trained in its own" in text
    check_fairness(study, per_case)  # the same cases in every arm of every architecture

    from nnunet_transfer.study.figures import bar_figure
    bar_figure(study, table, tmp_path / "bars.png")
    assert (tmp_path / "bars.png").stat().st_size > 1000


def test_jobs_and_status_follow_the_steps(tmp_path):
    from nnunet_transfer.study.launch import _gpus
    from nnunet_transfer.study.scheduler import jobs
    from nnunet_transfer.study.status import status_table
    study = _zoo(tmp_path)
    small, large = (like_checkpoint_architectures(study)[s].key for s in ("small_mae", "large_mae"))
    found = {j.name: j for j in jobs(study)}
    assert list(found)[:4] == ["plan", f"plan/{small}", f"plan/{large}", "pretrain/mri_seg"]
    assert found[f"plan/{small}"].deps == ("plan",) and _gpus(study, found[f"plan/{small}"]) == 0
    run = found[f"run/t/{small}/scratch/scratch/fold_0"]
    assert run.deps == (f"plan/{small}",) and run.steps == (f"train/t/{small}/scratch/scratch/fold_0",
                                                           f"test/t/{small}/scratch/scratch/fold_0")
    table = status_table(study)
    assert set(table["status"]) == {"ready", "waiting"} and len(table) == len(expand(study))
    assert table.set_index("step").loc[f"plan/{small}", "waits_for"] == "plan"
