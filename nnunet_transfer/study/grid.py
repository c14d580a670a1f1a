"""The study grid: its trained models (runs), its steps, their ids and plans names.

Steps, in dependency order: ``plan`` (shared plans + preprocessing, once), ``pretrain/<source>``
(once per pretraining: sources that pretrain one dataset with one task share it; a source given
as a ``checkpoint`` has none), ``train/<target>/<init>/<strategy>/fold_<f>`` (fine-tuning from
each source with each of its strategies, under its transfer rules, and ``scratch`` with the
identical plans and schedule), and ``test/...`` (prediction and evaluation of that model). A target
with ``train_sizes`` has these runs once per size, ``train/<target>/n<size>/<init>/<strategy>/fold_<f>``,
trained with plans ``<plans>_n<size>``. Each seed of the study's ``seeds`` other than 0 adds
``seed_<s>/`` before the fold (and ``_s<s>`` to the plans name); with ``pretrain_seeds = "each"``
the pretrainings too (``pretrain/<source>/seed_<s>``). Sources with ``plan = "like_checkpoint"``
add a plan per architecture (``plan/<arch>``, :mod:`.architectures`) and train, with a scratch
baseline of their own, under ``train/<target>[/n<size>]/<arch>/<init>/...``.

Pure: no file is read or written here. What a step does is :mod:`.steps`, where its files are
:mod:`.paths`, in which order steps may run :mod:`.scheduler`.
"""
from __future__ import annotations

from dataclasses import dataclass

from nnunet_transfer.names import SCRATCH, SCRATCH_TRAINER, STRATEGIES
from nnunet_transfer.plans_blocks import DEFAULT_SEED
from nnunet_transfer.study.architectures import (architecture_plans, architectures_used, plan_step_id,
                                                  source_architecture)
from nnunet_transfer.study.spec import Source, Study, Target


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
    kind: str  # plan | pretrain | train | test: a key of steps.STEP_KINDS
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


# ---------------------------------------------------------------------------- plans names

def seeded_plans(plans: str, seed: int) -> str:
    """A plans name with the seed: ``<plans>_s<seed>``, the name itself for seed 0."""
    return plans if seed == DEFAULT_SEED else f"{plans}_s{seed}"


def pretraining_plans(study: Study, seed: int) -> str:
    """The plans a source is pretrained with at ``seed``: the study's, or a copy with the seed."""
    return seeded_plans(study.plans, seed)


def finetune_plans(study: Study, run: Run) -> str:
    """The plans a run trains with: the study's (scratch), a copy with the transfer block (fine-tuning:
    ``<plans>_from_<source id>_<strategy>``, one per source even when two pretrain on one dataset),
    each with ``_n<size>`` and the subset for a training size, and ``_s<seed>`` for a seed other than 0."""
    base = architecture_plans(study, run.arch)  # <plans>_<arch> for a like-checkpoint architecture
    plans = base if run.source is None else f"{base}_from_{run.source.key}_{run.strategy}"
    return seeded_plans(plans if run.size is None else f"{plans}_n{run.size}", run.seed)
