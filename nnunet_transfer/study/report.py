"""The study's comparison table and figures, from the evaluated runs.

Table (like the reference study's): one row per initialisation (source task x domain, with the
strategy when a study has several, and ``scratch``), one block per training size when targets
have ``train_sizes``. Per target and metric (the target's ``metric``, then its ``metrics``; by
default the lesion detection rate for lesion targets): mean +- sd over folds (each fold: mean
over the target's test cases); against scratch, the mean paired difference over test cases with
a bootstrap 95 % interval and the Holm-corrected paired Wilcoxon p-value
(:mod:`nnunet_transfer.study.statistics`; no p-value with fewer than 6 cases). Runs are compared
only when their network architecture, patch size and training schedule (subset included) are
identical.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import atomic_path, read_json, write_csv_atomic, write_text_atomic
from nnunet_transfer.names import SCRATCH
from nnunet_transfer.study.spec import STUDY_METRICS, StudyMetric, Study, Target
from nnunet_transfer.study.statistics import (BOOTSTRAP_RESAMPLES, CONFIDENCE, MIN_CASES_FOR_P, bootstrap_interval,
                                              holm, paired_comparison)
from nnunet_transfer.study.steps import Run, evaluation_file, refresh_evaluation, run_folder, runs
from nnunet_transfer.study.sources import RECORD_FILE, record_path, sources_markdown
from nnunet_transfer.transfer.checkpoint import load_checkpoint

matplotlib.use("Agg")  # figures are files; no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

ALL = "all"  # the training size of runs on every training case
SIZE_COLUMN = "train_size"


def _row_label(study: Study, run: Run) -> str:
    if run.source is None:
        return SCRATCH
    return run.source.label if len(study.strategies) == 1 else f"{run.source.label} ({run.strategy})"


def _size(run: Run) -> str:
    return ALL if run.size is None else str(run.size)


def _size_order(size: str) -> float:
    return math.inf if size == ALL else int(size)


def collect(study: Study) -> pd.DataFrame:
    """Per-case metrics of every evaluated run, with ``target``, ``train_size`` (``all`` without
    ``train_sizes``), ``initialisation``, ``strategy``, ``fold``. A run evaluated with other
    settings than its target's now (metrics, profile, ...) is evaluated again from its predictions."""
    frames = []
    for run in runs(study):
        path = evaluation_file(study, run)
        if path.is_file():
            refresh_evaluation(study, run)
            frame = pd.read_csv(path, dtype={"case": str})
            missing = [m.column for m in run.target.table_metrics if m.column not in frame.columns]
            if missing:
                raise NnunetTransferError(f"{path} has no column {', '.join(missing)} for target {run.target.label}; "
                                          f"delete it and run the study again")
            frames.append(frame.assign(
                target=run.target.label, **{SIZE_COLUMN: _size(run)}, initialisation=_row_label(study, run),
                strategy=run.strategy, fold=str(run.fold)))
    if not frames:
        raise NnunetTransferError(f"no evaluated run in {study.folder / 'evaluations'}; run the study first "
                                  f"(nnunet_transfer study run {study.path})")
    return pd.concat(frames, ignore_index=True)


def check_comparable(study: Study) -> None:
    """Raise NnunetTransferError when runs of one target and training size differ in architecture,
    patch size or training schedule (the subset included)."""
    groups: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for run in runs(study):
        plans_file = run_folder(study, run).parent / "plans.json"
        if not plans_file.is_file():
            continue
        plans = read_json(plans_file)
        cfg = plans["configurations"][study.configuration]
        fingerprint = repr((cfg.get("architecture"), cfg.get("patch_size"), plans.get("training_schedule")))
        seen = groups.setdefault((run.target.label, _size(run)), {})
        seen.setdefault(fingerprint, (_row_label(study, run), str(plans_file)))
        if len(seen) > 1:
            (a, fa), (b, fb) = list(seen.values())[:2]
            size = "" if run.size is None else f" ({run.size} training patients)"
            raise NnunetTransferError(f"target {run.target.label}{size}: runs '{a}' and '{b}' differ in architecture, "
                                      f"patch size or training schedule ({fa} vs {fb}); they cannot be compared. "
                                      f"Re-plan with shared plans and the same schedule.")


def _metrics(target: Target) -> list[tuple[str, str]]:
    """(name in the table, per-case column) of a target, its primary metric first."""
    return [(m.name, m.column) for m in target.table_metrics]


def _metric_of_key(key: str) -> StudyMetric:
    """The study metric of a table key ``<target> <metric>``."""
    return STUDY_METRICS[key.rpartition(" ")[2]]


def _initialisations(per_case: pd.DataFrame) -> list[str]:
    return [i for i in dict.fromkeys(per_case["initialisation"]) if i != SCRATCH] + [SCRATCH]


def sizes_of(per_case: pd.DataFrame) -> list[str]:
    return sorted(set(per_case[SIZE_COLUMN]), key=_size_order)


