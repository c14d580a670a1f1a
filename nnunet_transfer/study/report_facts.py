"""What the HTML report states besides numbers: what each arm loaded and how it trained, and the
provenance of the study (its file, the software, the machine, every step and its time).

Read from the files the runs leave: each arm's plans copy (``plans.json`` in its model folder: the
``transfer`` block and ``training_schedule``), its ``transfer_report.json``, nnU-Net's training logs
(their timestamps give the training time), the external sources' record, and the step state files
(time, host, log and error of every step).
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nnunet_transfer import __version__
from nnunet_transfer.io import read_json, sha256
from nnunet_transfer.plans_blocks import STRATEGY_KEYS, TRANSFER_KEY
from nnunet_transfer.study import state
from nnunet_transfer.study.architectures import architecture_label
from nnunet_transfer.study.fairness import TRANSFER_REPORT
from nnunet_transfer.study.grid import row_label, runs
from nnunet_transfer.study.paths import run_folder
from nnunet_transfer.study.sources import record_path
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.status import duration, status_table

LOG_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?):")
TRANSFER_FIELDS = ("load", "checkpoint", "checkpoint_sha256", "checkpoint_origin", "source_dataset",
                   "source_configuration", "input_channels", "inflation", "kernel", "channel_map", "keep_classes",
                   "strict")
SOFTWARE = ("nnunetv2", "torch", "dynamic_network_architectures", "numpy", "SimpleITK")


@dataclass
class ArmFacts:
    """One row of the table: how it was initialised and trained."""

    architecture: str
    label: str
    strategy: str
    trainer: str
    transfer: dict = field(default_factory=dict)  # the plans' transfer block: load rule, checkpoint, SHA-256, ...
    counts_by_part: dict = field(default_factory=dict)  # TransferReport: part -> {status: n}
    unused_source_keys: int | None = None
    citations: list[str] = field(default_factory=list)
    schedule: dict = field(default_factory=dict)
    runs_trained: int = 0
    runs_total: int = 0
    training_seconds: list[float] = field(default_factory=list)


def training_seconds(fold_folder: Path) -> float | None:
    """Wall time of a training from nnU-Net's logs in its fold folder (first to last timestamp of each
    ``training_log_*.txt``, summed over resumed parts); None without a log."""
    total, found = 0.0, False
    for log in sorted(fold_folder.glob("training_log_*.txt")):
        stamps = []
        with open(log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = LOG_TIME.match(line)
                if match:
                    stamps.append(match.group(1))
        if len(stamps) >= 2:
            parse = [datetime.fromisoformat(s) for s in (stamps[0], stamps[-1])]
            total += (parse[1] - parse[0]).total_seconds()
            found = True
    return total if found else None


def _citations(entry: dict) -> list[str]:
    out = []
    for citation in entry.get("citations") or []:
        papers = citation.get("apa_citations") or citation.get("bibtex_citations") or []
        out.append(f"{citation.get('type', '?')} '{citation.get('name', '?')}': " + "; ".join(papers))
    return out


def arm_facts(study: Study) -> list[ArmFacts]:
    """One ArmFacts per (architecture, initialisation) in the order of the study's runs: transfer block and
    TransferReport of its first trained run, its schedule (the training subset as its size), how many of
    its runs are trained and how long each took."""
    record = read_json(record_path(study)) if record_path(study).is_file() else {}
    facts: dict[tuple[str, str], ArmFacts] = {}
    for run in runs(study):
        key = (architecture_label(study, run.arch), row_label(study, run))
        arm = facts.setdefault(key, ArmFacts(key[0], key[1], run.strategy, run.trainer))
        arm.runs_total += 1
        folder = run_folder(study, run)
        if (folder / "checkpoint_final.pth").is_file():
            arm.runs_trained += 1
            seconds = training_seconds(folder)
            if seconds is not None:
                arm.training_seconds.append(seconds)
        plans_file = folder.parent / "plans.json"
        if arm.schedule or not plans_file.is_file():
            continue
        plans = read_json(plans_file)
        schedule = dict(plans.get("training_schedule") or {})
        subset = schedule.pop("train_subset", None)
        if isinstance(subset, dict):
            schedule["train_subset"] = f"{len(subset.get(str(run.fold), []))} cases (fold {run.fold})"
        arm.schedule = schedule or {"(nnU-Net's default schedule)": ""}
        if run.source is None:
            continue
        block = plans.get(TRANSFER_KEY) or {}
        arm.transfer = {k: block[k] for k in (*TRANSFER_FIELDS, *STRATEGY_KEYS) if block.get(k) is not None}
        report_file = folder / TRANSFER_REPORT
        if report_file.is_file():
            report = read_json(report_file)
            arm.counts_by_part = report.get("counts_by_part") or {}
            arm.unused_source_keys = len(report.get("unused_source_keys") or [])
            for name in ("checkpoint_sha256", "checkpoint_origin"):
                if report.get(name) and name not in arm.transfer:
                    arm.transfer[name] = report[name]
            arm.citations += _citations(report.get("source") or {})
        if run.source.external and run.source.key in record:
            entry = record[run.source.key]
            arm.transfer.setdefault("checkpoint_sha256", entry.get("sha256"))
            if entry.get("pinned"):
                arm.transfer.setdefault("checkpoint_origin", entry["pinned"])
            arm.citations += [c for c in _citations(entry) if c not in arm.citations]
    return list(facts.values())


def describe_seconds(values: list[float]) -> str:
    if not values:
        return "no training log"
    total = sum(values)
    low, high = round(min(values)), round(max(values))
    each = "" if len(values) == 1 else f"; {low} s per run" if low == high else f"; {low}-{high} s per run"
    return (f"{total / 60:.1f} min" if total >= 120 else f"{total:.0f} s") + f" in {len(values)} run(s){each}"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _accelerator() -> str:
    torch = sys.modules.get("torch")
    if torch is None:
        return "not checked"
    try:
        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken driver must not stop a report
        return "CUDA not usable"
    return "none (CPU)"


def provenance(study: Study) -> dict[str, str]:
    """Study file (path and SHA-256), package and library versions, the machine the report was written
    on, and when."""
    out = {"study file": str(study.path), "study file SHA-256": sha256(study.path) if study.path.is_file() else
           "(missing)", "study folder": str(study.folder), "nnunet_transfer": __version__}
    out |= {name: _version(name) for name in SOFTWARE}
    out |= {"Python": platform.python_version(), "machine": f"{platform.node()} ({platform.platform()}, "
            f"{os.cpu_count()} CPU cores)", "accelerator": _accelerator(), "study device": study.device or "auto",
            "report written": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    return out


def step_rows(study: Study) -> list[dict[str, str]]:
    """Every step as the scheduler sees it (:func:`.status.status_table`): ``step``, ``status`` (done /
    failed / blocked / ...), ``time`` of its last change, ``duration``, ``host``, ``log`` and ``error``;
    failed steps first."""
    rows = []
    for row in status_table(study).to_dict("records"):
        recorded = state.read_state(study.folder, row["step"])
        rows.append({k: str(row.get(k) or "") for k in ("step", "status", "time", "log", "error")}
                    | {"duration": duration(row.get("seconds")), "host": str(recorded.get("host", ""))})
    return sorted(rows, key=lambda r: r["status"] != state.FAILED)
