"""The study grid as steps, and how one step runs.

Steps, in dependency order: ``plan`` (shared plans + preprocessing, once), ``pretrain/<source>``
(once per pretraining: sources that pretrain one dataset with one task share it; a source given
as a ``checkpoint`` has none, its file is checked against the SHA-256 recorded when the study
started before each fine-tuning), ``train/<target>/<init>/<strategy>/fold_<f>`` (fine-tuning from
each source with each of its strategies, under its transfer rules, and ``scratch`` with the
identical plans and schedule), and ``test/...`` (nnU-Net's predictor on the target's imagesTs,
then the evaluation against its labelsTs). A target with ``train_sizes`` has these runs once per
size, ``train/<target>/n<size>/<init>/<strategy>/fold_<f>``, each training on the size's subset
(:mod:`nnunet_transfer.study.subsets`) through a plans copy ``<plans>_n<size>`` whose
``training_schedule.train_subset`` lists the cases: the preprocessed data are shared, nothing is
copied. Each seed of the study's ``seeds`` other than 0 adds ``seed_<s>/`` before the fold (and
``_s<s>`` to the plans name, whose ``training_schedule.seed`` it sets); with ``pretrain_seeds =
"each"`` the pretrainings too (``pretrain/<source>/seed_<s>``). Sources with ``plan =
"like_checkpoint"`` add a plan per architecture (``plan/<arch>``, :mod:`.architectures`) and train,
with a scratch baseline of their own, under ``train/<target>[/n<size>]/<arch>/<init>/...``.
Trainings run stock ``nnUNetv2_train``; outputs are checked before a step is done.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from nnunet_transfer import nnunet_commands
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.hub import ResolvedCheckpoint
from nnunet_transfer.layout import (CHECKPOINT_FINAL, CHECKPOINT_LATEST, NNUNET_FOLDERS, raw_dir,
                                    require_nnunet_folders, resolve_dataset, results_folder)
from nnunet_transfer.io import read_json, write_json_atomic
from nnunet_transfer.names import SCRATCH, SCRATCH_TRAINER, STRATEGIES
from nnunet_transfer.planning.attach import attach
from nnunet_transfer.planning.like_checkpoint import plan_like_checkpoint
from nnunet_transfer.planning.plans_file import load_plans, write_plans
from nnunet_transfer.planning.shared import plan_shared
from nnunet_transfer.plans_blocks import DEFAULT_SEED, TransferRuleOptions, update_schedule
from nnunet_transfer.study.architectures import (architecture, architecture_plans, architectures_used,
                                                  plan_step_id, source_architecture)
from nnunet_transfer.study.evaluation import evaluate_run, evaluation_is_stale
from nnunet_transfer.study.sources import check_external_source, external_checkpoint
from nnunet_transfer.study.spec import Source, Study, Target
from nnunet_transfer.study.state import step_file_stem
from nnunet_transfer.study.subsets import target_subsets
from nnunet_transfer.transfer.checkpoint import load_checkpoint


@dataclass(frozen=True)
class Run:
    """One trained model of the grid: a target, its initialisation and strategy, one fold."""

    target: Target
    source: Source | None  # None: from scratch
    strategy: str  # a STRATEGIES key, or "scratch"
    fold: int | str
    size: int | None = None  # training patients (a target's train_sizes); None: every training case
    seed: int = DEFAULT_SEED  # the training seed (training_schedule.seed)
    arch: str | None = None  # the architecture key of a like-checkpoint plan; None: the shared plans

    @property
    def init(self) -> str:
        return self.source.key if self.source else SCRATCH

    @property
    def trainer(self) -> str:
        return SCRATCH_TRAINER if self.source is None else STRATEGIES[self.strategy]

    @property
    def path(self) -> str:
        """``<target>[/n<size>][/<arch>]/<init>/<strategy>[/seed_<s>]/fold_<f>``: step-id suffix and
        folder of predictions / evaluations (no seed part for seed 0, so a one-seed study keeps its ids
        when seeds are added; no architecture part for the shared plans)."""
        size = "" if self.size is None else f"n{self.size}/"
        arch = "" if self.arch is None else f"{self.arch}/"
        return f"{self.target.key}/{size}{arch}{self.init}/{self.strategy}/{seed_part(self.seed)}fold_{self.fold}"


def row_label(study: Study, run: Run) -> str:
    """The run's row in the study's table: the source's label (with its transfer rules), with the
    strategy when the study fine-tunes with more than one; ``scratch``."""
    if run.source is None:
        return SCRATCH
    return f"{run.source.label} ({run.strategy})" if study.several_strategies else run.source.label


def seed_part(seed: int) -> str:
    """The seed's part of a step id: none for seed 0, else ``seed_<s>/``."""
    return "" if seed == DEFAULT_SEED else f"seed_{seed}/"