def comparison_table(study: Study, per_case: pd.DataFrame) -> pd.DataFrame:
    """One row per training size and initialisation; per target and metric ``<key> mean / sd`` (over
    folds), ``<key> diff / ci_low / ci_high / n`` (paired against scratch over test cases),
    ``<key> p`` (Wilcoxon), ``<key> p_holm`` and ``<key> no_p`` (why there is no p-value), and
    ``<target> folds``. A target without runs of a size has NaN there."""
    rows = []
    inits = _initialisations(per_case)
    for size in sizes_of(per_case):
        block = per_case[per_case[SIZE_COLUMN] == size]
        cells: dict[str, dict] = {init: {SIZE_COLUMN: size, "initialisation": init} for init in inits}
        for target in study.targets:
            part = block[block["target"] == target.label]
            for name, column in _metrics(target):
                key = f"{target.label} {name}"
                by_case = part.groupby(["initialisation", "case"])[column].mean()
                comparisons = {}
                for init in inits:
                    mine = part[part["initialisation"] == init]
                    per_fold = mine.groupby("fold")[column].mean()
                    row = cells[init]
                    row[f"{key} mean"] = per_fold.mean() if len(per_fold) else math.nan
                    row[f"{key} sd"] = per_fold.std(ddof=1) if len(per_fold) > 1 else math.nan
                    row[f"{target.label} folds"] = int(mine["fold"].nunique())
                    if init == SCRATCH or init not in by_case.index.get_level_values(0) \
                            or SCRATCH not in by_case.index.get_level_values(0):
                        continue
                    paired = pd.concat([by_case[init], by_case[SCRATCH]], axis=1, join="inner")
                    comparisons[init] = paired_comparison(paired.iloc[:, 0], paired.iloc[:, 1])
                adjusted = holm({init: c.p for init, c in comparisons.items()})
                for init in inits:
                    c = comparisons.get(init)
                    row = cells[init]
                    row[f"{key} diff"] = c.mean_difference if c else math.nan
                    row[f"{key} ci_low"] = c.ci_low if c else math.nan
                    row[f"{key} ci_high"] = c.ci_high if c else math.nan
                    row[f"{key} n"] = c.n if c else math.nan
                    row[f"{key} p"] = c.p if c and c.p is not None else math.nan
                    row[f"{key} p_holm"] = adjusted[init] if c and adjusted[init] is not None else math.nan
                    row[f"{key} no_p"] = c.no_p if c and c.no_p else ""
        rows += cells.values()
    return pd.DataFrame(rows)


def _keys(table: pd.DataFrame) -> list[str]:
    return [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]


def _number(value: float) -> str:
    return f"{value:.3f}"


def _cells(row: pd.Series, key: str) -> list[str]:
    mean, sd = row[f"{key} mean"], row[f"{key} sd"]
    value = "n/a" if math.isnan(mean) else _number(mean) + ("" if math.isnan(sd) else f" ± {_number(sd)}")
    if row["initialisation"] == SCRATCH or math.isnan(row[f"{key} diff"]):
        return [value, "", ""]
    diff = f"{row[f'{key} diff']:+.3f} [{row[f'{key} ci_low']:+.3f}, {row[f'{key} ci_high']:+.3f}]"
    p = row[f"{key} p_holm"]
    return [value, diff, row[f"{key} no_p"] if math.isnan(p) else f"{p:.2g}"]


def _max_int(table: pd.DataFrame, columns: list[str]) -> int:
    values = table[[c for c in columns if c in table]].to_numpy(dtype=float)
    return int(np.nanmax(values)) if values.size and not np.isnan(values).all() else 0


def markdown(study: Study, table: pd.DataFrame, preface: str | None = None) -> str:
    """The table as Markdown, one block per training size: per target and metric ``mean ± sd``, the
    paired difference to scratch with its interval and the Holm-corrected p-value; then a caption
    stating n, folds, the test and the correction."""
    out = [preface.strip() + "\n"] if preface else []
    sizes = list(dict.fromkeys(table[SIZE_COLUMN]))
    for size in sizes:
        block = table[table[SIZE_COLUMN] == size]
        keys = [k for k in _keys(block) if not block[f"{k} mean"].isna().all()]
        if len(sizes) > 1 or size != ALL:
            out.append(f"### {'every training case' if size == ALL else f'{size} training patients'}\n")
        header = [h for k in keys for h in (k + (" (lower is better)" if _metric_of_key(k).lower_is_better else ""),
                                             f"Δ {k} [95 % CI]", "p (Holm)")]
        out.append("| initialisation | " + " | ".join(header) + " |")
        out.append("|---|" + "---|" * len(header))
        for _, row in block.iterrows():
            out.append(f"| {row['initialisation']} | " + " | ".join(c for k in keys for c in _cells(row, k)) + " |")
        out.append("")
    n_cases = {t.label: _max_int(table, [f"{k} n" for k in _keys(table) if k.startswith(f"{t.label} ")])
               for t in study.targets}
    folds = {t.label: _max_int(table, [f"{t.label} folds"]) for t in study.targets}
    out.append(
        f"n (paired test cases): {', '.join(f'{k}: {v}' for k, v in n_cases.items())}; folds: "
        f"{', '.join(f'{k}: {v}' for k, v in folds.items())}. Each cell: mean ± sd over folds of each fold's mean "
        f"over the test cases (sd only with several folds). Δ: mean paired difference to scratch over the test "
        f"cases (each case's metric averaged over folds) with a {CONFIDENCE:.0%} percentile bootstrap interval "
        f"({BOOTSTRAP_RESAMPLES} resamples). p: two-sided paired Wilcoxon signed-rank test against scratch, "
        f"Holm-corrected over the initialisations compared on the same target, metric and training size; none "
        f"where n < {MIN_CASES_FOR_P}, since the test cannot reach 0.05 there.")
    return "\n".join(out) + "\n"


