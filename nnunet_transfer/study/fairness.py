"""The arms of a comparison differ only in their initialisation: checked before a table is made.

An arm is one row of the table (a source with its transfer rule and strategy, or scratch); a
comparison is one target, training size, seed, fold and architecture (an arm planned like its
checkpoint is compared with scratch planned like the same checkpoint). For every trained arm, the plans nnU-Net
trained it with (``plans.json`` in its model folder, copied by nnU-Net when the training started)
must equal scratch's apart from the ``transfer`` block and the plans name: the same architecture,
patch and batch size, spacing, normalisation, training schedule, training subset and seed. Each
arm must have been evaluated on the same test cases as scratch. A hand-edited arm (another
number of epochs, another subset, a plans file changed after planning) is refused with the key
that differs, never compared.

Also here: what each row's transfer did (its rule, strategy and TransferReport counts), for the
text under the table.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from nnunet_transfer.names import SCRATCH
from nnunet_transfer.plans_blocks import STRATEGY_KEYS, TRANSFER_KEY
from nnunet_transfer.study.architectures import architecture_label
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.steps import Run, row_label, run_folder, runs

TRANSFER_REPORT = "transfer_report.json"
# what may differ between the arms: how the network was initialised, and the plans' own name
INITIALISATION_KEYS = (TRANSFER_KEY, "plans_name")
STATEMENT = ("Fairness (checked by `study report`): in each comparison (target, training size, seed and fold) "
             "every arm was trained with the same plans as scratch apart from the transfer block (architecture, "
             "patch and batch size, spacing, normalisation), the same training schedule, training subset and seed, "
             "and evaluated on the same test cases.")
SEVERAL_ARCHITECTURES = (" Arms planned like a checkpoint were compared with scratch planned like the same checkpoint "
                         "(its architecture).")


def first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first key path at which two JSON values differ, with both values; None when equal."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}{key}", a.get(key, "(missing)"), b.get(key, "(missing)")
            found = first_difference(a[key], b[key], f"{path}{key}.")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}{i}.")
            if found:
                return found
        return None
    return None if a == b else (path.rstrip(".") or "(the value)", a, b)


def _compared_plans(plans: dict) -> dict:
    return {k: v for k, v in plans.items() if k not in INITIALISATION_KEYS}


def _comparison(run: Run) -> tuple:
    """What an arm is compared in: its target, size, seed and fold, and its architecture (an arm
    planned like its checkpoint is compared with scratch planned like it)."""
    return run.target.label, run.size, run.seed, str(run.fold), run.arch


def _describe(study: Study, run: Run) -> str:
    size = "" if run.size is None else f", {run.size} training patients"
    seed = "" if len(study.seeds) == 1 else f", seed {run.seed}"
    arch = "" if run.arch is None else f", architecture {architecture_label(study, run.arch)}"
    return f"target {run.target.label}{size}{seed}, fold {run.fold}{arch}"


def check_fairness(study: Study, per_case: pd.DataFrame | None = None) -> str:
    """Raise NnunetTransferError naming the arm, the comparison and the first key (plans) or the
    cases in which an arm differs from scratch; returns the statement for the table's text.

    ``per_case``: the collected per-case metrics (``target``, ``train_size``, ``seed``, ``fold``,
    ``initialisation``, ``case``); without it only the plans are compared."""
    scratch: dict[tuple, tuple[dict, Path]] = {}
    arms: list[tuple[Run, dict, Path]] = []
    for run in runs(study):
        plans_file = run_folder(study, run).parent / "plans.json"
        if not plans_file.is_file():
            continue
        plans = _compared_plans(read_json(plans_file))
        if run.source is None:
            scratch[_comparison(run)] = plans, plans_file
        else:
            arms.append((run, plans, plans_file))
    for run, plans, plans_file in arms:
        if _comparison(run) not in scratch:
            continue
        reference, reference_file = scratch[_comparison(run)]
        found = first_difference(plans, reference)
        if found:
            key, mine, theirs = found
            raise NnunetTransferError(
                f"{_describe(study, run)}: arm '{row_label(study, run)}' was trained with other plans than scratch: "
                f"'{key}' "
                f"is {mine!r} there and {theirs!r} for scratch ({plans_file} vs {reference_file}). Arms of a "
                f"comparison may differ only in their initialisation; train the arm again with the study's plans "
                f"(delete {run_folder(study, run)} and its step state) or leave it out.")
    if per_case is not None and len(per_case):
        _check_cases(study, per_case)
    return STATEMENT + (SEVERAL_ARCHITECTURES if len({run.arch for run in runs(study)}) > 1 else "")


def _check_cases(study: Study, per_case: pd.DataFrame) -> None:
    keys = ["target", "train_size", "seed", "fold"] + (["architecture"] if "architecture" in per_case else [])
    for comparison, block in per_case.groupby(keys, sort=False):
        cases = block.groupby("initialisation")["case"].agg(lambda c: frozenset(c.astype(str)))
        if SCRATCH not in cases:
            continue
        for arm, mine in cases.items():
            if arm == SCRATCH or mine == cases[SCRATCH]:
                continue
            only_arm, only_scratch = sorted(mine - cases[SCRATCH]), sorted(cases[SCRATCH] - mine)
            what = ", ".join(f"{k} {v}" for k, v in zip(keys, comparison))
            raise NnunetTransferError(
                f"{what}: arm '{arm}' was evaluated on other test cases than scratch (only the arm: "
                f"{', '.join(only_arm[:5]) or 'none'}; only scratch: {', '.join(only_scratch[:5]) or 'none'}). "
                f"Evaluate both on the same cases: delete the arm's evaluation and run the study again.")


def transfer_lines(study: Study) -> list[str]:
    """One line per initialisation row: its load rule and other rules set, its strategy (with the
    strategy keys in effect) and the TransferReport's counts per part, read from its first trained
    run; rows with no trained run yet are left out."""
    lines: dict[str, str] = {}
    for run in runs(study):
        label = row_label(study, run)
        folder = run_folder(study, run)
        if run.source is None or label in lines or not (folder.parent / "plans.json").is_file():
            continue
        block = read_json(folder.parent / "plans.json").get(TRANSFER_KEY) or {}
        rules = [f"load {block.get('load', '?')}"] + [f"{k} {block[k]}" for k in run.source.rules if k != "load"
                                                        and k in block]
        strategy = ", ".join(f"{k} {block[k]}" for k in STRATEGY_KEYS if block.get(k) is not None)
        text = f"- **{label}**: {'; '.join(rules)}; strategy {run.strategy}" + (f" ({strategy})" if strategy else "")
        report = folder / TRANSFER_REPORT
        if report.is_file():
            counts = read_json(report).get("counts_by_part") or {}
            text += "; " + "; ".join(f"{part} " + ", ".join(f"{n} {s}" for s, n in c.items() if n)
                                     for part, c in counts.items())
        lines[label] = text
    return list(lines.values())
