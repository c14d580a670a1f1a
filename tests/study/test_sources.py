"""Sources given as checkpoints: the study file, the steps they make, and the SHA-256 record."""
import json

import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study.sources import (check_external_source, record_external_sources, record_path,
                                           sources_markdown)
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import checkpoint_path, expand, finetune_plans, runs

STUDY = """
name = "s"
[[sources]]
dataset = 1
task = "segmentation"
[[sources]]
checkpoint = "models/openmind.pth"
task = "MAE (OpenMind)"
label = "openmind mae"
[[targets]]
dataset = 3
"""


def _study(tmp_path, text=STUDY):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return load_study(path)


def _checkpoint(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    plan = {"architecture_plans": {"arch_class_name": "ResEncL", "arch_kwargs": None},
            "pretrain_plan": {"dataset_name": "Dataset745_OpenMind",
                              "configurations": {"onemmiso": {"spacing": [1, 1, 1]}}},
            "pretrain_num_input_channels": 1, "recommended_downstream_patchsize": [160, 160, 160],
            "key_to_encoder": "encoder.stages", "key_to_stem": "encoder.stem",
            "keys_to_in_proj": ["encoder.stem.convs.0.conv"]}
    torch.save({"network_weights": {"encoder.stem.convs.0.conv.weight": torch.randn(2, 1, 3, 3, 3)},
                "init_args": {}, "trainer_name": "BaseMAETrainer", "nnssl_adaptation_plan": plan,
                "citations": [{"type": "dataset", "name": "OpenMind", "apa_citations": ["Wald et al. (2025)."]}]},
               path)
    return path


def test_a_checkpoint_source_has_no_pretraining_step_and_its_runs_wait_for_the_plan_only(tmp_path):
    study = _study(tmp_path)
    external = study.sources[1]
    assert external.external and external.dataset is None and external.task == "MAE (OpenMind)"
    assert external.checkpoint == tmp_path / "models" / "openmind.pth"
    assert checkpoint_path(study, external) == external.checkpoint
    ids = {s.id: s for s in expand(study)}
    assert "pretrain/mri_segmentation" in ids and "pretrain/openmind_mae" not in ids
    assert ids["train/3/openmind_mae/finetune/fold_0"].deps == ("plan",)
    assert ids["train/3/mri_segmentation/finetune/fold_0"].deps == ("pretrain/mri_segmentation",)


def test_two_sources_on_one_dataset_fine_tune_into_distinct_plans(tmp_path):
    study = _study(tmp_path, STUDY.replace('checkpoint = "models/openmind.pth"\ntask = "MAE (OpenMind)"',
                                           'dataset = 1\ntask = "classification"'))
    plans = {finetune_plans(study, r) for r in runs(study) if r.source is not None}
    assert plans == {"nnUNetTransferPlans_from_mri_segmentation_finetune",
                     "nnUNetTransferPlans_from_openmind_mae_finetune"}


@pytest.mark.parametrize("change, message", [
    ("", "'sources\\[1\\]' needs a dataset to pretrain on, or a checkpoint"),
    ('checkpoint = "models/openmind.pth"\ndataset = 2', "'sources\\[1\\]' has both dataset and checkpoint"),
])
def test_a_source_is_a_dataset_or_a_checkpoint(tmp_path, change, message):
    with pytest.raises(NnunetTransferError, match=message):
        _study(tmp_path, STUDY.replace('checkpoint = "models/openmind.pth"', change))


def test_free_text_tasks_only_for_checkpoints(tmp_path):
    with pytest.raises(NnunetTransferError, match="'sources\\[0\\].task' is 'MAE'; choose from segmentation"):
        _study(tmp_path, STUDY.replace('task = "segmentation"', 'task = "MAE"'))


def test_the_file_is_recorded_at_the_start_and_a_changed_file_is_refused_by_name(tmp_path):
    study = _study(tmp_path)
    with pytest.raises(NnunetTransferError, match="checkpoint .*openmind.pth does not exist"):
        record_external_sources(study)
    path = _checkpoint(tmp_path / "models" / "openmind.pth")
    record = record_external_sources(study)
    entry = record["openmind_mae"]
    assert entry["format"] == "nnssl" and entry["trainer"] == "BaseMAETrainer" and len(entry["sha256"]) == 64
    assert entry["source_dataset"] == "Dataset745_OpenMind" and entry["citations"][0]["name"] == "OpenMind"
    assert json.loads(record_path(study).read_text()) == record
    check_external_source(study, study.sources[1])  # unchanged: fine
    assert record_external_sources(study) == record  # a later start checks, and keeps the record

    _checkpoint(path, seed=1)  # another network under the same name
    with pytest.raises(NnunetTransferError, match="openmind.pth is not the file the study started with"):
        check_external_source(study, study.sources[1])
    with pytest.raises(NnunetTransferError, match="it changed since"):
        record_external_sources(study)
    path.unlink()
    with pytest.raises(NnunetTransferError, match="does not exist any more"):
        check_external_source(study, study.sources[1])


def test_the_results_list_file_hash_and_citations(tmp_path):
    study = _study(tmp_path)
    assert sources_markdown(study) == ""
    _checkpoint(tmp_path / "models" / "openmind.pth")
    record = record_external_sources(study)
    text = sources_markdown(study)
    sha = record["openmind_mae"]["sha256"]
    assert f"**openmind mae**: `{tmp_path / 'models' / 'openmind.pth'}` (SHA-256 `{sha}`; format nnssl" in text
    assert "cite (dataset 'OpenMind'): Wald et al. (2025)." in text
