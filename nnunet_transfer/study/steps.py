"""What each step of a study does, one small function per step kind (:data:`STEP_KINDS`).

``plan``: the shared plans and preprocessing (or, per architecture, the targets planned like a
checkpoint), and the training subsets drawn and recorded; ``pretrain``: a source's pretraining;
``train``: a fine-tuning (its plans copy with the transfer block written by ``attach``; a source
given as a ``checkpoint`` is checked against the SHA-256 recorded when the study started) or the
scratch baseline (a plans copy only for a training size or seed); ``test``: nnU-Net's predictor on
the target's imagesTs, then the evaluation against its labelsTs. A training size trains on its
subset (:mod:`nnunet_transfer.study.subsets`) through a plans copy whose
``training_schedule.train_subset`` lists the cases: the preprocessed data are shared, nothing is
copied. Trainings run stock ``nnUNetv2_train``; outputs are checked before a step is done.

The grid and its ids are :mod:`.grid`, where files are :mod:`.paths`, which step may run when
:mod:`.scheduler`; the names below imported from those two stay importable from here.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from nnunet_transfer import nnunet_commands
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.layout import CHECKPOINT_FINAL, CHECKPOINT_LATEST, raw_dir
from nnunet_transfer.io import read_json, write_json_atomic
from nnunet_transfer.planning.attach import attach
from nnunet_transfer.planning.like_checkpoint import plan_like_checkpoint
from nnunet_transfer.planning.plans_file import load_plans, write_plans
from nnunet_transfer.planning.shared import plan_shared
from nnunet_transfer.plans_blocks import DEFAULT_SEED, TransferRuleOptions, update_schedule
from nnunet_transfer.study import state
from nnunet_transfer.study.architectures import architecture, architecture_plans
from nnunet_transfer.study.evaluation import evaluate_run, evaluation_is_stale
from nnunet_transfer.study.grid import (Run, Step, expand, finetune_plans, pretraining_plans,  # noqa: F401 - and
                                        row_label, runs, seeded_plans)  # importers' names
from nnunet_transfer.study.paths import (activate, checkpoint_path, dataset_name, evaluation_file,  # noqa: F401
                                         log_path, prediction_folder, run_folder, subsets_file)
from nnunet_transfer.study.sources import check_external_source
from nnunet_transfer.study.spec import Study, Target
from nnunet_transfer.study.subsets import target_subsets
from nnunet_transfer.transfer.checkpoint import load_checkpoint


# ---------------------------------------------------------------------------- environment

def _device(study: Study) -> str:
    return study.device or nnunet_commands.default_device()


def _training_env(study: Study) -> dict[str, str]:
    # On the CPU, augmentation in worker processes only competes for the same cores.
    return {"nnUNet_n_proc_DA": os.environ.get("nnUNet_n_proc_DA", "0")} if _device(study) == "cpu" else {}


def reference_dataset(study: Study) -> str:
    """The dataset whose nnU-Net plan every other dataset shares: the study's ``reference``, else the
    first MRI segmentation source, else the first target."""
    if study.reference is not None:
        return dataset_name(study.reference)
    mri_seg = [s for s in study.sources if s.domain == "mri" and s.task == "segmentation" and not s.external]
    return dataset_name(mri_seg[0].dataset if mri_seg else study.targets[0].dataset)


def training_subsets(study: Study, target: Target) -> dict[str, dict[str, list[str]]]:
    """``{fold: {size: cases}}`` of a target with ``train_sizes``, drawn (:mod:`.subsets`) and recorded
    in :func:`subsets_file`. Raises NnunetTransferError when the record holds another subset for a
    fold and size (the seed, the folds' split or the data changed since runs were trained on it)."""
    dataset = dataset_name(target.dataset)
    drawn = target_subsets(dataset, study.folds, target.train_sizes, study.subset_seed)
    path = subsets_file(study, target)
    record = read_json(path) if path.is_file() else {"folds": {}}
    changed = [f"fold {fold} size {size}" for fold, sizes in drawn.items() for size, cases in sizes.items()
               if record["folds"].get(fold, {}).get(size, cases) != cases]
    if changed:
        raise NnunetTransferError(f"{path} records other training cases for {', '.join(changed)} than the study draws "
                                  f"now (subset_seed, the folds' split or the data changed); runs trained on the old "
                                  f"subsets cannot be compared with new ones: use another output folder, or delete "
                                  f"{path} and those runs")
    folds = {**record["folds"], **{fold: {**record["folds"].get(fold, {}), **sizes} for fold, sizes in drawn.items()}}
    if folds != record["folds"]:
        write_json_atomic({"dataset": dataset, "subset_seed": study.subset_seed, "unit": "patients", "folds": folds},
                          path)
    return drawn


def run_schedule(study: Study, run: Run) -> dict | None:
    """The ``training_schedule`` keys a run adds to its plans: the subset of each fold for a size,
    the seed when it is not the default."""
    schedule = {} if run.seed == DEFAULT_SEED else {"seed": run.seed}
    if run.size is not None:
        subsets = training_subsets(study, run.target)
        schedule["train_subset"] = {fold: sizes[str(run.size)] for fold, sizes in subsets.items()}
    return schedule or None


def _write_plans_copy(study: Study, dataset: str, name: str, schedule: dict, base: str | None = None) -> None:
    """The study's plans (or ``base``) of ``dataset`` as ``name``, with ``schedule`` keys set."""
    plans = update_schedule(load_plans(dataset, base or study.plans), schedule)
    write_plans({**plans, "plans_name": name}, dataset)


# ---------------------------------------------------------------------------- running one step

def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _finished(study: Study, step: Step, fold_folder: Path) -> bool:
    """Whether the fold folder holds a finished training: a ``checkpoint_final.pth`` that loads. One that
    does not (a job killed while nnU-Net wrote it, a full disk) is deleted, with why in the step's
    history, and the training runs again (``--c`` would take it before ``checkpoint_latest.pth``)."""
    final = fold_folder / CHECKPOINT_FINAL
    if not final.is_file():
        return False
    try:
        load_checkpoint(final, mmap=True)  # mapped: only the archive's index is read
        return True
    except Exception as e:  # noqa: BLE001 - a truncated file fails in many ways; all mean "not finished"
        final.unlink()
        state.add_history(study.folder, step.id, "retrained", detail=(
            f"{final} does not load ({_first_line(e)}): the training did not finish writing it; trained again"))
        return False


def _prepare_training(study: Study, step: Step, fold_folder: Path) -> bool:
    """True to continue from checkpoint_latest.pth (the epoch it continues at goes into the step's
    history); a run killed while saving it starts over instead (with why in the history)."""
    latest = fold_folder / CHECKPOINT_LATEST
    if not latest.is_file():
        return False
    try:
        epoch = load_checkpoint(latest, mmap=True).get("current_epoch")
    except Exception as e:  # noqa: BLE001 - a truncated file fails in many ways; all mean "start over"
        shutil.rmtree(fold_folder)
        state.add_history(study.folder, step.id, "started over",
                          detail=f"{latest} does not load ({_first_line(e)}): the training starts from epoch 0")
        return False
    state.add_history(study.folder, step.id, "resumed", epoch=epoch, detail=f"continues from {latest} at epoch {epoch}")
    return True


def _train(study: Study, step: Step, dataset: str, configuration: str, fold, trainer: str, plans: str,
           folder: Path) -> None:
    if _finished(study, step, folder):
        return
    resume = _prepare_training(study, step, folder)
    nnunet_commands.train(dataset, configuration, fold, trainer, plans, log_path(study, step),
                          epochs=study.schedule.get("num_epochs"), continue_training=resume,
                          device=_device(study), extra_env=_training_env(study), num_gpus=study.launcher.num_gpus,
                          progress=False)
    if not (folder / CHECKPOINT_FINAL).is_file():
        raise NnunetTransferError(f"{step.id}: nnUNetv2_train finished without {folder / CHECKPOINT_FINAL}; "
                                  f"see {log_path(study, step)}")


@contextlib.contextmanager
def _output_to(log: Path):
    """Send this process's stdout / stderr (file descriptors, so nnU-Net's worker processes too) to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a", encoding="utf-8") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _plan_like_checkpoint(study: Study, step: Step) -> None:
    """The targets planned like the checkpoint of an architecture's first source (its file checked
    against the record first), with its spacing rule."""
    arch = architecture(study, step.arch)
    source = next(s for s in study.sources if s.key == arch.sources[0])
    check_external_source(study, source)
    spacing = list(source.spacing) if isinstance(source.spacing, tuple) else source.spacing
    targets = [dataset_name(t.dataset) for t in study.targets]
    with _output_to(log_path(study, step)):
        plan_like_checkpoint(arch.checkpoint, targets, architecture_plans(study, arch.key), study.configuration,
                             study.num_processes, schedule=study.schedule, progress=False,
                             rules=TransferRuleOptions(**source.rules).rules(), spacing=spacing)


def _plan(study: Study, step: Step) -> None:
    if step.arch is not None:
        _plan_like_checkpoint(study, step)
    else:
        reference = reference_dataset(study)
        others = [dataset_name(d.dataset) for d in (*study.sources, *study.targets) if d.dataset is not None]
        others = [d for d in dict.fromkeys(others) if d != reference]
        with _output_to(log_path(study, step)):  # nnU-Net's fingerprint / preprocessing progress, per dataset
            plan_shared(reference, others, study.plans, [study.configuration], study.num_processes,
                        schedule=study.schedule, batch_size=study.batch_size, twin=study.twin, progress=False,
                        planner=study.planner)
    for target in study.targets:  # drawn and recorded before any training, refused early when too large
        if target.train_sizes:
            training_subsets(study, target)


def _test(study: Study, step: Step) -> None:
    run = step.run
    target = dataset_name(run.target.dataset)
    raw = raw_dir(target)
    if run.target.evaluate_on == "validation":
        validation = run_folder(study, run) / "validation"
        if not validation.is_dir():
            raise NnunetTransferError(f"{step.id}: {validation} does not exist; nnU-Net writes it in its final "
                                      f"validation (schedule.final_validation auto or always, folds other than all)")
        evaluate_run(raw, validation, evaluation_file(study, run), run.target, reference_dir=raw / "labelsTr")
        return
    if not (raw / "imagesTs").is_dir() or not (raw / "labelsTs").is_dir():
        raise NnunetTransferError(f"{target} has no imagesTs / labelsTs: convert the dataset with its test masks, "
                                  f"or set evaluate_on = \"validation\" for this target in the study file")
    out = prediction_folder(study, run)
    if not out.is_dir():
        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        nnunet_commands.predict_in_process(raw / "imagesTs", partial, run_folder(study, run).parent, [run.fold],
                                           log_path(study, step), device=_device(study))
        os.replace(partial, out)
    evaluate_run(raw, out, evaluation_file(study, run), run.target)


def refresh_evaluation(study: Study, run: Run) -> bool:
    """Evaluate a run again from its kept predictions when the target's evaluation (metrics,
    profile, NSD tolerance, lesions) changed since its evaluation file was written; no training or
    prediction is repeated. Returns whether it evaluated (an evaluation file without its summary
    is taken as it is)."""
    path = evaluation_file(study, run)
    summary = path.with_suffix(".summary.json")
    if not path.is_file() or not summary.is_file() or not evaluation_is_stale(read_json(summary), run.target):
        return False
    raw = raw_dir(dataset_name(run.target.dataset))
    if run.target.evaluate_on == "validation":
        predictions, reference = run_folder(study, run) / "validation", raw / "labelsTr"
    else:
        predictions, reference = prediction_folder(study, run), None
    if not predictions.is_dir():
        raise NnunetTransferError(f"{path} was evaluated with other settings than the study file's and its "
                                  f"predictions {predictions} are gone; delete {path} and run the study again")
    evaluate_run(raw, predictions, path, run.target, reference_dir=reference)
    return True


def _pretrain(study: Study, step: Step) -> None:
    source, dataset = step.source, dataset_name(step.source.dataset)
    if step.seed != DEFAULT_SEED:
        _write_plans_copy(study, dataset, pretraining_plans(study, step.seed), {"seed": step.seed})
    _train(study, step, dataset, study.source_configuration(source), "all", source.trainer,
           pretraining_plans(study, step.seed), checkpoint_path(study, source, step.seed).parent)


def _train_run(study: Study, step: Step) -> None:
    """A fine-tuning (attach writes its plans copy with the transfer block) or the scratch baseline."""
    run = step.run
    schedule = run_schedule(study, run)
    if run.source is not None:
        if run.source.external:
            check_external_source(study, run.source)
        attach(checkpoint_path(study, run.source, study.pretrain_seed(run.seed)), dataset_name(run.target.dataset),
               architecture_plans(study, run.arch), finetune_plans(study, run),
               rules=TransferRuleOptions(**run.source.rules).rules(),
               strategy=study.strategy_options.get(run.strategy), schedule=schedule)
    elif schedule is not None:
        _write_plans_copy(study, dataset_name(run.target.dataset), finetune_plans(study, run), schedule,
                          architecture_plans(study, run.arch))
    _train(study, step, dataset_name(run.target.dataset), study.configuration, run.fold, run.trainer,
           finetune_plans(study, run), run_folder(study, run))


STEP_KINDS: dict[str, Callable[[Study, Step], None]] = {
    "plan": _plan, "pretrain": _pretrain, "train": _train_run, "test": _test}


def execute(study: Study, step: Step) -> None:
    """Run one step to completion; raises NnunetTransferError (with the log path) when it fails,
    ValueError for a step kind that is not in :data:`STEP_KINDS`."""
    if step.kind not in STEP_KINDS:
        raise ValueError(step.kind)
    STEP_KINDS[step.kind](study, step)
