"""``study status``: the scheduler's view of a study's steps, readable in a 100-column terminal.

Nothing is recomputed here: each step's state, and what a waiting or blocked step waits for, is
:class:`.scheduler.Schedule`'s over the recorded states, as every executor sees them.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pandas as pd

from nnunet_transfer.study.grid import expand
from nnunet_transfer.study.scheduler import BLOCKED, READY, STATES, WAITING, Schedule
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.state import (DONE, FAILED, INTERRUPTED, RUNNING, history_summary, read_state,
                                         step_history)

WIDTH = 100
ORDER = (FAILED, INTERRUPTED, RUNNING, READY, WAITING, BLOCKED, DONE)  # the lines of print_status
_INDENT = 21  # state (11), duration (8), two spaces


def status_table(study: Study) -> pd.DataFrame:
    """One row per step, in the study's step order: ``step``, ``status`` (the scheduler's: done,
    running, failed, interrupted, ready, waiting or blocked), ``seconds`` it ran (running: so far;
    NaN where not known), ``waits_for`` (blocked: the failed step it comes from; waiting: the first
    dependency not done), ``time`` of the last change, ``log`` (where it ran) and ``error`` (failed
    or interrupted)."""
    steps = expand(study)
    recorded = {s.id: read_state(study.folder, s.id) for s in steps}
    schedule = Schedule.of_steps(steps, {step: r["status"] for step, r in recorded.items()})
    rows = []
    for step in steps:
        r = recorded[step.id]
        rows.append({"step": step.id, "status": schedule.state(step.id), "seconds": _seconds(r),
                     "waits_for": schedule.blocker(step.id) or "", "time": r.get("time", ""), "log": r.get("log", ""),
                     "error": r.get("error", "")})
    return pd.DataFrame(rows, columns=["step", "status", "seconds", "waits_for", "time", "log", "error"])


def _seconds(recorded: dict) -> float | None:
    if recorded.get("seconds") is not None:
        return float(recorded["seconds"])
    if recorded["status"] == RUNNING and recorded.get("time"):
        try:
            return max(0.0, time.time() - time.mktime(time.strptime(recorded["time"], "%Y-%m-%d %H:%M:%S")))
        except ValueError:
            return None
    return None


def duration(seconds: float | None) -> str:
    """``45s``, ``3m10s``, ``2h05m``, ``3d04h``; empty when not known."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _shown(path: str, folder: Path) -> str:
    """A path relative to ``folder`` when inside it, else as it is."""
    for base in (folder, folder.resolve()):
        try:
            return str(Path(path).relative_to(base))
        except ValueError:
            pass
    return path


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def status_lines(study: Study, all_steps: bool = False) -> list[str]:
    """What ``study status`` prints: the study, its counts per state, then one line per step that
    is not done (every step with ``all_steps``), failed ones first, each with its duration where
    known; a waiting or blocked step with what it waits for; a failed or interrupted one with its
    error, and a failed one with its log (relative to the study folder)."""
    table = status_table(study)
    counts = table["status"].value_counts()
    folder = study.folder.resolve()
    try:
        where = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)
    except ValueError:
        where = str(folder)
    lines = [f"study {study.name} ({where}): {len(table)} steps",
             "  " + ", ".join(f"{counts[s]} {s}" for s in STATES if s in counts)]
    shown = table if all_steps else table[table["status"] != DONE]
    if shown.empty:
        return lines
    lines.append("")
    for state in ORDER:
        for row in shown[shown["status"] == state].itertuples():
            lines += _step_lines(row, study.folder)
    return lines


def _step_lines(row, folder: Path) -> list[str]:
    lines = _wrapped(f"{row.status:<11}{duration(row.seconds):>8}  ", row.step)
    if row.waits_for:
        waits = f"waits for {row.waits_for}" + (" (failed)" if row.status == BLOCKED else "")
        if len(lines[-1]) + 2 + len(waits) <= WIDTH:
            lines[-1] += f"  {waits}"
        else:
            lines += _wrapped(" " * _INDENT, waits)
    if row.error and row.status in (FAILED, INTERRUPTED):
        lines.append(" " * _INDENT + _clip(row.error, WIDTH - _INDENT))
    history = history_summary(step_history(folder, row.step))  # requeues after a time limit, retrainings
    if history:
        lines.append(" " * _INDENT + _clip(history, WIDTH - _INDENT))
    if row.log and row.status == FAILED:
        lines += _wrapped(" " * _INDENT, f"log: {_shown(row.log, folder)}")
    return lines


def _wrapped(prefix: str, text: str) -> list[str]:
    """``prefix`` + ``text``, broken after a ``/`` where longer than WIDTH, the rest indented."""
    pieces = _wrap_id(text, WIDTH - len(prefix))
    return [prefix + pieces[0]] + [" " * (len(prefix) + 2) + p for p in pieces[1:]]


def _wrap_id(step: str, width: int) -> list[str]:
    """A step id in pieces of at most ``width`` characters, broken after a ``/`` (the first piece
    ``width`` wide, the others two less: they are indented)."""
    pieces = [""]
    for part in (p + "/" for p in step.split("/")):
        if pieces[-1] and len(pieces[-1]) + len(part) > width - (2 if len(pieces) > 1 else 0):
            pieces.append("")
        pieces[-1] += part
    pieces[-1] = pieces[-1][:-1]
    return pieces


def print_status(study: Study, all_steps: bool = False) -> None:
    print("\n".join(status_lines(study, all_steps)))
