"""The study file (TOML): sources x targets x strategies x folds, plus the from-scratch baseline.

Example::

    name = "transfer_study"
    configuration = "3d_fullres"          # or "2d"
    folds = [0, 1, 2, 3, 4]
    strategies = ["finetune"]             # finetune | warmup | frozen_encoder | encoder_lr
    nnunet_root = "nnunet"                # optional: nnUNet_raw / _preprocessed / _results below this folder

    [schedule]                            # the training_schedule block of every dataset
    num_epochs = 100

    [[sources]]
    dataset = 901
    task = "segmentation"                 # classification | segmentation | ssl:<pretext>
    domain = "mri"                        # mri | natural

    [[targets]]
    dataset = 911
    metric = "dice"                       # dice | miou
    lesions = true                        # also the lesion detection rate

Every key is checked when the file is read; an error names the key and what is allowed.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnunet_transfer.errors import NnunetTransferError

PRETRAINERS = {
    "segmentation": "nnUNetTrainerPretrainSegmentation",
    "classification": "nnUNetTrainerPretrainClassification",
    "ssl:models_genesis": "nnUNetTrainerPretrainModelsGenesis",
    "ssl:context_restoration": "nnUNetTrainerPretrainContextRestoration",
    "ssl:masked_image_modeling": "nnUNetTrainerPretrainMaskedImageModeling",
    "ssl:rotation": "nnUNetTrainerPretrainRotation",
    "ssl:simclr": "nnUNetTrainerPretrainSimCLR",
}
STRATEGIES = {
    "finetune": "nnUNetTrainerFinetune",
    "warmup": "nnUNetTrainerFinetuneWarmup",
    "frozen_encoder": "nnUNetTrainerFinetuneFrozenEncoder",
    "encoder_lr": "nnUNetTrainerFinetuneEncoderLR",
}
SCRATCH_TRAINER = "nnUNetTrainerFromScratch"
DOMAINS = ("mri", "natural")
METRICS = ("dice", "miou")
SCHEDULE_KEYS = ("num_epochs", "num_iterations_per_epoch", "num_val_iterations_per_epoch", "initial_lr",
                 "save_every", "final_validation")
LAUNCHER_KEYS = ("kind", "partition", "timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb", "num_gpus",
                 "account", "qos", "max_parallel")


@dataclass(frozen=True)
class Source:
    dataset: str | int
    task: str
    domain: str
    label: str  # row label in the table, e.g. "mri segmentation"

    @property
    def trainer(self) -> str:
        return PRETRAINERS[self.task]

    @property
    def key(self) -> str:
        """Identifier in step ids and folder names (letters, digits, '_')."""
        return re.sub(r"[^A-Za-z0-9]+", "_", self.label).strip("_")


@dataclass(frozen=True)
class Target:
    dataset: str | int
    label: str
    metric: str = "dice"
    lesions: bool = False
    evaluate_on: str = "test"  # test: imagesTs vs labelsTs; validation: nnU-Net's fold validation vs labelsTr


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
    schedule: dict[str, Any] = field(default_factory=dict)
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: str | int | None = None
    plans: str = "nnUNetTransferPlans"
    nnunet_root: Path | None = None
    device: str | None = None
    num_processes: int = 2
    batch_size: int | None = None
    launcher: dict[str, Any] = field(default_factory=dict)

    @property
    def twin(self) -> bool:
        """2D natural-image sources pretrain the 2D twin of a 3D network."""
        return self.configuration != "2d" and any(s.domain == "natural" for s in self.sources)

    def source_configuration(self, source: Source) -> str:
        from nnunet_transfer.planning.twin import TWIN_CONFIGURATION
        return TWIN_CONFIGURATION if self.twin and source.domain == "natural" else self.configuration


def _fail(path: Path, key: str, message: str) -> None:
    raise NnunetTransferError(f"{path}: '{key}' {message}")


def _check_keys(path: Path, table: dict, allowed: tuple[str, ...] | set[str], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        _fail(path, f"{where}{unknown[0]}", f"is not a study key; allowed here: {', '.join(sorted(allowed))}")


def _source(path: Path, i: int, table: dict) -> Source:
    where = f"sources[{i}]."
    _check_keys(path, table, ("dataset", "task", "domain", "label"), where)
    if "dataset" not in table:
        _fail(path, where + "dataset", "is required (a dataset id or DatasetXXX_Name)")
    task, domain = table.get("task", "segmentation"), table.get("domain", "mri")
    if task not in PRETRAINERS:
        _fail(path, where + "task", f"is {task!r}; choose from {', '.join(PRETRAINERS)}")
    if domain not in DOMAINS:
        _fail(path, where + "domain", f"is {domain!r}; choose from {', '.join(DOMAINS)}")
    return Source(table["dataset"], task, domain, str(table.get("label", f"{domain} {task}")))


def _target(path: Path, i: int, table: dict) -> Target:
    where = f"targets[{i}]."
    _check_keys(path, table, ("dataset", "label", "metric", "lesions", "evaluate_on"), where)
    if "dataset" not in table:
        _fail(path, where + "dataset", "is required (a dataset id or DatasetXXX_Name)")
    metric = table.get("metric", "dice")
    if metric not in METRICS:
        _fail(path, where + "metric", f"is {metric!r}; choose from {', '.join(METRICS)}")
    if not isinstance(table.get("lesions", False), bool):
        _fail(path, where + "lesions", "must be true or false")
    evaluate_on = table.get("evaluate_on", "test")
    if evaluate_on not in ("test", "validation"):
        _fail(path, where + "evaluate_on", f"is {evaluate_on!r}; choose test (imagesTs / labelsTs) or validation "
                                           f"(nnU-Net's validation predictions of each fold)")
    return Target(table["dataset"], str(table.get("label", table["dataset"])), metric, table.get("lesions", False),
                  evaluate_on)


def load_study(path: str | Path) -> Study:
    """Read and check a study file; relative folders are relative to the file.

    Raises NnunetTransferError naming the file and key for a missing file, invalid TOML, an
    unknown key or value, no sources / targets, or duplicate labels.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise NnunetTransferError(f"study file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise NnunetTransferError(f"{path} is not valid TOML: {e}") from None
    _check_keys(path, data, ("name", "configuration", "folds", "strategies", "sources", "targets", "schedule",
                             "strategy_options", "reference", "plans", "nnunet_root", "output", "device",
                             "num_processes", "batch_size", "launcher"), "")
    name = str(data.get("name", path.stem))
    configuration = data.get("configuration", "3d_fullres")
    if configuration not in ("2d", "3d_fullres", "3d_lowres"):
        _fail(path, "configuration", f"is {configuration!r}; choose 2d, 3d_fullres or 3d_lowres")
    folds = data.get("folds", [0])
    if not isinstance(folds, list) or not folds or not all(f == "all" or isinstance(f, int) and f >= 0 for f in folds):
        _fail(path, "folds", "must be a non-empty list of fold numbers (or \"all\")")
    strategies = data.get("strategies", ["finetune"])
    if not isinstance(strategies, list) or not strategies or any(s not in STRATEGIES for s in strategies):
        _fail(path, "strategies", f"must be a non-empty list from {', '.join(STRATEGIES)}; got {strategies!r}")
    sources = [_source(path, i, t) for i, t in enumerate(data.get("sources", []))]
    targets = [_target(path, i, t) for i, t in enumerate(data.get("targets", []))]
    if not sources or not targets:
        _fail(path, "sources" if not sources else "targets", "needs at least one [[...]] table")
    for what, labels in (("sources", [s.label for s in sources] + ["scratch"]),
                         ("targets", [t.label for t in targets])):
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            _fail(path, what, f"labels must be unique (and not 'scratch'); repeated: {duplicates}")
    schedule = data.get("schedule", {})
    _check_keys(path, schedule, SCHEDULE_KEYS, "schedule.")
    strategy_options = data.get("strategy_options", {})
    _check_keys(path, strategy_options, tuple(STRATEGIES), "strategy_options.")
    for strategy, options in strategy_options.items():
        _check_keys(path, options, ("warmup_epochs", "frozen_encoder_epochs", "encoder_lr_factor"),
                    f"strategy_options.{strategy}.")
    if any(t.evaluate_on == "validation" for t in targets) and (
            "all" in folds or schedule.get("final_validation") == "never"):
        _fail(path, "targets", "evaluate_on = \"validation\" needs folds without \"all\" and nnU-Net's final "
                               "validation (schedule.final_validation auto or always)")
    if "final_validation" not in schedule:
        # nnU-Net's validation pass after each fold is needless work when every target is scored on
        # its test set; it is what targets with evaluate_on = "validation" are scored on.
        validation = any(t.evaluate_on == "validation" for t in targets)
        schedule = {**schedule, "final_validation": "auto" if validation else "never"}
    launcher = data.get("launcher", {})
    _check_keys(path, launcher, LAUNCHER_KEYS, "launcher.")
    if launcher.get("kind", "local") not in ("local", "slurm", "submitit-local"):
        _fail(path, "launcher.kind", "must be local, slurm or submitit-local")
    root = path.parent
    return Study(
        name=name, path=path, folder=(root / data.get("output", name)).resolve(), configuration=configuration,
        folds=tuple(folds), strategies=tuple(strategies), sources=tuple(sources), targets=tuple(targets),
        schedule=dict(schedule), strategy_options={k: dict(v) for k, v in strategy_options.items()},
        reference=data.get("reference"), plans=str(data.get("plans", "nnUNetTransferPlans")),
        nnunet_root=(root / data["nnunet_root"]).resolve() if "nnunet_root" in data else None,
        device=data.get("device"), num_processes=int(data.get("num_processes", 2)),
        batch_size=data.get("batch_size"), launcher=dict(launcher))
