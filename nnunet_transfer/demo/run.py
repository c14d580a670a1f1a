"""``nnunet_transfer demo``: embedded data -> shared plans -> pretraining -> fine-tuning on three
targets and from scratch -> ``nnUNetv2_predict`` on each target's test cases -> Dice table.

Everything runs through stock nnU-Net commands with our trainers, in a self-contained nnU-Net
tree under the output folder. Finished steps (datasets written, plans present, checkpoint_final
present, predictions complete) are not redone when the demo is run again.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from nnunet_transfer import nnunet_commands
from nnunet_transfer.demo.datasets import DEMO_DATASETS, DemoDataSize, write_demo_datasets
from nnunet_transfer.demo.report import dice_table, evaluate_predictions, save_table
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.pipeline import results_folder
from nnunet_transfer.planning.attach import attach, default_output_plans
from nnunet_transfer.planning.common import quiet
from nnunet_transfer.planning.shared import plan_shared
from nnunet_transfer.planning.twin import TWIN_CONFIGURATION

MARKER = ".nnunet_transfer_demo"
FIRST_ID = 900
PLANS = "nnUNetTransferPlans"
TARGETS = ("stroke", "ms", "anatomy")
# source key -> (demo dataset, pretraining trainer): the study's task x domain grid
SOURCES = {
    "mri_seg": ("mri_seg_source", "nnUNetTrainerPretrainSegmentation"),
    "mri_cls": ("mri_cls_source", "nnUNetTrainerPretrainClassification"),
    "mri_ssl": ("mri_unlabeled", "nnUNetTrainerPretrainModelsGenesis"),
    "natural_seg": ("natural_seg_source", "nnUNetTrainerPretrainSegmentation"),
    "natural_cls": ("natural_cls_source", "nnUNetTrainerPretrainClassification"),
    "natural_ssl": ("natural_unlabeled", "nnUNetTrainerPretrainModelsGenesis"),
}
FINETUNER, SCRATCH = "nnUNetTrainerFinetune", "nnUNetTrainerFromScratch"


@dataclass(frozen=True)
class DemoPreset:
    """Data size, configuration and schedule of one demo run."""

    name: str
    size: DemoDataSize
    configuration: str
    schedule: dict = field(default_factory=dict)
    batch_size: int | None = None  # None: nnU-Net's choice


QUICK = DemoPreset("quick", DemoDataSize(spacing_mm=4.0, n_train=12, n_test=4, n_natural=8, natural_size=64), "2d",
                   {"num_epochs": 12, "num_iterations_per_epoch": 10, "num_val_iterations_per_epoch": 2,
                    "save_every": 1000})
DEFAULT = DemoPreset("default", DemoDataSize(spacing_mm=2.0, n_train=40, n_test=20), "3d_fullres",
                     {"num_epochs": 60, "num_iterations_per_epoch": 150, "num_val_iterations_per_epoch": 20})


def _prepare_folder(output: Path, fresh: bool) -> None:
    if output.exists() and any(output.iterdir()) and not (output / MARKER).exists():
        raise NnunetTransferError(f"{output} exists and is not a demo folder; choose another --output.")
    if fresh and output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / MARKER).touch()


def _set_environment(output: Path, device: str) -> None:
    """The demo uses its own nnU-Net tree; on the CPU, data augmentation runs in-process."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[name] = str(output / name)
        (output / name).mkdir(exist_ok=True)
    if device == "cpu":
        os.environ.setdefault("nnUNet_def_n_proc", "1")


def _training_env(device: str) -> dict[str, str]:
    """On the CPU, augmentation runs in the training process: worker processes would only compete
    for the same cores. (Only for training: nnU-Net's planning needs nnUNet_n_proc_DA >= 1.)"""
    return {"nnUNet_n_proc_DA": os.environ.get("nnUNet_n_proc_DA", "0")} if device == "cpu" else {}


def _datasets(output: Path, preset: DemoPreset, seed: int, sources: Sequence[str]) -> dict[str, str]:
    """Demo dataset key -> dataset name; datasets already written (atomically) are kept."""
    raw = output / "nnUNet_raw"
    keys = list(dict.fromkeys(list(sources) + list(TARGETS)))
    existing = {}
    for key in keys:
        found = sorted(raw.glob(f"Dataset{FIRST_ID + DEMO_DATASETS[key]:03d}_*"))
        if found:
            existing[key] = found[0].name
    missing = [k for k in keys if k not in existing]
    if missing:
        written = write_demo_datasets(raw, preset.size, seed=seed, first_id=FIRST_ID, which=missing)
        existing.update({k: p.name for k, p in written.items()})
    return existing