def pretrain_step_id(source: Source, seed: int) -> str:
    """``pretrain/<pretraining id>[/seed_<s>]``: one step per pretraining, shared by the sources that
    transfer it under different rules."""
    return f"pretrain/{source.pretraining}" + ("" if seed == DEFAULT_SEED else f"/seed_{seed}")


@dataclass(frozen=True)
class Step:
    id: str
    kind: str  # plan | pretrain | train | test
    deps: tuple[str, ...] = ()
    source: Source | None = None
    run: Run | None = None
    seed: int = DEFAULT_SEED  # a pretraining's seed
    arch: str | None = None  # a plan step's architecture key (None: the shared plans)


def runs(study: Study) -> list[Run]:
    """Every (target, training size, seed, architecture, source or scratch, strategy, fold) of the
    study, scratch last per target, size, seed, fold and architecture (the shared plans first)."""
    out = []
    archs = {s.key: source_architecture(study, s) for s in study.sources}
    for target in study.targets:
        for size in target.train_sizes or (None,):
            for seed in study.seeds:
                for fold in study.folds:
                    for arch in architectures_used(study):
                        out += [Run(target, s, strategy, fold, size, seed, arch) for s in study.sources
                                if archs[s.key] == arch for strategy in study.strategies_of(s)]
                        out.append(Run(target, None, SCRATCH, fold, size, seed, arch))
    return out


def expand(study: Study) -> list[Step]:
    """The study's steps in an order that respects every dependency. Plan steps run one after
    another (they fingerprint the same datasets), each architecture's after the shared plans."""
    steps, after = [], ()
    for arch in architectures_used(study):
        steps.append(Step(plan_step_id(arch), "plan", after, arch=arch))
        after = (plan_step_id(arch),)
    pretrained = {}
    for source in (s for s in study.sources if not s.external):
        for seed in study.pretraining_seeds:
            step_id = pretrain_step_id(source, seed)
            pretrained.setdefault(step_id, Step(step_id, "pretrain", ("plan",), source=source, seed=seed))
    steps += pretrained.values()
    for run in runs(study):
        deps = (plan_step_id(run.arch),) if run.source is None or run.source.external else \
            (pretrain_step_id(run.source, study.pretrain_seed(run.seed)),)
        steps.append(Step(f"train/{run.path}", "train", deps, run=run))
        steps.append(Step(f"test/{run.path}", "test", (f"train/{run.path}",), run=run))
    return steps


# ---------------------------------------------------------------------------- environment

def activate(study: Study) -> None:
    """Point nnU-Net at the study's folders (``nnunet_root``) or check the environment has them."""
    if study.nnunet_root is not None:
        for name in NNUNET_FOLDERS:
            os.environ[name] = str(study.nnunet_root / name)
            (study.nnunet_root / name).mkdir(parents=True, exist_ok=True)
    require_nnunet_folders(*NNUNET_FOLDERS)


def dataset_name(dataset: str | int) -> str:
    return resolve_dataset(dataset)


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


