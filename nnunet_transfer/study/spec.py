"""The study file (TOML): sources x targets x strategies x folds, plus the from-scratch baseline.

Example::

    name = "transfer_study"
    configuration = "3d_fullres"          # or "2d"
    planner = "ExperimentPlanner"         # or nnU-Net's residual-encoder presets nnUNetPlannerResEncM / L / XL
    folds = [0, 1, 2, 3, 4]
    seeds = [0, 1, 2]                     # training seeds: every fine-tuning and scratch run once per seed
    pretrain_seeds = "one"                # or "each": each source pretrained once per seed
    strategies = ["finetune"]             # finetune | warmup | frozen_encoder | encoder_lr
    nnunet_root = "nnunet"                # optional: nnUNet_raw / _preprocessed / _results below this folder

    [schedule]                            # the training_schedule block of every dataset
    num_epochs = 100

    [[sources]]
    dataset = 901
    task = "segmentation"                 # classification | segmentation | ssl:<pretext>
    domain = "mri"                        # mri | natural

    [[sources]]                           # the same pretraining again, transferred another way
    dataset = 903
    task = "ssl:models_genesis"
    label = "mri models genesis"
    strategies = ["finetune", "frozen_encoder"]   # optional: this source's strategies
    [sources.transfer]                    # the rules of attach / the plans' transfer block
    load = "encoder"                      # encoder | encoder+decoder | all-but-head

    [[sources]]                           # a network from elsewhere: no pretraining step, its SHA-256 checked
    checkpoint = "openmind_mae.pth"       # an nnssl / nnU-Net / own checkpoint (relative to this file)
    task = "MAE"                          # free text for the table
    label = "openmind mae"
    plan = "like_checkpoint"              # optional: targets planned like it, scratch in its architecture too

    [[targets]]
    dataset = 911
    metric = "dice"                       # the primary metric (figures): dice | miou | nsd | lesion_f1 | ...
    lesions = true                        # lesion metrics (default table column: the lesion detection rate)
    profile = "atlas2"                    # optional: a challenge's lesion metrics (atlas2 | isbi2015 | msseg2016)
    metrics = ["lesion_f1", "atlas2_lesionwise_f1", "hd95"]  # optional: more table columns
    train_sizes = [2, 4, 8]               # optional: label efficiency, nested subsets of training patients

Every key is type-checked when the file is read (:class:`StudyFile`, a pydantic model whose JSON
Schema editors can use: ``documentation/reference/study.schema.json``); an error names the key
and what is allowed. Two sources, targets, strategies, folds or seeds that would share a step id
are refused. A source with ``[sources.transfer]`` keys carries them in its row label and step id
(``mri models genesis [load=encoder]``), so one pretraining can be compared under several rules;
sources that pretrain the same dataset with the same task share one pretraining step.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.hub import is_hub_reference, parse_hub_reference
from nnunet_transfer.names import (DEFAULT_PLANNER, DEVICES, DOMAINS, EVALUATION_PROFILES, NSD_TOLERANCE_MM, PLANNERS,
                                   PRETRAINING_TASKS, SCRATCH, STRATEGIES)
from nnunet_transfer.plans_blocks import DEFAULT_PLANS, StrategyOptions, TrainingSchedule, TransferRuleOptions
from nnunet_transfer.planning.twin import TWIN_CONFIGURATION
from nnunet_transfer.study.metrics import STUDY_METRICS, StudyMetric  # noqa: F401 - StudyMetric: the spec's API
from nnunet_transfer.validation import StrictModel, first_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI
    import tomli as tomllib



METRICS = tuple(STUDY_METRICS)
CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")
LAUNCHERS = ("local", "slurm", "submitit-local")
PRETRAIN_SEEDS = ("one", "each")
EVALUATE_ON = ("test", "validation")
SOURCE_PLANS = ("shared", "like_checkpoint")  # [[sources]] plan: the plans its fine-tunings start from
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

DatasetRef = Annotated[int | str, Field(description="a dataset id (901) or name (Dataset901_X)")]
Fold = Annotated[NonNegativeInt | Literal["all"], Field(description="a fold number or \"all\"")]


def slug(label: str) -> str:
    """A label as a step-id part: runs of characters other than letters and digits become ``_``
    (``"mri seg"``, ``"mri-seg"`` -> ``mri_seg``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", str(label)).strip("_")


# ---------------------------------------------------------------------------- the file, typed

class SourceSpec(StrictModel):
    """One ``[[sources]]`` table: a pretraining dataset, its task and domain; or a ``checkpoint``
    from elsewhere (nnssl, another nnU-Net model), used as it is, with task / domain as labels."""

    dataset: DatasetRef | None = Field(None, description="the pretraining dataset (not with checkpoint)")
    task: Annotated[str, Field(min_length=1, description=(
        "segmentation | classification | ssl:<pretext>; with checkpoint: free text for the table"))] | None = None
    domain: Literal[DOMAINS] = "mri"
    label: Annotated[str, Field(min_length=1)] | None = None
    checkpoint: Annotated[str, Field(min_length=1, description=(
        "a checkpoint file used instead of pretraining (relative to the study file), or a hub id "
        "hf://OWNER/REPO[@REVISION][:FILE] / huggingface.co URL, fetched when the study starts; its SHA-256 (and "
        "a hub file's commit) is recorded when the study starts and checked before each fine-tuning"))] | None = None
    transfer: TransferRuleOptions | None = Field(None, description=(
        "how this source is transferred: the rule keys of attach / the plans' transfer block (load, input_channels, "
        "channel_map, unmapped_channels, keep_classes, inflation, kernel, strict, allow_no_encoder_weights)"))
    strategies: Annotated[list[Literal[tuple(STRATEGIES)]], Field(min_length=1, description=(
        "this source's fine-tuning strategies (default: the study's strategies)"))] | None = None
    plan: Literal[SOURCE_PLANS] = Field("shared", description=(
        "with checkpoint: shared = fine-tuned into the study's shared plans; like_checkpoint = the targets are "
        "planned like this checkpoint (its architecture, patch and batch size), and scratch is trained in that "
        "architecture too"))
    spacing: Literal["auto", "checkpoint", "nnunet", "none"] | Annotated[
        list[PositiveFloat], Field(min_length=3, max_length=3)] | None = Field(None, description=(
            "with plan = like_checkpoint: the spacing the targets are preprocessed at "
            "(plan-like-checkpoint --spacing): "
            "checkpoint (the pretraining's), nnunet (nnU-Net's own), none (no case resampled) or three spacings in mm "
            "in nnU-Net's image axis order (as dataset_fingerprint.json's spacings); default auto: checkpoint for "
            "nnssl checkpoints, nnunet otherwise"))


class TargetSpec(StrictModel):
    """One ``[[targets]]`` table: a fine-tuning dataset and how it is scored."""

    dataset: DatasetRef
    label: Annotated[str, Field(min_length=1)] | None = None
    metric: Literal[METRICS] = Field("dice", description="the primary metric: first in the table, in the figures")
    metrics: list[Literal[METRICS]] | None = Field(None, description=(
        "further table columns (default: lesion_tpr when lesions = true, else none)"))
    lesions: bool = False
    profile: Literal[EVALUATION_PROFILES] | None = Field(None, description=(
        "a challenge's lesion metrics, as its scorer computes them (needs lesions = true)"))
    nsd_tolerance_mm: Annotated[float, Field(ge=0)] = NSD_TOLERANCE_MM
    evaluate_on: Literal[EVALUATE_ON] = "test"
    train_sizes: Annotated[list[PositiveInt], Field(min_length=1, description=(
        "label efficiency: train every initialisation on nested subsets of this many training patients "
        "(one case per patient unless the dataset has patients.json), drawn once per fold"))] | None = None


class LauncherSpec(StrictModel):
    """``[launcher]``: where steps run and what a cluster job asks for."""

    kind: Literal[LAUNCHERS] = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    timeout_min: PositiveInt = 24 * 60
    gpus_per_node: NonNegativeInt | None = None
    cpus_per_task: PositiveInt = 8
    mem_gb: PositiveFloat | None = None
    num_gpus: PositiveInt = 1
    max_parallel: PositiveInt = 1
    max_requeues: NonNegativeInt = Field(3, description=(
        "slurm: how often a job that reaches its time limit or is preempted is requeued to continue from its "
        "latest checkpoint (0: never)"))
    signal_delay_s: PositiveInt = Field(90, description=(
        "slurm: seconds before the time limit at which SLURM warns a job (--signal), which then stops its "
        "training and requeues itself"))
    gpus: Annotated[list[NonNegativeInt | Annotated[str, Field(min_length=1)]], Field(min_length=1, description=(
        "local: run jobs side by side, one per device id (CUDA_VISIBLE_DEVICES), e.g. [0, 1, 2, 3]"))] | None = None


class StudyFile(StrictModel):
    """The whole study file as written (before defaults that depend on other keys)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    configuration: Literal[CONFIGURATIONS] = "3d_fullres"
    folds: Annotated[list[Fold], Field(min_length=1)] = [0]
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1, description=(
        "training seeds (training_schedule.seed): every fine-tuning and scratch run is trained once per seed; seed 0 "
        "keeps the step ids of a one-seed study"))] = [0]
    pretrain_seeds: Literal[PRETRAIN_SEEDS] = Field("one", description=(
        "one: every source is pretrained once, with the first seed; each: once per seed, and each seed's "
        "fine-tunings start from that seed's pretraining"))
    strategies: Annotated[list[Literal[tuple(STRATEGIES)]], Field(min_length=1)] = ["finetune"]
    sources: list[SourceSpec] = []
    targets: list[TargetSpec] = []
    schedule: TrainingSchedule = TrainingSchedule()
    strategy_options: dict[Literal[tuple(STRATEGIES)], StrategyOptions] = {}
    reference: DatasetRef | None = None
    plans: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")] = DEFAULT_PLANS
    nnunet_root: str | None = None
    output: str | None = None
    device: Literal[DEVICES] | None = None
    num_processes: PositiveInt = 2
    batch_size: PositiveInt | None = None
    subset_seed: NonNegativeInt = 0
    planner: Literal[PLANNERS] = Field(DEFAULT_PLANNER, description=(
        "nnU-Net's experiment planner of the shared plans: ExperimentPlanner (plain U-Net) or a residual-encoder "
        "preset nnUNetPlannerResEncM / L / XL"))
    launcher: LauncherSpec = LauncherSpec()


def _check_metrics(path: Path, index: int, target: Target) -> None:
    """A target's metrics must be ones its evaluation computes: lesion metrics need lesions = true,
    a profile's metrics need that profile."""
    if target.profile is not None and not target.lesions:
        _fail(path, f"targets[{index}].profile", "needs lesions = true (the profile's metrics are lesion metrics)")
    for metric in target.table_metrics:
        key = f"targets[{index}].{'metric' if metric.name == target.metric else 'metrics'}"
        if metric.lesions and not target.lesions:
            _fail(path, key, f"{metric.name!r} is a lesion metric: set lesions = true on this target")
        if metric.profile is not None and metric.profile != target.profile:
            _fail(path, key, f"{metric.name!r} is a metric of the {metric.profile} profile: set "
                             f"profile = \"{metric.profile}\" on this target")


def json_schema() -> dict[str, Any]:
    """JSON Schema of the study file (for editors that check TOML against a schema)."""
    schema = StudyFile.model_json_schema()
    schema["title"] = "nnunet_transfer study file"
    return schema


# ---------------------------------------------------------------------------- the parsed study

def rule_text(rules: dict[str, Any]) -> str:
    """Transfer rule keys as a label part: ``load=encoder, channel_map=FLAIR<-T1``."""
    def value(v: Any) -> str:
        return ", ".join(f"{k}<-{w}" for k, w in v.items()) if isinstance(v, dict) else str(v).lower()
    return ", ".join(f"{k}={value(v)}" for k, v in rules.items())


@dataclass(frozen=True)
class Source:
    dataset: str | int | None  # None: an external checkpoint
    task: str
    domain: str
    name: str  # the study file's label, or "<domain> <task>"
    checkpoint: Path | str | None = None  # an external checkpoint (str: a hub reference), used instead of pretraining
    rules: dict[str, Any] = field(default_factory=dict)  # [sources.transfer]: the rule keys that are set
    strategies: tuple[str, ...] | None = None  # this source's strategies (None: the study's)
    pretraining: str | None = None  # the id of its pretraining step, shared by sources of one pretraining
    plan: str = "shared"  # shared: the study's shared plans; like_checkpoint: plans like its checkpoint
    spacing: str | tuple[float, ...] | None = None  # plan like_checkpoint: plan-like-checkpoint's spacing rule

    @property
    def label(self) -> str:
        """Row label in the table: the name, with the transfer rules set for this source, e.g.
        ``mri models genesis [load=encoder]``."""
        return f"{self.name} [{rule_text(self.rules)}]" if self.rules else self.name

    @property
    def external(self) -> bool:
        return self.checkpoint is not None

    @property
    def trainer(self) -> str:
        if self.external:
            raise ValueError(f"source {self.label!r} is an external checkpoint; it has no pretraining trainer")
        return PRETRAINING_TASKS[self.task]

    @property
    def key(self) -> str:
        """Identifier in step ids and folder names."""
        return slug(self.label)


@dataclass(frozen=True)
class Target:
    dataset: str | int
    label: str
    metric: str = "dice"
    lesions: bool = False
    evaluate_on: str = "test"  # test: imagesTs vs labelsTs; validation: nnU-Net's fold validation vs labelsTr
    train_sizes: tuple[int, ...] = ()  # label efficiency: training patients per subset (empty: all cases)
    metrics: tuple[str, ...] | None = None  # further table metrics (None: lesion_tpr with lesions, else none)
    profile: str | None = None  # evaluation profile of the lesion metrics
    nsd_tolerance_mm: float = NSD_TOLERANCE_MM

    @property
    def table_metrics(self) -> tuple[StudyMetric, ...]:
        """The table's metrics of this target, the primary one first."""
        more = self.metrics if self.metrics is not None else (("lesion_tpr",) if self.lesions else ())
        return tuple(STUDY_METRICS[m] for m in dict.fromkeys((self.metric, *more)))

    @property
    def key(self) -> str:
        """Identifier in step ids and folder names."""
        return slug(self.label)


@dataclass(frozen=True)
class Study:
    """A parsed, checked study file. ``folder`` holds state, logs, predictions and results."""

    name: str
    path: Path
    folder: Path
    configuration: str
    folds: tuple[int | str, ...]
    strategies: tuple[str, ...]
    sources: tuple[Source, ...]
    targets: tuple[Target, ...]
    schedule: dict[str, Any] = field(default_factory=dict)  # the training_schedule block
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: str | int | None = None
    plans: str = DEFAULT_PLANS
    nnunet_root: Path | None = None
    device: str | None = None
    num_processes: int = 2
    batch_size: int | None = None
    subset_seed: int = 0
    launcher: LauncherSpec = LauncherSpec()
    planner: str = DEFAULT_PLANNER
    seeds: tuple[int, ...] = (0,)
    pretrain_seeds: str = "one"

    def pretrain_seed(self, seed: int) -> int:
        """The seed of the pretraining a run of ``seed`` fine-tunes from."""
        return seed if self.pretrain_seeds == "each" else self.seeds[0]

    @property
    def pretraining_seeds(self) -> tuple[int, ...]:
        return self.seeds if self.pretrain_seeds == "each" else self.seeds[:1]

    def strategies_of(self, source: Source) -> tuple[str, ...]:
        return source.strategies or self.strategies

    @property
    def several_strategies(self) -> bool:
        """Whether any source is fine-tuned with another strategy than the others (rows then name it)."""
        return len({st for s in self.sources for st in self.strategies_of(s)}) > 1

    @property
    def twin(self) -> bool:
        """2D natural-image sources pretrain the 2D twin of a 3D network."""
        return self.configuration != "2d" and any(s.domain == "natural" and not s.external for s in self.sources)

    def source_configuration(self, source: Source) -> str:
        return TWIN_CONFIGURATION if self.twin and source.domain == "natural" else self.configuration


def _fail(path: Path, key: str, message: str) -> None:
    raise NnunetTransferError(f"{path}: '{key}' {message}")


def _unique(path: Path, key: str, items: list, what: str, reserved: tuple[str, ...] = ()) -> None:
    """Refuse items that share a step id (``what`` says which part of the id)."""
    seen: dict[str, Any] = {}
    for item in items:
        ident = slug(item) if isinstance(item, str) else str(item)
        if ident in reserved or ident in seen:
            other = ident if ident in reserved else seen[ident]
            _fail(path, key, f"has {item!r} and {other!r}, which share the {what} {ident!r} in step ids and folder "
                             f"names; give them distinct labels")
        seen[ident] = item


def _source(path: Path, index: int, spec: SourceSpec) -> Source:
    """A ``[[sources]]`` table checked: a dataset with one of our pretraining tasks, or a checkpoint."""
    key = f"sources[{index}]"
    rules = spec.transfer.model_dump(exclude_none=True) if spec.transfer is not None else {}
    options = {"rules": rules, "strategies": tuple(spec.strategies) if spec.strategies else None,
               "spacing": tuple(spec.spacing) if isinstance(spec.spacing, list) else spec.spacing}
    if spec.spacing is not None and spec.plan != "like_checkpoint":
        _fail(path, f"{key}.spacing", "sets the spacing of targets planned like this source's checkpoint; it needs "
                                      "plan = \"like_checkpoint\" (the shared plans keep nnU-Net's spacing)")
    if spec.plan != "shared" and spec.checkpoint is None:
        _fail(path, f"{key}.plan", f"is {spec.plan!r}, which needs a checkpoint to plan like; a pretrained dataset "
                                   f"uses the shared plans")
    if spec.strategies:
        _unique(path, f"{key}.strategies", list(spec.strategies), "strategy")
    if spec.checkpoint is None:
        if spec.dataset is None:
            _fail(path, key, "needs a dataset to pretrain on, or a checkpoint to start from")
        task = spec.task or "segmentation"
        if task not in PRETRAINING_TASKS:
            _fail(path, f"{key}.task", f"is {task!r}; choose from {', '.join(PRETRAINING_TASKS)} (or give a "
                                       f"checkpoint, whose task is free text)")
        return Source(spec.dataset, task, spec.domain, spec.label or f"{spec.domain} {task}", **options)
    if spec.dataset is not None:
        _fail(path, key, "has both dataset and checkpoint; a checkpoint source is not pretrained here, so it takes "
                         "no dataset")
    if is_hub_reference(spec.checkpoint):  # a reference, resolved (and pinned) when the study starts
        try:
            parse_hub_reference(spec.checkpoint)
        except NnunetTransferError as e:
            _fail(path, f"{key}.checkpoint", str(e))
        checkpoint = spec.checkpoint.strip()
    else:
        checkpoint = (path.parent / spec.checkpoint).resolve()
    task = spec.task or "external"
    return Source(None, task, spec.domain, spec.label or f"{spec.domain} {task}", checkpoint, plan=spec.plan,
                  **options)


def _share_pretrainings(sources: list[Source]) -> list[Source]:
    """Each pretrained source with the id of its pretraining step: sources that pretrain the same
    dataset with the same task in the same domain (e.g. one Models Genesis network transferred
    under two rules) share the step of the first of them."""
    first: dict[tuple, str] = {}
    out = []
    for source in sources:
        if not source.external:
            ident = (str(source.dataset), source.task, source.domain)
            if ident not in first:  # the name's id, unless another pretraining has it (one name, two datasets)
                first[ident] = slug(source.name) if slug(source.name) not in first.values() else source.key
            source = replace(source, pretraining=first[ident])
        out.append(source)
    return out


def load_study(path: str | Path) -> Study:
    """Read and check a study file; relative folders are relative to the file.

    Raises NnunetTransferError naming the file and key for a missing file, invalid TOML, a key of
    the wrong type, an unknown key or value, no sources / targets, or two entries that share a step
    id (duplicate labels, folds or strategies).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise NnunetTransferError(f"study file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise NnunetTransferError(f"{path} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NnunetTransferError(f"cannot read study file {path}: {e}") from None
    try:
        spec = StudyFile.model_validate(data)
    except ValidationError as e:
        raise NnunetTransferError(f"{path}: {first_problem(e, model=StudyFile, what='study key')}") from None
    for what in ("sources", "targets"):
        if not getattr(spec, what):
            _fail(path, what, "needs at least one [[...]] table")
    sources = _share_pretrainings([_source(path, i, s) for i, s in enumerate(spec.sources)])
    targets = [Target(t.dataset, t.label or str(t.dataset), t.metric, t.lesions, t.evaluate_on,
                      tuple(sorted(t.train_sizes or ())), None if t.metrics is None else tuple(t.metrics), t.profile,
                      t.nsd_tolerance_mm) for t in spec.targets]
    _unique(path, "sources", [s.label for s in sources], "source id", reserved=(SCRATCH,))
    _unique(path, "targets", [t.label for t in targets], "target id")
    _unique(path, "strategies", list(spec.strategies), "strategy")
    _unique(path, "folds", list(spec.folds), "fold")
    _unique(path, "seeds", list(spec.seeds), "seed")
    for i, target in enumerate(targets):
        _unique(path, f"targets[{i}].train_sizes", list(target.train_sizes), "training size")
        _check_metrics(path, i, target)
    if spec.schedule.train_subset is not None:
        _fail(path, "schedule.train_subset", "is written by the study runner from the targets' train_sizes; "
                                              "set train_sizes on a [[targets]] table instead")
    if spec.schedule.seed is not None:
        _fail(path, "schedule.seed", "is written by the study runner from the study's seeds; set seeds = [...] "
                                     "at the top of the study file instead")
    schedule = spec.schedule.block()
    validation = any(t.evaluate_on == "validation" for t in targets)
    if validation and ("all" in spec.folds or schedule.get("final_validation") == "never"):
        _fail(path, "targets", "evaluate_on = \"validation\" needs folds without \"all\" and nnU-Net's final "
                               "validation (schedule.final_validation auto or always)")
    # nnU-Net's validation pass after each fold is needless work when every target is scored on its
    # test set; it is what targets with evaluate_on = "validation" are scored on.
    schedule.setdefault("final_validation", "auto" if validation else "never")
    root = path.parent
    name = spec.name or path.stem
    return Study(
        name=name, path=path, folder=(root / (spec.output or name)).resolve(), configuration=spec.configuration,
        folds=tuple(spec.folds), strategies=tuple(spec.strategies), sources=tuple(sources), targets=tuple(targets),
        schedule=schedule,
        strategy_options={k: v.model_dump(exclude_none=True) for k, v in spec.strategy_options.items()},
        reference=spec.reference, plans=spec.plans,
        nnunet_root=(root / spec.nnunet_root).resolve() if spec.nnunet_root is not None else None,
        device=spec.device, num_processes=spec.num_processes, batch_size=spec.batch_size,
        subset_seed=spec.subset_seed, launcher=spec.launcher, planner=spec.planner, seeds=tuple(spec.seeds),
        pretrain_seeds=spec.pretrain_seeds)
