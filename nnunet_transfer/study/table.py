"""The study's comparison table, from the evaluated runs.

Table (like the reference study's): one row per initialisation (source task x domain with its
transfer rule, with the strategy when a study has several, and ``scratch``), one block per
training size when targets have ``train_sizes``; in a study over several architectures (sources
with ``plan = "like_checkpoint"``) the rows of each architecture form a group with its own scratch
row, and every arm is compared with scratch of its architecture. Per target and metric (the target's ``metric``,
then its ``metrics``; by default the lesion detection rate for lesion targets): the mean over
seeds, folds and test cases, ± the between-seed SD of the arm's mean (several seeds) or the SD
over folds (one seed); against scratch, the mean paired difference over (seed, case) pairs with a
bootstrap 95 % interval (two-level with several seeds) and the Holm-corrected p-value
(:mod:`nnunet_transfer.study.statistics`: Wilcoxon over the cases with one seed, the crossed
seed x case t-test with three seeds or more).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.names import SCRATCH
from nnunet_transfer.study.architectures import architecture_label
from nnunet_transfer.study.metrics import STUDY_METRICS, StudyMetric
from nnunet_transfer.study.spec import Study, Target
from nnunet_transfer.study.statistics import (BOOTSTRAP_RESAMPLES, CONFIDENCE, MIN_CASES_FOR_P, MIN_SEEDS_FOR_P, holm,
                                              seeded_comparison)
from nnunet_transfer.study.steps import Run, evaluation_file, refresh_evaluation, row_label, runs

ALL = "all"  # the training size of runs on every training case
SIZE_COLUMN = "train_size"
ARCHITECTURE_COLUMN = "architecture"


def size_of(run: Run) -> str:
    return ALL if run.size is None else str(run.size)


def _size_order(size: str) -> float:
    return math.inf if size == ALL else int(size)


def collect(study: Study) -> pd.DataFrame:
    """Per-case metrics of every evaluated run, with ``target``, ``train_size`` (``all`` without
    ``train_sizes``), ``architecture`` (:func:`architecture_label`), ``initialisation``, ``strategy``,
    ``seed``, ``fold``. A run evaluated with other
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
                target=run.target.label, **{SIZE_COLUMN: size_of(run)},
                **{ARCHITECTURE_COLUMN: architecture_label(study, run.arch)}, initialisation=row_label(study, run),
                strategy=run.strategy, seed=run.seed, fold=str(run.fold)))
    if not frames:
        raise NnunetTransferError(f"no evaluated run in {study.folder / 'evaluations'}; run the study first "
                                  f"(nnunet_transfer study run {study.path})")
    return pd.concat(frames, ignore_index=True)


def metrics_of(target: Target) -> list[tuple[str, str]]:
    """(name in the table, per-case column) of a target, its primary metric first."""
    return [(m.name, m.column) for m in target.table_metrics]


def metric_of_key(key: str) -> StudyMetric:
    """The study metric of a table key ``<target> <metric>``."""
    return STUDY_METRICS[key.rpartition(" ")[2]]


def initialisations(per_case: pd.DataFrame) -> list[str]:
    return [i for i in dict.fromkeys(per_case["initialisation"]) if i != SCRATCH] + [SCRATCH]


def arms(per_case: pd.DataFrame) -> list[tuple[str, str]]:
    """(architecture, initialisation) of every row, grouped by architecture, scratch last in each."""
    found = list(dict.fromkeys(zip(per_case[ARCHITECTURE_COLUMN], per_case["initialisation"])))
    return [(a, i) for arch in dict.fromkeys(a for a, _ in found)
            for a, i in [x for x in found if x[0] == arch and x[1] != SCRATCH] + [(arch, SCRATCH)]]


def arm_rows(per_case: pd.DataFrame, arm: tuple[str, str]) -> pd.DataFrame:
    return per_case[(per_case[ARCHITECTURE_COLUMN] == arm[0]) & (per_case["initialisation"] == arm[1])]


def arm_label(arm: tuple[str, str], several: bool) -> str:
    """A row's name in figures: its initialisation; scratch with its architecture when there are several."""
    return f"{arm[1]} ({arm[0]})" if several and arm[1] == SCRATCH else arm[1]


def sizes_of(per_case: pd.DataFrame) -> list[str]:
    return sorted(set(per_case[SIZE_COLUMN]), key=_size_order)