def seeded_plans(plans: str, seed: int) -> str:
    """A plans name with the seed: ``<plans>_s<seed>``, the name itself for seed 0."""
    return plans if seed == DEFAULT_SEED else f"{plans}_s{seed}"


def pretraining_plans(study: Study, seed: int) -> str:
    """The plans a source is pretrained with at ``seed``: the study's, or a copy with the seed."""
    return seeded_plans(study.plans, seed)


def checkpoint_path(study: Study, source: Source, seed: int = DEFAULT_SEED) -> Path | ResolvedCheckpoint:
    """The checkpoint a source offers: its file (external; a hub reference: the file recorded when the
    study started, as a ResolvedCheckpoint), else its pretraining's at ``seed``."""
    if source.external:
        return external_checkpoint(study, source)
    return results_folder(dataset_name(source.dataset), source.trainer, pretraining_plans(study, seed),
                          study.source_configuration(source), "all") / CHECKPOINT_FINAL


def finetune_plans(study: Study, run: Run) -> str:
    """The plans a run trains with: the study's (scratch), a copy with the transfer block (fine-tuning:
    ``<plans>_from_<source id>_<strategy>``, one per source even when two pretrain on one dataset),
    each with ``_n<size>`` and the subset for a training size, and ``_s<seed>`` for a seed other than 0."""
    base = architecture_plans(study, run.arch)  # <plans>_<arch> for a like-checkpoint architecture
    plans = base if run.source is None else f"{base}_from_{run.source.key}_{run.strategy}"
    return seeded_plans(plans if run.size is None else f"{plans}_n{run.size}", run.seed)


def subsets_file(study: Study, target: Target) -> Path:
    return study.folder / "subsets" / f"{target.key}.json"


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


def run_folder(study: Study, run: Run) -> Path:
    return results_folder(dataset_name(run.target.dataset), run.trainer, finetune_plans(study, run),
                          study.configuration, run.fold)


def prediction_folder(study: Study, run: Run) -> Path:
    return study.folder / "predictions" / run.path


def evaluation_file(study: Study, run: Run) -> Path:
    return study.folder / "evaluations" / f"{run.path}.csv"


def log_path(study: Study, step: Step) -> Path:
    return study.folder / "logs" / f"{step_file_stem(step.id)}.log"


# ---------------------------------------------------------------------------- running one step

def _prepare_training(fold_folder: Path) -> bool:
    """True to continue from checkpoint_latest.pth; a run killed while saving it starts over instead."""
    latest = fold_folder / CHECKPOINT_LATEST
    if not latest.is_file():
        return False
    try:
        load_checkpoint(latest)
        return True
    except Exception:  # noqa: BLE001 - a truncated file fails in many ways; all mean "start over"
        shutil.rmtree(fold_folder)
        return False


def _train(study: Study, step: Step, dataset: str, configuration: str, fold, trainer: str, plans: str,
           folder: Path) -> None:
    if (folder / CHECKPOINT_FINAL).is_file():
        return
    nnunet_commands.train(dataset, configuration, fold, trainer, plans, log_path(study, step),
                          epochs=study.schedule.get("num_epochs"), continue_training=_prepare_training(folder),
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


def _test(study: Study, step: Step, run: Run) -> None:
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


def execute(study: Study, step: Step) -> None:
    """Run one step to completion; raises NnunetTransferError (with the log path) when it fails."""
    if step.kind == "plan":
        _plan(study, step)
    elif step.kind == "pretrain":
        source, dataset = step.source, dataset_name(step.source.dataset)
        if step.seed != DEFAULT_SEED:
            _write_plans_copy(study, dataset, pretraining_plans(study, step.seed), {"seed": step.seed})
        _train(study, step, dataset, study.source_configuration(source), "all", source.trainer,
               pretraining_plans(study, step.seed), checkpoint_path(study, source, step.seed).parent)
    elif step.kind == "train":
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
    elif step.kind == "test":
        _test(study, step, step.run)
    else:
        raise ValueError(step.kind)
