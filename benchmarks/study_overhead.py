"""A study's time per training outside nnU-Net's epoch loop: warm workers against stock
``nnUNetv2_train`` subprocesses, the same tiny study in the same run.

The study (one segmentation source, one target at two training sizes, the scratch baseline: five
trainings of 2 epochs x 2 iterations, 2d, CPU) runs through the sequential executor in this
process, once per arm, alternating (``--rounds``); the stock arm sets
``NNUNET_TRANSFER_WARM_WORKERS=0``. Per training step it records the step's wall time, the
``nnunet_commands.train`` call, and from nnU-Net's training log the time from its first line to
``Epoch 0`` (nnU-Net's own initialisation: network, data loaders) and the epoch loop (``Epoch 0``
to ``Training done.``). ``runner_s`` is the step minus those two (process or fork start, imports,
trainer lookup, the step's bookkeeping, exit); ``outside_loop_s`` the step minus the loop. The
first warm training also starts the warm server (reported apart). ``--demo`` also times the quick
demo (``nnunet_transfer demo --preset quick --fresh``) as a user runs it; ``--demo-stock`` the same
with stock subprocesses.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import nnunet_tree, save_results

STUDY = """
name = "overhead"
configuration = "2d"
folds = [0]
strategies = ["finetune"]
nnunet_root = "nnunet"
device = "cpu"
num_processes = 1

[schedule]
num_epochs = 2
num_iterations_per_epoch = 2
num_val_iterations_per_epoch = 1
final_validation = "never"

[[sources]]
dataset = 901
task = "segmentation"
domain = "mri"

[[targets]]
dataset = 911
label = "stroke"
metric = "miou"
train_sizes = [2, 4]
"""
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+): (.*)$")


def _stamps(log: Path) -> dict[str, float]:
    """Seconds since the epoch of nnU-Net's first training-log line, ``Epoch 0`` and ``Training done.``."""
    found: dict[str, float] = {}
    for line in log.read_text().splitlines():
        match = STAMP.match(line)
        if not match:
            continue
        t = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        found.setdefault("first", t)
        text = match.group(2).strip()
        if text == "Epoch 0":
            found.setdefault("epoch0", t)
        elif text == "Training done.":
            found["done"] = t
    return found


def run_study(folder: Path, raw: Path, warm: bool) -> list[dict]:
    """Run the tiny study in ``folder`` (a fresh nnU-Net tree with ``raw`` copied in); one record per training."""
    from nnunet_transfer import nnunet_commands
    from nnunet_transfer.study import runner
    from nnunet_transfer.study.spec import load_study

    shutil.copytree(raw, folder / "nnunet" / "nnUNet_raw")
    (folder / "study.toml").write_text(STUDY)
    study = load_study(folder / "study.toml")
    os.environ["NNUNET_TRANSFER_WARM_WORKERS"] = "1" if warm else "0"
    calls: list[dict] = []
    records: list[dict] = []
    train, run_step = nnunet_commands.train, runner.run_step

    def timed_train(*args, **kwargs):
        start = time.time()
        train(*args, **kwargs)
        calls.append({"start": start, "end": time.time()})

    def timed_step(study_, step):
        before, start = len(calls), time.time()
        run_step(study_, step)
        end = time.time()
        if len(calls) == before + 1:
            records.append({"step": step.id, "step_start": start, "step_end": end, **calls[-1]})

    nnunet_commands.train, runner.run_step = timed_train, timed_step
    try:
        failed = runner.run_local(study, progress=False)
    finally:
        nnunet_commands.train, runner.run_step = train, run_step
    assert not failed, f"steps failed: {failed}"
    logs = sorted((folder / "nnunet" / "nnUNet_results").rglob("training_log_*.txt"), key=lambda p: p.stat().st_mtime)
    out = []
    for record in records:
        log = next(p for p in logs if record["start"] <= p.stat().st_mtime <= record["end"] + 1)
        s = _stamps(log)
        step_s = record["step_end"] - record["step_start"]
        loop_s, init_s = s["done"] - s["epoch0"], s["epoch0"] - s["first"]
        out.append({"step": record["step"], "step_s": round(step_s, 3),
                    "train_call_s": round(record["end"] - record["start"], 3),
                    "start_to_first_log_line_s": round(s["first"] - record["start"], 3),
                    "nnunet_init_s": round(init_s, 3), "epoch_loop_s": round(loop_s, 3),
                    "after_loop_s": round(record["end"] - s["done"], 3),
                    "bookkeeping_s": round(step_s - (record["end"] - record["start"]), 3),
                    "outside_loop_s": round(step_s - loop_s, 3), "runner_s": round(step_s - loop_s - init_s, 3)})
    return out


def _summary(records: list[dict]) -> dict:
    keys = [k for k in records[0] if k != "step"]
    return {k: round(statistics.median(r[k] for r in records), 3) for k in keys}


def time_demo(stock: bool) -> float:
    out = Path(tempfile.mkdtemp(prefix="nnunet_transfer_demo_bench_")) / "demo"
    env = {**os.environ, "NNUNET_TRANSFER_WARM_WORKERS": "0" if stock else "1"}
    env.pop("nnUNet_raw", None), env.pop("nnUNet_preprocessed", None), env.pop("nnUNet_results", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "demo", "--preset", "quick", "--fresh", "-o",
                    str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    shutil.rmtree(out.parent, ignore_errors=True)
    return round(seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="studies per arm, alternating (default 1)")
    parser.add_argument("--demo", action="store_true", help="also time the quick demo (warm workers)")
    parser.add_argument("--demo-stock", action="store_true", help="also time the quick demo with stock subprocesses")
    args = parser.parse_args()
    from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets

    root = nnunet_tree()
    raw = root / "nnUNet_raw"
    write_demo_datasets(raw, DemoDataSize(spacing_mm=8.0, n_train=6, n_test=2), seed=2,
                        which=["mri_seg_source", "stroke"], progress=False)
    load = os.getloadavg()
    arms: dict[str, list[dict]] = {"stock": [], "warm": []}
    first_warm = None
    for r in range(args.rounds):
        for arm in ("stock", "warm"):
            records = run_study(root / f"{arm}{r}", raw, warm=arm == "warm")
            if arm == "warm" and first_warm is None:
                first_warm, records = records[0], records[1:]  # it starts the warm server
            arms[arm] += records
    results = {
        "study": "1 source, 1 target x 2 training sizes + scratch: 5 trainings of 2 epochs x 2 iterations (2d, CPU)",
        "cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "median": {arm: _summary(records) for arm, records in arms.items()},
        "first_warm_training_with_server_start": first_warm, "trainings": arms,
    }
    results["runner_s_saved_per_training"] = round(results["median"]["stock"]["runner_s"]
                                                   - results["median"]["warm"]["runner_s"], 3)
    if args.demo_stock:
        results["quick_demo_stock_s"] = time_demo(stock=True)
    if args.demo:
        results["quick_demo_s"] = time_demo(stock=False)
        results["load_average_after_demo"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(root, ignore_errors=True)
    save_results("study_overhead", results)


if __name__ == "__main__":
    main()
