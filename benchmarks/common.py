"""Shared set-up for the benchmarks: a temporary nnU-Net tree with demo data and shared plans."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as our commands do; see nnunet_transfer.environment


def nnunet_tree(root: str | None = None) -> Path:
    """Set nnUNet_raw / _preprocessed / _results to folders under ``root`` (a new temp dir by default)."""
    root = Path(root or tempfile.mkdtemp(prefix="nnunet_transfer_bench_"))
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(root / name)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    return root


def demo_study(spacing_mm: float, n_train: int, keys: list[str], configurations: list[str],
               twin: bool = False) -> dict[str, str]:
    """Write demo datasets and plan them with shared plans (first key = reference)."""
    from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
    from nnunet_transfer.planning.shared import plan_shared
    size = DemoDataSize(spacing_mm=spacing_mm, n_train=n_train, n_test=1, n_natural=n_train, natural_size=64)
    written = write_demo_datasets(os.environ["nnUNet_raw"], size, which=keys, progress=False)
    names = {k: p.name for k, p in written.items()}
    plan_shared(names[keys[0]], [names[k] for k in keys[1:]], "BenchPlans", configurations, num_processes=2,
                twin=twin, progress=False)
    return names


def make_trainer(name: str, dataset: str, plans: str, configuration: str = "2d", epoch: int = 0,
                 device: str = "cpu"):
    """An initialised trainer (stock or ours, found as nnUNetv2_train finds it) at ``epoch`` on
    ``device``; a fine-tuning trainer has its checkpoint loaded."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args
    trainer = get_trainer_from_args(dataset, configuration, "all", name, plans, device=torch.device(device))
    trainer.initialize()
    if hasattr(trainer, "load_transfer_checkpoint"):
        trainer.load_transfer_checkpoint()
    trainer.current_epoch = epoch
    trainer.on_train_epoch_start()
    return trainer


def interleaved_step_times(trainers: dict, batches: list | dict, rounds: int) -> dict[str, list[float]]:
    """Time ``train_step`` of every trainer on the same batches (a list; or a dict label -> that
    trainer's batches, e.g. the same samples after its pretext transform), rotating the order every
    round so that no trainer always runs first or last (a fixed order biased the first by ~3 %)."""
    import time
    batches_of = batches if isinstance(batches, dict) else {label: batches for label in trainers}
    for label, trainer in trainers.items():  # warm-up step, not timed
        trainer.train_step(batches_of[label][0])
    times = {label: [] for label in trainers}
    labels = list(trainers)
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            for batch in batches_of[label]:
                start = time.perf_counter()
                trainers[label].train_step(batch)
                times[label].append(time.perf_counter() - start)
    return times


def save_results(name: str, results: dict) -> None:
    import json
    print(json.dumps(results, indent=2))
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