def run_demo(output: str | Path = "nnunet_transfer_demo", quick: bool = False, seed: int = 0,
             device: str | None = None, fresh: bool = False, sources: Sequence[str] = ("mri_seg",),
             preset: DemoPreset | None = None) -> pd.DataFrame:
    """Run the whole demo; return (and print, and save) the Dice table.

    ``sources``: keys of ``SOURCES`` (default ``mri_seg``; ``all`` for the six task x domain
    combinations). Every target is fine-tuned from every source and trained from scratch.
    ``preset`` overrides the quick / default preset (tests use a tiny one).
    """
    preset = preset or (QUICK if quick else DEFAULT)
    sources = list(SOURCES) if "all" in sources else list(dict.fromkeys(sources))
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise NnunetTransferError(f"Unknown demo source(s) {unknown}; choose from {', '.join(SOURCES)} or all.")
    output = Path(output).resolve()
    device = device or nnunet_commands.default_device()
    _prepare_folder(output, fresh)
    _set_environment(output, device)
    logs = output / "logs"
    cfg = preset.configuration
    steps = tqdm(total=3 + len(sources) + (len(sources) + 2) * len(TARGETS), desc=f"demo ({preset.name})",
                 unit="step", position=0)

    steps.set_postfix_str("writing datasets")
    names = _datasets(output, preset, seed, [SOURCES[s][0] for s in sources])
    steps.update()

    targets = [names[t] for t in TARGETS]
    # the MRI segmentation source (or else the anatomy target) is the reference of the shared plans
    reference = names[SOURCES["mri_seg"][0]] if "mri_seg" in sources else names["anatomy"]
    natural = any(SOURCES[s][0].startswith("natural") for s in sources)
    twin = natural and cfg != "2d"  # 2D sources pretrain the 2D twin of the 3D network
    steps.set_postfix_str("shared plans + preprocessing")
    planned = output / f".planned_{'_'.join(sorted(sources))}"  # written only after plans *and* preprocessing
    if not planned.is_file():
        others = [names[SOURCES[s][0]] for s in sources] + targets
        plan_shared(reference, [n for n in others if n != reference], PLANS, [cfg], num_processes=2,
                    schedule=preset.schedule, batch_size=preset.batch_size, twin=twin, progress=False)
        planned.touch()
    steps.update()

    checkpoints = {}
    for key in sources:
        dataset, trainer = names[SOURCES[key][0]], SOURCES[key][1]
        source_cfg = TWIN_CONFIGURATION if twin and key.startswith("natural") else cfg
        steps.set_postfix_str(f"pretraining on {dataset}")
        checkpoints[key] = _train(dataset, source_cfg, trainer, PLANS, logs, preset, device)
        steps.update()

    runs = []
    for target in targets:
        models = []
        for key in sources:
            steps.set_postfix_str(f"fine-tuning {target} from {key}")
            ft_plans = default_output_plans(PLANS, names[SOURCES[key][0]])
            attach(checkpoints[key], target, PLANS, ft_plans)
            _train(target, cfg, FINETUNER, ft_plans, logs, preset, device)
            models.append((key, FINETUNER, ft_plans))
            steps.update()
        steps.set_postfix_str(f"from scratch on {target}")
        _train(target, cfg, SCRATCH, PLANS, logs, preset, device)
        models.append(("scratch", SCRATCH, PLANS))
        steps.update()
        steps.set_postfix_str(f"predicting {target}")
        for label, trainer, plans in models:
            pred = output / "predictions" / target / label
            _predict(target, cfg, trainer, plans, pred, logs, device)
            runs.append({"target": target, "initialisation": label, "predictions": pred})
        steps.update()
    steps.set_postfix_str("evaluating")
    with quiet():
        per_case = pd.concat([evaluate_predictions(r["predictions"], r["target"]).assign(
            target=r["target"], initialisation=r["initialisation"]) for r in runs], ignore_index=True)
    table = dice_table(per_case)
    save_table(table, per_case, output / "results")
    steps.update()
    steps.close()
    print(f"\nDice on the test cases of each target ({preset.name} preset, {cfg}; "
          f"mean and sd over cases, foreground classes averaged):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nTable, per-case Dice and figure: {output / 'results'}")
    return table


def _train(dataset: str, cfg: str, trainer: str, plans: str, logs: Path, preset: DemoPreset, device: str) -> Path:
    out = results_folder(dataset, trainer, plans, cfg, "all")
    final = out / "checkpoint_final.pth"
    if not final.is_file():
        nnunet_commands.train(dataset, cfg, "all", trainer, plans, logs / f"train_{trainer}_{dataset}.log",
                              epochs=preset.schedule.get("num_epochs"), device=device,
                              continue_training=(out / "checkpoint_latest.pth").is_file(),
                              extra_env=_training_env(device))
    return final


def _predict(dataset: str, cfg: str, trainer: str, plans: str, out: Path, logs: Path, device: str) -> None:
    images = Path(os.environ["nnUNet_raw"]) / dataset / "imagesTs"
    cases = {p.name[: -len("_0000.nii.gz")] for p in images.glob("*_0000.nii.gz")}
    if out.is_dir() and all((out / f"{c}.nii.gz").is_file() for c in cases):
        return
    nnunet_commands.predict(images, out, dataset, cfg, ["all"], trainer, plans,
                            logs / f"predict_{trainer}_{dataset}.log", device=device)
