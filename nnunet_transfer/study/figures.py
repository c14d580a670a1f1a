"""The study's figures: bars per training size, data efficiency with its intervals, learning curves."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pandas as pd

from nnunet_transfer.io import atomic_path
from nnunet_transfer.names import SCRATCH
from nnunet_transfer.study.architectures import architecture_label
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.statistics import CONFIDENCE, bootstrap_interval, two_level_interval
from nnunet_transfer.study.steps import Run, row_label, run_folder, runs
from nnunet_transfer.study.table import (ALL, ARCHITECTURE_COLUMN, SIZE_COLUMN, arm_label, arm_rows, arms,
                                         by_seed_and_case, metric_of_key, sizes_of, table_keys)
from nnunet_transfer.transfer.checkpoint import load_checkpoint

matplotlib.use("Agg")  # figures are files; no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def _panels(keys: list[str]) -> list[list[str]]:
    """Keys grouped for the bar figure: every metric in [0, 1] together, each other metric
    (distances in mm, counts, volumes) in a panel of its own."""
    fractions = [k for k in keys if metric_of_key(k).fraction]
    return ([fractions] if fractions else []) + [[k] for k in keys if not metric_of_key(k).fraction]


def _spread(row: pd.Series, key: str) -> float:
    """The table's ± of a cell: the between-seed SD, else the SD over folds, else 0."""
    for column in (f"{key} seed_sd", f"{key} sd"):
        if not math.isnan(row[column]):
            return float(row[column])
    return 0.0


def bar_figure(study: Study, table: pd.DataFrame, path: Path) -> None:
    """Grouped bars per training size (one group per target and metric, one bar per initialisation),
    error bars = the between-seed SD (several seeds) or the SD over folds; metrics in [0, 1] share a
    panel, others get one each. With several architectures each scratch bar names its architecture
    and the groups are hatched apart."""
    sizes = list(dict.fromkeys(table[SIZE_COLUMN]))
    archs = list(dict.fromkeys(table[ARCHITECTURE_COLUMN]))
    panels = _panels(table_keys(table))
    n_rows = max(len(table[table[SIZE_COLUMN] == size]) for size in sizes)
    width = 0.8 / n_rows
    fig, axes = plt.subplots(len(sizes), len(panels), squeeze=False, figsize=(
        sum(2 + 1.4 * len(keys) * max(1, n_rows / 3) for keys in panels), 3.4 * len(sizes)))
    for row_axes, size in zip(axes, sizes):
        block = table[table[SIZE_COLUMN] == size]
        for ax, keys in zip(row_axes, panels):
            for j, (_, row) in enumerate(block.iterrows()):
                xs = [i - 0.4 + width * (j + 0.5) for i in range(len(keys))]
                means = [row[f"{k} mean"] for k in keys]
                sds = [_spread(row, k) for k in keys]
                arm = (row[ARCHITECTURE_COLUMN], row["initialisation"])
                ax.bar(xs, means, width, yerr=sds, capsize=2, label=arm_label(arm, len(archs) > 1),
                       hatch=("", "//", "..", "xx")[archs.index(arm[0]) % 4])
            ax.set_xticks(range(len(keys)), keys, fontsize=8)
            metric = metric_of_key(keys[0])
            if metric.fraction:
                ax.set_ylim(0, 1)
            ax.set_ylabel("test cases (mean over seeds and folds)"
                          + (", lower is better" if metric.lower_is_better else ""))
            if len(sizes) > 1 or size != ALL:
                ax.set_title("every training case" if size == ALL else f"{size} training patients", fontsize=9)
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save_figure(fig, path)


def data_efficiency_figure(study: Study, per_case: pd.DataFrame, path: Path) -> bool:
    """Metric vs number of training patients, one panel per target with ``train_sizes``, one line per
    initialisation: the mean over seeds and test cases (each averaged over folds) with its bootstrap
    95 % interval as a band (two-level, seeds and cases, with several seeds). Returns False (and
    writes nothing) when no target has training sizes."""
    targets = [t for t in study.targets if t.train_sizes]
    if not targets:
        return False
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.4), squeeze=False)
    for ax, target in zip(axes[0], targets):
        primary = target.table_metrics[0]
        name, column = primary.name, primary.column
        part = per_case[(per_case["target"] == target.label) & (per_case[SIZE_COLUMN] != ALL)]
        several = len(set(part[ARCHITECTURE_COLUMN])) > 1
        for arm in arms(part) if len(part) else []:
            xs, means, lows, highs = [], [], [], []
            for size in sizes_of(part):
                values = by_seed_and_case(arm_rows(part[part[SIZE_COLUMN] == size], arm), column).dropna(axis=1)
                if not values.size:
                    continue
                mean = float(values.to_numpy().mean())
                # several seeds: seeds and cases resampled, as in the table
                low, high = (two_level_interval(values.to_numpy()) if len(values) > 1 and values.shape[1] > 1
                             else bootstrap_interval(values.mean(axis=0)))
                xs.append(int(size))
                means.append(mean)
                lows.append(mean if math.isnan(low) else low)
                highs.append(mean if math.isnan(high) else high)
            line, = ax.plot(xs, means, marker="o", lw=1.2, label=arm_label(arm, several),
                            ls="--" if arm[1] == SCRATCH else "-")
            ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(target.train_sizes), [str(n) for n in target.train_sizes])
        if primary.fraction:
            ax.set_ylim(0, 1)
        ax.set_title(target.label, fontsize=9)
        ax.set_xlabel("training patients")
        direction = ", lower is better" if primary.lower_is_better else ""
        ax.set_ylabel(f"test {name} (band: {CONFIDENCE:.0%} bootstrap CI{direction})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)
    return True


def _curve_label(study: Study, run: Run) -> str:
    label = row_label(study, run)
    if run.source is None and len({r.arch for r in runs(study)}) > 1:
        label += f" ({architecture_label(study, run.arch)})"
    if run.size is not None:
        label += f", n={run.size}"
    if len(study.seeds) > 1:
        label += f", seed {run.seed}"
    if len(study.folds) > 1:
        label += f", fold {run.fold}"
    return label


def learning_curves(study: Study, path: Path) -> int:
    """Validation pseudo-Dice (EMA) per epoch of every finished training, one panel per target, from
    nnU-Net's own logging in checkpoint_final.pth (loaded safely). Returns the number of curves."""
    fig, axes = plt.subplots(1, len(study.targets), figsize=(4 * len(study.targets), 3.2), squeeze=False)
    n = 0
    for ax, target in zip(axes[0], study.targets):
        for run in runs(study):
            final = run_folder(study, run) / "checkpoint_final.pth"
            if run.target != target or not final.is_file():
                continue
            logging = load_checkpoint(final).get("logging", {})
            curve = logging.get("ema_fg_dice") or logging.get("mean_fg_dice") or []
            ax.plot(range(1, len(curve) + 1), [float(v) for v in curve], lw=1, label=_curve_label(study, run))
            n += 1
        ax.set_title(target.label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation pseudo-Dice (EMA)")
        if ax.get_lines():
            ax.legend(fontsize=6)
    fig.tight_layout()
    _save_figure(fig, path)
    return n


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
