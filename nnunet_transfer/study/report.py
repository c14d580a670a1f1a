"""The study's comparison table and figures, from the evaluated runs.

Table (like the reference study's): one row per initialisation (source task x domain, with the
strategy when a study has several, and ``scratch``), per target the metric as mean +- sd over
folds (each fold: mean over the target's test cases) and, for lesion targets, the lesion
detection rate; the p-value of a two-sided paired Wilcoxon signed-rank test against scratch over
test cases (each case's metric averaged over folds). Runs are compared only when their network
architecture, patch size and training schedule are identical.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import atomic_path, read_json, write_csv_atomic, write_text_atomic
from nnunet_transfer.names import SCRATCH
from nnunet_transfer.study.evaluation import STUDY_COLUMNS
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.steps import Run, evaluation_file, run_folder, runs
from nnunet_transfer.transfer.checkpoint import load_checkpoint

matplotlib.use("Agg")  # figures are files; no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def _row_label(study: Study, run: Run) -> str:
    if run.source is None:
        return SCRATCH
    return run.source.label if len(study.strategies) == 1 else f"{run.source.label} ({run.strategy})"


def collect(study: Study) -> pd.DataFrame:
    """Per-case metrics of every evaluated run, with ``target``, ``initialisation``, ``strategy``, ``fold``."""
    frames = []
    for run in runs(study):
        path = evaluation_file(study, run)
        if path.is_file():
            frames.append(pd.read_csv(path).assign(target=run.target.label, initialisation=_row_label(study, run),
                                                   strategy=run.strategy, fold=str(run.fold)))
    if not frames:
        raise NnunetTransferError(f"no evaluated run in {study.folder / 'evaluations'}; run the study first "
                                  f"(nnunet_transfer study run {study.path})")
    return pd.concat(frames, ignore_index=True)


def check_comparable(study: Study) -> None:
    """Raise NnunetTransferError when runs of one target differ in architecture, patch size or schedule."""
    for target in study.targets:
        seen: dict[str, tuple[str, str]] = {}
        for run in runs(study):
            if run.target != target:
                continue
            plans_file = run_folder(study, run).parent / "plans.json"
            if not plans_file.is_file():
                continue
            plans = read_json(plans_file)
            cfg = plans["configurations"][study.configuration]
            fingerprint = repr((cfg.get("architecture"), cfg.get("patch_size"), plans.get("training_schedule")))
            seen.setdefault(fingerprint, (_row_label(study, run), str(plans_file)))
        if len(seen) > 1:
            (a, fa), (b, fb) = list(seen.values())[:2]
            raise NnunetTransferError(f"target {target.label}: runs '{a}' and '{b}' differ in architecture, patch size "
                                      f"or training schedule ({fa} vs {fb}); they cannot be compared. Re-plan with "
                                      f"shared plans and the same schedule.")


def _wilcoxon(per_case: pd.DataFrame, column: str, init: str) -> float:
    by_case = per_case.groupby(["initialisation", "case"])[column].mean()
    if init not in by_case.index.get_level_values(0) or SCRATCH not in by_case.index.get_level_values(0):
        return math.nan
    paired = pd.concat([by_case[init], by_case[SCRATCH]], axis=1, join="inner").dropna()
    if len(paired) < 2:
        return math.nan
    diff = paired.iloc[:, 0] - paired.iloc[:, 1]
    if np.allclose(diff, 0):
        return 1.0
    return float(wilcoxon(paired.iloc[:, 0], paired.iloc[:, 1]).pvalue)


def comparison_table(study: Study, per_case: pd.DataFrame) -> pd.DataFrame:
    """Numbers of the table: per initialisation and target, ``<target> <metric> mean/sd``, ``p``, ``folds``."""
    rows = []
    inits = [i for i in dict.fromkeys(per_case["initialisation"]) if i != SCRATCH] + [SCRATCH]
    for init in inits:
        row: dict = {"initialisation": init}
        for target in study.targets:
            part = per_case[(per_case["target"] == target.label) & (per_case["initialisation"] == init)]
            columns = [(target.metric, STUDY_COLUMNS[target.metric])]
            if target.lesions:
                columns.append(("lesion_tpr", STUDY_COLUMNS["lesion_tpr"]))
            for name, column in columns:
                per_fold = part.groupby("fold")[column].mean() if len(part) else pd.Series(dtype=float)
                key = f"{target.label} {name}"
                row[f"{key} mean"] = per_fold.mean() if len(per_fold) else math.nan
                row[f"{key} sd"] = per_fold.std(ddof=1) if len(per_fold) > 1 else math.nan
                sub = per_case[per_case["target"] == target.label]
                row[f"{key} p"] = math.nan if init == SCRATCH else _wilcoxon(sub, column, init)
            row[f"{target.label} folds"] = int(part["fold"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(study: Study, table: pd.DataFrame) -> str:
    """The table as Markdown: ``mean ± sd`` per cell, ``p`` against scratch in brackets."""
    keys = [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]
    lines = ["| initialisation | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for _, row in table.iterrows():
        cells = []
        for key in keys:
            mean, sd, p = row[f"{key} mean"], row[f"{key} sd"], row[f"{key} p"]
            cell = "n/a" if math.isnan(mean) else f"{mean:.3f}" + ("" if math.isnan(sd) else f" ± {sd:.3f}")
            cells.append(cell + ("" if math.isnan(p) else f" (p={p:.3g})"))
        lines.append(f"| {row['initialisation']} | " + " | ".join(cells) + " |")
    folds = ", ".join(f"{t.label}: {int(table[f'{t.label} folds'].max())}" for t in study.targets)
    note = (f"\nMean ± sd over folds ({folds}) of each fold's mean over the test cases; p: two-sided paired Wilcoxon "
            f"signed-rank test against scratch over test cases (metric averaged over folds).\n")
    return "\n".join(lines) + "\n" + note


def bar_figure(study: Study, table: pd.DataFrame, path: Path) -> None:
    """Grouped bars (one group per target and metric, one bar per initialisation), error bars = sd."""
    keys = [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]
    width = 0.8 / len(table)
    fig, ax = plt.subplots(figsize=(2 + 1.4 * len(keys) * max(1, len(table) / 3), 3.4))
    for j, (_, row) in enumerate(table.iterrows()):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(keys))]
        means = [row[f"{k} mean"] for k in keys]
        sds = [0 if math.isnan(row[f"{k} sd"]) else row[f"{k} sd"] for k in keys]
        ax.bar(xs, means, width, yerr=sds, capsize=2, label=row["initialisation"])
    ax.set_xticks(range(len(keys)), keys, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test cases (mean over folds)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save_figure(fig, path)


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
            ax.plot(range(1, len(curve) + 1), [float(v) for v in curve], lw=1,
                    label=f"{_row_label(study, run)} f{run.fold}")
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


def write_report(study: Study) -> dict[str, Path]:
    """Check comparability, then write table CSV / Markdown, per-case CSV and the two figures into
    ``<study folder>/results``; returns the paths."""
    check_comparable(study)
    per_case = collect(study)
    table = comparison_table(study, per_case)
    out = study.folder / "results"
    out.mkdir(parents=True, exist_ok=True)
    files = {"table_csv": out / "comparison.csv", "table_md": out / "comparison.md", "per_case": out / "per_case.csv",
             "bars": out / "comparison.png", "curves": out / "learning_curves.png"}
    write_csv_atomic(table, files["table_csv"])
    write_text_atomic(markdown(study, table), files["table_md"])
    write_csv_atomic(per_case, files["per_case"])
    bar_figure(study, table, files["bars"])
    learning_curves(study, files["curves"])
    return files
