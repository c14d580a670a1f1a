"""Child processes that die with their parent.

A command killed with SIGKILL (or SIGTERM, whose default action skips all cleanup) must not leave
worker processes behind: converter and evaluation workers, or an ``nnUNetv2_train`` writing into
a fold folder that a resumed run is about to use.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """In a child process: ask Linux to SIGKILL it when its parent dies.

    Use as the ``initializer`` of a process pool (``functools.partial(die_with_parent, os.getpid())``
    from the parent) or the ``preexec_fn`` of a subprocess. When the parent (``parent``, default:
    the current parent) died before this ran, the child exits at once. No-op where the call does
    not exist (not Linux).
    """
    parent = os.getppid() if parent is None else parent
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: no such guarantee
        return
    if os.getppid() != parent:  # the parent is already gone: we were re-parented before the call
        os._exit(1)


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_registered = False


def forked_children_die_on_sigterm() -> None:
    """Make every process forked from now on end on SIGTERM again.

    submitit's job process handles SIGTERM itself (to requeue or ignore it). Fork-pool workers
    inherit that handler, so ``Pool.terminate()`` -- called when a ``with Pool(...)`` block ends,
    as in nnU-Net's preprocessing and predictor -- cannot end them, and the job waits in
    ``Pool.join`` for ever. Call once in a job before such pools are made.
    """
    global _registered
    if not _registered:
        os.register_at_fork(after_in_child=_default_sigterm)
        _registered = True


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children, ...), from ``/proc``; [] without it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (ended, waiting for its parent to read its status)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_descendants(grace_s: float) -> list[int]:
    """End every process below this one: SIGTERM, then SIGKILL for those still running after
    ``grace_s`` seconds; returns their pids. For a cluster job about to be requeued: its training
    and the training's workers must be gone before the job is (they would write on meanwhile)."""
    pids = _descendants(os.getpid())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.time() + grace_s
    while any(map(_running, pids)) and time.time() < deadline:
        time.sleep(0.1)
    for pid in filter(_running, pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids
