"""Per-step state files and the runner lock: what is done survives any interruption.

Each step has one small JSON file under ``<study folder>/state/``, replaced atomically, so a
runner killed at any moment leaves every file either old or new, and steps running in separate
SLURM jobs never write the same file. ``done`` is written only after a step's outputs exist.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json, write_json_atomic

DONE, RUNNING, FAILED, INTERRUPTED, PENDING = "done", "running", "failed", "interrupted", "pending"


def step_file_stem(step_id: str) -> str:
    """A step id as the stem of its state and log files (``train/a/b`` -> ``train__a__b``)."""
    return step_id.replace("/", "__")


def state_path(folder: Path, step_id: str) -> Path:
    return folder / "state" / f"{step_file_stem(step_id)}.json"


def read_state(folder: Path, step_id: str) -> dict[str, Any]:
    """The step's recorded state; ``{"status": "pending"}`` when it never started. A ``running`` step
    whose process no longer exists on this host is reported as ``interrupted``."""
    path = state_path(folder, step_id)
    if not path.is_file():
        return {"status": PENDING}
    state = read_json(path)
    if state.get("status") == RUNNING and state.get("host") == socket.gethostname() and not _alive(state.get("pid")):
        state["status"] = INTERRUPTED
    return state


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark(folder: Path, step_id: str, status: str, **info: Any) -> None:
    """Record ``status`` (and ``info``: log path, error, ...) for ``step_id`` atomically."""
    write_json_atomic({"status": status, "step": step_id, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "host": socket.gethostname(), "pid": os.getpid(), **info}, state_path(folder, step_id))


def history_path(folder: Path, step_id: str) -> Path:
    return folder / "state" / f"{step_file_stem(step_id)}.history.json"


def add_history(folder: Path, step_id: str, event: str, **info: Any) -> None:
    """Append ``event`` (``requeued``, ``not requeued``, ``resumed``, ``started over``, ``retrained``)
    with ``info`` (job id, epoch, detail) to the step's history, which outlives its state (``mark``
    replaces the state; the history keeps what happened to the step across jobs). Written atomically."""
    path = history_path(folder, step_id)
    events = read_json(path) if path.is_file() else []
    events.append({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "event": event, **info})
    write_json_atomic(events, path)


def step_history(folder: Path, step_id: str) -> list[dict[str, Any]]:
    """The step's history, oldest first: one dict per event with ``time``, ``event`` and, where
    known, ``job_id``, ``epoch`` (the epoch that was running, for a requeue; the epoch a training
    continues at, for ``resumed``) and ``detail`` (why). Empty when nothing happened to the step."""
    path = history_path(folder, step_id)
    return read_json(path) if path.is_file() else []


def history_summary(events: list[dict[str, Any]]) -> str:
    """One line for ``status``: ``requeued 2x (job 12 at epoch 7, 2024-01-01 10:00:00; ...)``, then the
    last other event's detail (why a training was run again); empty for no events."""
    requeues = [e for e in events if e["event"] == "requeued"]
    parts = []
    if requeues:
        parts.append(f"requeued {len(requeues)}x (" + "; ".join(
            f"job {e.get('job_id', '?')} at epoch {e.get('epoch', '?')}, {e['time']}" for e in requeues) + ")")
    others = [e for e in events if e["event"] not in ("requeued", "resumed")]
    if others:
        parts.append(f"{others[-1]['event']}: {others[-1].get('detail', '')}".rstrip(": "))
    return "; ".join(parts)


@contextmanager
def runner_lock(folder: Path) -> Iterator[None]:
    """Hold ``<folder>/runner.lock`` for one runner at a time (released by the OS if the runner is killed).

    Raises NnunetTransferError when another process holds it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "runner.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise NnunetTransferError(f"another runner is working on {folder} (pid {handle.read().strip() or '?'}); "
                                      f"wait for it or stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
