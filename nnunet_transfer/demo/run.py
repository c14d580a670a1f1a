"""``nnunet_transfer demo``: the embedded data, then a small study run by the study runner.

The demo writes its datasets, then a study file (``demo_study.toml`` in the output folder) with
the chosen sources (by default all six task x domain combinations), the three targets (stroke
and MS lesions with the lesion detection rate, anatomy) and the from-scratch baseline, and runs
it with ``nnunet_transfer.study``: shared plans, pretraining, fine-tuning (stock
``nnUNetv2_train``), prediction (nnU-Net's predictor), evaluation, the comparison table and
figures, in a self-contained nnU-Net tree under the output folder; a second run resumes where the
first stopped. The study file is a starting point for a study of one's own.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import tomli_w

from nnunet_transfer import nnunet_commands
from nnunet_transfer.demo.datasets import DEMO_DATASETS, DemoDataSize, write_demo_datasets
from nnunet_transfer.demo.menu import FIRST_ID, SOURCES, TARGETS
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import write_text_atomic
from nnunet_transfer.names import SSL_PREFIX
from nnunet_transfer.study.report import write_report
from nnunet_transfer.study.runner import run_local
from nnunet_transfer.study.spec import load_study

MARKER = ".nnunet_transfer_demo"
STUDY_FILE = "demo_study.toml"


@dataclass(frozen=True)
class DemoPreset:
    """Data, configuration, schedule, sources, targets and training sizes of one demo run.

    ``sources`` / ``targets``: keys of the demo menu (the command line's ``--sources`` overrides
    ``sources``); ``train_sizes``: the label-efficiency axis of every target (empty: all training
    cases); ``preface``: printed above the comparison table.
    """

    name: str
    size: DemoDataSize
    configuration: str
    schedule: dict = field(default_factory=dict)
    batch_size: int | None = None  # None: nnU-Net's choice
    sources: tuple[str, ...] = tuple(SOURCES)
    targets: tuple[str, ...] = tuple(TARGETS)
    train_sizes: tuple[int, ...] = ()
    preface: str | None = None


# 27 trainings (6 pretrainings, 6 x 3 fine-tunings, 3 scratch) within 10 minutes on 2 CPU cores:
# short, small-batch trainings that show the whole chain works, not a ranking.
QUICK = DemoPreset(
    "quick", DemoDataSize(spacing_mm=4.0, n_train=12, n_test=4, n_natural=8, natural_size=64), "2d",
    {"num_epochs": 5, "num_iterations_per_epoch": 6, "num_val_iterations_per_epoch": 1, "save_every": 1000},
    batch_size=8,
    preface="**Smoke test of the chain, not a ranking.** The quick preset trains every network for 30 steps "
            "on 4 test cases per target: enough to show that data, shared plans, pretraining, transfer, "
            "fine-tuning, prediction and evaluation work together, far too little to rank anything (a "
            "ranking needs the evidence preset: `nnunet_transfer demo --preset evidence`). With 4 test cases "
            "no test can reach p < 0.05, so none is given.")
# Label efficiency on 2 CPU cores within 45 minutes (documentation/getting_started.md has the
# measured table): one source per question (same-domain segmentation, same-domain self-supervision,
# other-domain segmentation), the anatomy and stroke targets, 2 and 8 training patients, 12 test
# cases per target; 2d networks at 4 mm, 250 steps of batch 8 per training (measured: 0.33 s per
# step and 1.5 s per epoch boundary on 2 cores, so 19 trainings take about 35 minutes).
EVIDENCE = DemoPreset(
    "evidence", DemoDataSize(spacing_mm=4.0, n_train=12, n_test=12, n_natural=24, natural_size=64), "2d",
    {"num_epochs": 10, "num_iterations_per_epoch": 25, "num_val_iterations_per_epoch": 2, "save_every": 1000},
    batch_size=8, sources=("mri_seg", "mri_ssl", "natural_seg"), targets=("anatomy", "stroke"), train_sizes=(2, 8))
# Sized for one GPU (documentation/getting_started.md: the estimate and how it was made): all six
# sources, the three targets, 4 and 16 training patients, 3d networks at 2 mm.
DEFAULT = DemoPreset(
    "default", DemoDataSize(spacing_mm=2.0, n_train=24, n_test=12), "3d_fullres",
    {"num_epochs": 15, "num_iterations_per_epoch": 80, "num_val_iterations_per_epoch": 10, "save_every": 1000},
    train_sizes=(4, 16))
PRESETS = {p.name: p for p in (QUICK, EVIDENCE, DEFAULT)}


def _prepare_folder(output: Path, fresh: bool) -> None:
    if output.exists() and any(output.iterdir()) and not (output / MARKER).exists():
        raise NnunetTransferError(f"{output} exists and is not a demo folder; choose another --output.")
    if fresh and output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / MARKER).touch()


def _set_environment(device: str) -> None:
    """On the CPU, one nnU-Net worker process per step. (The study file's ``nnunet_root = "."`` points
    nnU-Net at the demo's own tree when the study runs.)"""
    if device == "cpu":
        os.environ.setdefault("nnUNet_def_n_proc", "1")


def _datasets(output: Path, preset: DemoPreset, seed: int, sources: Sequence[str], targets: Sequence[str]
              ) -> dict[str, str]:
    """Demo dataset key -> dataset name; datasets already written (atomically) are kept."""
    raw = output / "nnUNet_raw"
    keys = list(dict.fromkeys(list(sources) + list(targets)))
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


def study_file_text(preset: DemoPreset, names: dict[str, str], sources: Sequence[str], device: str,
                    targets: Sequence[str] = tuple(TARGETS), training_seeds: Sequence[int] = (0,)) -> str:
    """The demo's study file: ``sources`` x ``targets`` + scratch, fold ``all``, the preset's schedule,
    each training once per seed of ``training_seeds``."""
    # nnU-Net plans the MRI segmentation source, else the anatomy target; every other dataset shares it
    reference = names[SOURCES["mri_seg"][0]] if "mri_seg" in sources else names[
        "anatomy" if "anatomy" in targets else targets[0]]
    study: dict = {"name": f"demo_{preset.name}", "output": "study", "nnunet_root": ".",
                   "configuration": preset.configuration, "folds": ["all"], "strategies": ["finetune"],
                   "reference": reference, "device": device, "num_processes": 2}
    if list(training_seeds) != [0]:
        study["seeds"] = list(training_seeds)
    if preset.batch_size is not None:
        study["batch_size"] = preset.batch_size
    study["schedule"] = dict(preset.schedule)
    study["sources"] = []
    for key in sources:
        dataset, task, domain = SOURCES[key]
        label = f"{'MRI' if domain == 'mri' else 'natural'} {task.removeprefix(SSL_PREFIX).replace('_', ' ')}"
        study["sources"].append({"dataset": names[dataset], "task": task, "domain": domain, "label": label})
    study["targets"] = [{"dataset": names[key], "label": TARGETS[key][0], "metric": "dice", "lesions": TARGETS[key][1],
                         **({"train_sizes": list(preset.train_sizes)} if preset.train_sizes else {})}
                        for key in targets]
    return f"# The demo as a study: nnunet_transfer study run {STUDY_FILE}\n" + tomli_w.dumps(study)


def run_demo(output: str | Path = "nnunet_transfer_demo", quick: bool = False, seed: int = 0,
             device: str | None = None, fresh: bool = False, sources: Sequence[str] | None = None,
             preset: DemoPreset | str | None = None, progress: bool = True,
             targets: Sequence[str] | None = None, training_seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Write the demo data and study file, run the study, print and return the comparison table.

    ``preset``: a :class:`DemoPreset` or a name of :data:`PRESETS` (default: ``quick`` with
    ``quick``, else ``default``). ``sources``: keys of ``SOURCES`` or ``all``; ``targets``: keys
    of ``TARGETS`` (default: the preset's); ``training_seeds``: the study's seeds (default 0 only).
    Raises NnunetTransferError for unknown sources,
    targets or presets, a non-demo output folder, or failed steps (listed with their logs; a
    second run retries them).
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise NnunetTransferError(f"Unknown demo preset {preset!r}; choose from {', '.join(PRESETS)}.")
        preset = PRESETS[preset]
    preset = preset or (QUICK if quick else DEFAULT)
    sources = list(preset.sources) if sources is None else list(sources)
    sources = list(SOURCES) if "all" in sources else list(dict.fromkeys(sources))
    targets = list(preset.targets) if targets is None else list(targets)
    unknown = [s for s in sources if s not in SOURCES] + [t for t in targets if t not in TARGETS]
    if unknown or not sources or not targets:
        raise NnunetTransferError(f"Unknown demo source(s) / target(s) {unknown}; sources: {', '.join(SOURCES)} or "
                                  f"all; targets: {', '.join(TARGETS)}.")
    output = Path(output).resolve()
    device = device or nnunet_commands.default_device()
    _prepare_folder(output, fresh)
    _set_environment(device)
    names = _datasets(output, preset, seed, [SOURCES[s][0] for s in sources], targets)
    study_path = output / STUDY_FILE
    text = study_file_text(preset, names, sources, device, targets, training_seeds or (0,))
    if not study_path.is_file() or study_path.read_text() != text:
        write_text_atomic(text, study_path)
    study = load_study(study_path)
    failed = run_local(study, progress=progress)
    if failed:
        raise NnunetTransferError(f"{len(failed)} demo step(s) failed: {', '.join(failed)}; see "
                                  f"'nnunet_transfer study status {study_path}' for their logs, then run the demo "
                                  f"again to retry them")
    files = write_report(study, preface=preset.preface)
    print(f"\nThe demo study ({preset.name} preset, {preset.configuration}, {len(sources)} source(s)); test cases of "
          f"each target:\n")
    print(files["table_md"].read_text())
    print(f"Table, per-case metrics and figures: {files['table_md'].parent}\nStudy file: {study_path}")
    print(f"Report (open in a browser): {files['report_html'].resolve().as_uri()}")
    return pd.read_csv(files["table_csv"])