def by_seed_and_case(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """A (seed x case) table of one arm's values, each averaged over folds."""
    return rows.groupby(["seed", "case"])[column].mean().unstack("case")


def _arm_summary(mine: pd.DataFrame, column: str) -> dict[str, float]:
    """Mean over seeds (each seed: folds, then cases), SD over folds (one seed), between-seed SD."""
    per_fold = mine.groupby(["seed", "fold"])[column].mean()
    per_seed = per_fold.groupby("seed").mean()
    folds = per_fold.groupby("seed").std(ddof=1).mean() if per_fold.groupby("seed").size().max() > 1 else math.nan
    return {"mean": per_seed.mean() if len(per_seed) else math.nan, "sd": folds,
            "seed_sd": per_seed.std(ddof=1) if len(per_seed) > 1 else math.nan, "seeds": len(per_seed)}


def comparison_table(study: Study, per_case: pd.DataFrame) -> pd.DataFrame:
    """One row per training size and initialisation; per target and metric ``<key> mean / sd / seed_sd /
    seeds`` (mean over seeds, SD over folds, between-seed SD, number of seeds), ``<key> diff / ci_low /
    ci_high / n`` (paired against scratch over seeds and test cases), ``<key> p`` (Wilcoxon with one
    seed, crossed t-test with several), ``<key> p_holm``, ``<key> no_p`` (why there is no p-value) and
    ``<target> folds``. A target without runs of a size has NaN there. Rows are (``architecture``,
    ``initialisation``); each arm is paired with scratch of its architecture, and the Holm family is
    every arm compared on the target, metric and size."""
    rows = []
    all_arms = arms(per_case)
    for size in sizes_of(per_case):
        block = per_case[per_case[SIZE_COLUMN] == size]
        cells: dict[tuple, dict] = {arm: {SIZE_COLUMN: size, ARCHITECTURE_COLUMN: arm[0], "initialisation": arm[1]}
                                    for arm in all_arms}
        for target in study.targets:
            part = block[block["target"] == target.label]
            for name, column in metrics_of(target):
                key = f"{target.label} {name}"
                comparisons = {}
                for arm in all_arms:
                    mine, scratch = arm_rows(part, arm), arm_rows(part, (arm[0], SCRATCH))
                    summary = _arm_summary(mine, column)
                    cells[arm].update({f"{key} {k}": v for k, v in summary.items()})
                    cells[arm][f"{target.label} folds"] = int(mine["fold"].nunique())
                    if arm[1] == SCRATCH or not len(mine) or not len(scratch):
                        continue
                    a, b = by_seed_and_case(mine, column), by_seed_and_case(scratch, column)
                    seeds, cases = a.index.intersection(b.index), a.columns.intersection(b.columns)
                    if len(seeds) and len(cases):
                        comparisons[arm] = seeded_comparison(a.loc[seeds, cases].to_numpy(),
                                                             b.loc[seeds, cases].to_numpy())
                adjusted = holm({arm: c.p for arm, c in comparisons.items()})
                for arm in all_arms:
                    c = comparisons.get(arm)
                    row = cells[arm]
                    row[f"{key} diff"] = c.mean_difference if c else math.nan
                    row[f"{key} ci_low"] = c.ci_low if c else math.nan
                    row[f"{key} ci_high"] = c.ci_high if c else math.nan
                    row[f"{key} n"] = c.n if c else math.nan
                    row[f"{key} p"] = c.p if c and c.p is not None else math.nan
                    row[f"{key} p_holm"] = adjusted[arm] if c and adjusted[arm] is not None else math.nan
                    row[f"{key} no_p"] = c.no_p if c and c.no_p else ""
        rows += cells.values()
    return pd.DataFrame(rows)


def table_keys(table: pd.DataFrame) -> list[str]:
    return [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]


def _number(value: float) -> str:
    return f"{value:.3f}"


def _cells(row: pd.Series, key: str) -> list[str]:
    mean, spread = row[f"{key} mean"], row[f"{key} seed_sd"]
    spread = row[f"{key} sd"] if math.isnan(spread) else spread
    value = "n/a" if math.isnan(mean) else _number(mean) + ("" if math.isnan(spread) else f" ± {_number(spread)}")
    if row["initialisation"] == SCRATCH or math.isnan(row[f"{key} diff"]):
        return [value, "", ""]
    diff = f"{row[f'{key} diff']:+.3f} [{row[f'{key} ci_low']:+.3f}, {row[f'{key} ci_high']:+.3f}]"
    p = row[f"{key} p_holm"]
    return [value, diff, row[f"{key} no_p"] if math.isnan(p) else f"{p:.2g}"]


def _max_int(table: pd.DataFrame, columns: list[str]) -> int:
    values = table[[c for c in columns if c in table]].to_numpy(dtype=float)
    return int(np.nanmax(values)) if values.size and not np.isnan(values).all() else 0


def caption(study: Study, table: pd.DataFrame) -> str:
    """What the cells mean, which test gave the p-values and why, and whether training randomness
    is part of the statistics."""
    keys = table_keys(table)
    n_cases = {t.label: _max_int(table, [f"{k} n" for k in keys if k.startswith(f"{t.label} ")])
               for t in study.targets}
    folds = {t.label: _max_int(table, [f"{t.label} folds"]) for t in study.targets}
    seeds = _max_int(table, [f"{k} seeds" for k in keys])
    counts = (f"n (paired test cases): {', '.join(f'{k}: {v}' for k, v in n_cases.items())}; folds: "
              f"{', '.join(f'{k}: {v}' for k, v in folds.items())}; training seeds: {seeds}.")
    if seeds <= 1:
        return (f"{counts} Each cell: mean over the test cases (and folds) ± sd over folds (only with several folds). "
                f"**One training per arm: training randomness is not measured**, so Δ and p say how the test cases "
                f"vary, not whether another training of the same arm would agree (run the study with seeds = "
                f"[0, 1, 2] for that). Δ: mean paired difference to scratch over the test cases (each case's metric "
                f"averaged over folds) with a {CONFIDENCE:.0%} percentile bootstrap interval ({BOOTSTRAP_RESAMPLES} "
                f"resamples). p: two-sided paired Wilcoxon signed-rank test against scratch, Holm-corrected over the "
                f"initialisations compared on the same target, metric and training size; none where n < "
                f"{MIN_CASES_FOR_P}, since the test cannot reach 0.05 there.")
    return (f"{counts} Each cell: mean over seeds, folds and test cases ± the between-seed SD of the arm's mean "
            f"(how much one training of the arm differs from another). Δ: mean paired difference to scratch over "
            f"(seed, test case) pairs (same seed, same case; folds averaged) with a {CONFIDENCE:.0%} two-level "
            f"percentile bootstrap interval ({BOOTSTRAP_RESAMPLES} resamples, seeds and cases drawn with "
            f"replacement). p: two-sided t-test of the mean difference with its variance from the crossed seed x "
            f"case decomposition and Satterthwaite's degrees of freedom, so that both training randomness and the "
            f"choice of test cases count; Holm-corrected over the initialisations compared on the same target, "
            f"metric and training size; none with fewer than {MIN_SEEDS_FOR_P} seeds or {MIN_CASES_FOR_P} cases "
            f"(documentation/explanation/statistics.md).")


def markdown(study: Study, table: pd.DataFrame, preface: str | None = None) -> str:
    """The table as Markdown, one block per training size: per target and metric the mean ± spread,
    the paired difference to scratch with its interval and the Holm-corrected p-value, one group
    per architecture when there are several; then the caption (:func:`caption`)."""
    out = [preface.strip() + "\n"] if preface else []
    sizes = list(dict.fromkeys(table[SIZE_COLUMN]))
    archs = list(dict.fromkeys(table[ARCHITECTURE_COLUMN]))
    for size in sizes:
        block = table[table[SIZE_COLUMN] == size]
        keys = [k for k in table_keys(block) if not block[f"{k} mean"].isna().all()]
        if len(sizes) > 1 or size != ALL:
            out.append(f"### {'every training case' if size == ALL else f'{size} training patients'}\n")
        header = [h for k in keys for h in (k + (" (lower is better)" if metric_of_key(k).lower_is_better else ""),
                                             f"Δ {k} [95 % CI]", "p (Holm)")]
        for arch in archs:
            if len(archs) > 1:
                out.append(f"#### {arch}: each row against scratch in this architecture\n")
            out.append("| initialisation | " + " | ".join(header) + " |")
            out.append("|---|" + "---|" * len(header))
            for _, row in block[block[ARCHITECTURE_COLUMN] == arch].iterrows():
                out.append(f"| {row['initialisation']} | " + " | ".join(c for k in keys for c in _cells(row, k))
                           + " |")
            out.append("")
    out.append(caption(study, table))
    if len(archs) > 1:
        out.append(f"\nArchitectures: {', '.join(archs)}. Every row is compared with scratch trained in its own "
                   f"architecture (the same seeds, folds, schedule and training subsets); the Holm correction runs "
                   f"over the rows of all architectures.")
    return "\n".join(out) + "\n"
