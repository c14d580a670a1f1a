"""Where a study's files are: nnU-Net's folders, checkpoints, model folders, predictions,
evaluations, logs and recorded training subsets. Nothing is written here but the nnU-Net
folders that :func:`activate` creates."""
from __future__ import annotations

import os
from pathlib import Path

from nnunet_transfer.hub import ResolvedCheckpoint
from nnunet_transfer.layout import (CHECKPOINT_FINAL, NNUNET_FOLDERS, require_nnunet_folders, resolve_dataset,
                                    results_folder)
from nnunet_transfer.plans_blocks import DEFAULT_SEED
from nnunet_transfer.study.grid import Run, Step, finetune_plans, pretraining_plans
from nnunet_transfer.study.sources import external_checkpoint
from nnunet_transfer.study.spec import Source, Study, Target
from nnunet_transfer.study.state import step_file_stem


def activate(study: Study) -> None:
    """Point nnU-Net at the study's folders (``nnunet_root``) or check the environment has them."""
    if study.nnunet_root is not None:
        for name in NNUNET_FOLDERS:
            os.environ[name] = str(study.nnunet_root / name)
            (study.nnunet_root / name).mkdir(parents=True, exist_ok=True)
    require_nnunet_folders(*NNUNET_FOLDERS)


def dataset_name(dataset: str | int) -> str:
    return resolve_dataset(dataset)


def checkpoint_path(study: Study, source: Source, seed: int = DEFAULT_SEED) -> Path | ResolvedCheckpoint:
    """The checkpoint a source offers: its file (external; a hub reference: the file recorded when the
    study started, as a ResolvedCheckpoint), else its pretraining's at ``seed``."""
    if source.external:
        return external_checkpoint(study, source)
    return results_folder(dataset_name(source.dataset), source.trainer, pretraining_plans(study, seed),
                          study.source_configuration(source), "all") / CHECKPOINT_FINAL


def run_folder(study: Study, run: Run) -> Path:
    """nnU-Net's fold folder of a run's training."""
    return results_folder(dataset_name(run.target.dataset), run.trainer, finetune_plans(study, run),
                          study.configuration, run.fold)


def prediction_folder(study: Study, run: Run) -> Path:
    return study.folder / "predictions" / run.path


def evaluation_file(study: Study, run: Run) -> Path:
    return study.folder / "evaluations" / f"{run.path}.csv"


def log_path(study: Study, step: Step) -> Path:
    return study.folder / "logs" / f"{step_file_stem(step.id)}.log"


def subsets_file(study: Study, target: Target) -> Path:
    return study.folder / "subsets" / f"{target.key}.json"