def _panels(keys: list[str]) -> list[list[str]]:
    """Keys grouped for the bar figure: every metric in [0, 1] together, each other metric
    (distances in mm, counts, volumes) in a panel of its own."""
    fractions = [k for k in keys if _metric_of_key(k).fraction]
    return ([fractions] if fractions else []) + [[k] for k in keys if not _metric_of_key(k).fraction]


def bar_figure(study: Study, table: pd.DataFrame, path: Path) -> None:
    """Grouped bars per training size (one group per target and metric, one bar per initialisation),
    error bars = sd over folds; metrics in [0, 1] share a panel, others get one each."""
    sizes = list(dict.fromkeys(table[SIZE_COLUMN]))
    panels = _panels(_keys(table))
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
                sds = [0 if math.isnan(row[f"{k} sd"]) else row[f"{k} sd"] for k in keys]
                ax.bar(xs, means, width, yerr=sds, capsize=2, label=row["initialisation"])
            ax.set_xticks(range(len(keys)), keys, fontsize=8)
            metric = _metric_of_key(keys[0])
            if metric.fraction:
                ax.set_ylim(0, 1)
            ax.set_ylabel("test cases (mean over folds)" + (", lower is better" if metric.lower_is_better else ""))
            if len(sizes) > 1 or size != ALL:
                ax.set_title("every training case" if size == ALL else f"{size} training patients", fontsize=9)
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save_figure(fig, path)


def data_efficiency_figure(study: Study, per_case: pd.DataFrame, path: Path) -> bool:
    """Metric vs number of training patients, one panel per target with ``train_sizes``, one line per
    initialisation: the mean over test cases (each case averaged over folds) with its bootstrap 95 %
    interval as a band. Returns False (and writes nothing) when no target has training sizes."""
    targets = [t for t in study.targets if t.train_sizes]
    if not targets:
        return False
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.4), squeeze=False)
    for ax, target in zip(axes[0], targets):
        primary = target.table_metrics[0]
        name, column = primary.name, primary.column
        part = per_case[(per_case["target"] == target.label) & (per_case[SIZE_COLUMN] != ALL)]
        for init in _initialisations(part) if len(part) else []:
            xs, means, lows, highs = [], [], [], []
            for size in sizes_of(part):
                values = part[(part["initialisation"] == init) & (part[SIZE_COLUMN] == size)] \
                    .groupby("case")[column].mean().dropna()
                if not len(values):
                    continue
                low, high = bootstrap_interval(values)
                xs.append(int(size))
                means.append(values.mean())
                lows.append(values.mean() if math.isnan(low) else low)
                highs.append(values.mean() if math.isnan(high) else high)
            line, = ax.plot(xs, means, marker="o", lw=1.2, label=init, ls="--" if init == SCRATCH else "-")
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
    label = _row_label(study, run)
    if run.size is not None:
        label += f", n={run.size}"
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
        ax.legend(fontsize=6)
    fig.tight_layout()
    _save_figure(fig, path)
    return n


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)


def write_report(study: Study, preface: str | None = None) -> dict[str, Path]:
    """Check comparability, then write table CSV / Markdown (``preface`` above the table), per-case
    CSV and the figures (``data_efficiency.png`` when targets have training sizes) into
    ``<study folder>/results``; returns the paths written."""
    check_comparable(study)
    per_case = collect(study)
    table = comparison_table(study, per_case)
    out = study.folder / "results"
    out.mkdir(parents=True, exist_ok=True)
    files = {"table_csv": out / "comparison.csv", "table_md": out / "comparison.md", "per_case": out / "per_case.csv",
             "bars": out / "comparison.png", "curves": out / "learning_curves.png"}
    write_csv_atomic(table, files["table_csv"])
    write_text_atomic(markdown(study, table, preface) + sources_markdown(study), files["table_md"])
    if record_path(study).is_file():  # external sources: their files, hashes and citations next to the table
        files["external_sources"] = out / RECORD_FILE
        write_text_atomic(record_path(study).read_text(encoding="utf-8"), files["external_sources"])
    write_csv_atomic(per_case, files["per_case"])
    bar_figure(study, table, files["bars"])
    learning_curves(study, files["curves"])
    if data_efficiency_figure(study, per_case, out / "data_efficiency.png"):
        files["data_efficiency"] = out / "data_efficiency.png"
    return files
