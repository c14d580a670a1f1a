"""Warm workers: nnU-Net's console commands in a fork of a process that has already imported them.

``nnUNetv2_train`` spends ~5-10 s importing torch and nnU-Net before a quick training's few
seconds of work. A warm worker is a server process (``python -m nnunet_transfer.warm_workers``)
that imports torch, nnU-Net's training code and every trainer once, then forks one clean child
per command (Python's forkserver idea, without its process-wide singleton). The child

- takes the command's environment exactly (``os.environ`` replaced; nnU-Net >= 2.8 reads
  ``nnUNet_raw`` / ``_preprocessed`` / ``_results`` / ``_extTrainer`` from ``os.environ`` when used,
  ``CUDA_VISIBLE_DEVICES`` is read when CUDA starts, which the server never does);
- sends its stdout / stderr (file descriptors: nnU-Net's worker processes too) to the log file;
- runs the console script's own entry function (``nnunetv2.run.run_training:run_training_entry``
  for ``nnUNetv2_train``) with the command's arguments, so it does what the command does;
- dies with the server (``PR_SET_PDEATHSIG``); the server dies with its runner (end of its
  control pipe, or the runner gone); and exits, which returns its memory.

A variable read at import time (OpenMP, ``nnUNet_def_n_proc``, ``PYTHON*``, anything not listed
in :data:`READ_WHEN_USED`) is part of a server's key: a command whose environment differs there
gets a server of its own. Crashes, kills and exit codes reach the caller as the exit status of
the child, as a subprocess's would (negative: the signal). ``NNUNET_TRANSFER_WARM_WORKERS=0``
turns warm workers off; cluster jobs (``SLURM_JOB_ID`` / ``SUBMITIT_EXECUTOR`` set) never use them.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.processes import die_with_parent

SWITCH = "NNUNET_TRANSFER_WARM_WORKERS"
# read by nnU-Net / torch / us when used, not at import: a server serves every value of these
READ_WHEN_USED = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer", "nnUNet_n_proc_DA",
                  "nnUNet_compile", "CUDA_VISIBLE_DEVICES", "PYTHONUNBUFFERED", "PYTEST_CURRENT_TEST",
                  "NNUNET_TRANSFER_HOME", "MASTER_PORT")
# what a server imports before it forks (module names; the trainer variants of nnU-Net are walked too)
PRELOAD = ("torch", "nnunetv2.run.run_training", "nnunetv2.inference.predict_from_raw_data",
           "nnunet_transfer.trainers.registry")
MAX_IDLE = 2  # servers kept for later commands (each holds torch + nnU-Net in memory)
START_TIMEOUT_S = 300
INTERRUPT_GRACE_S = 10


class WorkerUnavailable(NnunetTransferError):
    """No warm worker could start for this environment (it says why): run the command as a subprocess."""


_unavailable: set[tuple] = set()  # keys whose server could not start: not tried again in this process


def enabled(env: Mapping[str, str]) -> bool:
    """Whether a command with environment ``env`` runs in a warm worker: not in a cluster job (one
    stock command per job there), not switched off with ``NNUNET_TRANSFER_WARM_WORKERS=0``, and only
    on Linux (fork, ``PR_SET_PDEATHSIG``)."""
    if env.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux") and not ({"SLURM_JOB_ID", "SUBMITIT_EXECUTOR"} & set(env)) \
        and _key(env) not in _unavailable


def _key(env: Mapping[str, str]) -> tuple:
    return tuple(sorted((k, v) for k, v in env.items() if k not in READ_WHEN_USED))


class _Server:
    """One warm server process and its control pipe (JSON lines both ways)."""

    def __init__(self, env: Mapping[str, str]):
        self.key = _key(env)
        self.owner = os.getpid()  # a fork of the runner must not talk on the runner's pipes
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - open as long as the server: why it did not start
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "nnunet_transfer.warm_workers", str(os.getpid())],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
                                         env=dict(env), close_fds=True)
        except OSError as e:
            self.errors.close()
            _unavailable.add(self.key)
            raise WorkerUnavailable(f"the warm nnU-Net worker did not start: {e}") from None
        self.ready = False
        self.idle = True  # no command of ours is running in it: it can take the next one

    def _message(self, timeout: float | None) -> dict | None:
        """The next message, or None at end of file; raises TimeoutError when none came in ``timeout``."""
        assert self.proc.stdout is not None
        if timeout is not None and not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise TimeoutError
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            message = self._message(START_TIMEOUT_S)
        except TimeoutError:
            message = None
        if message != {"ready": True}:
            self.proc.kill()
            self.proc.wait()
            self.errors.seek(0)
            detail = self.errors.read().decode(errors="replace")[-3000:]
            self.close()
            _unavailable.add(self.key)
            raise WorkerUnavailable(f"the warm nnU-Net worker did not start:\n{detail}")
        self.ready = True

    def run(self, argv: Sequence[str], env: Mapping[str, str], log: Path, on_line: Callable[[str], None]) -> int:
        """Run one command in a fresh child; its exit status (negative: ended by that signal)."""
        self.wait_ready()
        assert self.proc.stdin is not None
        self.idle = False
        self.proc.stdin.write((json.dumps({"argv": list(argv), "env": dict(env), "log": str(log)}) + "\n").encode())
        self.proc.stdin.flush()
        started = self._message(None)
        if not started or "pid" not in started:
            raise ConnectionError("the warm worker ended")
        pid, done, position = started["pid"], None, 0
        try:
            while done is None:
                try:
                    done = self._message(0.5)
                except TimeoutError:
                    pass
                else:
                    if done is None:  # the server is gone; its child went with it
                        break
                position = _follow(log, position, on_line)
        except BaseException:  # Ctrl-C or the like in the runner: the child stops too, as the command would
            self._stop_child(pid)
            raise
        if done is None:
            raise ConnectionError("the warm worker ended")
        self.idle = True
        _follow(log, position, on_line)
        return int(done["exit"])

    def _stop_child(self, pid: int) -> None:
        for sig, wait in ((signal.SIGINT, INTERRUPT_GRACE_S), (signal.SIGKILL, 5)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            try:
                if self._message(wait) is not None:
                    self.idle = True
                    return
            except (TimeoutError, ValueError):
                continue

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the server ends at the end of its control pipe
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.errors.close()


def _follow(log: Path, position: int, on_line: Callable[[str], None]) -> int:
    """Pass the complete lines written to ``log`` since ``position`` to ``on_line``; the new position."""
    try:
        with open(log, "rb") as handle:
            handle.seek(position)
            data = handle.read()
    except OSError:
        return position
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode(errors="replace").splitlines():
        on_line(line + "\n")
    return position + end


_lock = threading.Lock()
_idle: list[_Server] = []


def run(cmd: Sequence[str], env: Mapping[str, str], log: str | Path,
        on_line: Callable[[str], None] = lambda line: None) -> int:
    """Run the console command ``cmd`` (its first element the script, e.g. ``nnUNetv2_train`` or its
    path, or ``module:function`` of a function that reads ``sys.argv``) with environment ``env`` in a
    warm worker, output appended to ``log``; calls ``on_line`` with each line as it is written.
    Returns the command's exit status (negative: ended by that signal).

    Raises WorkerUnavailable when no worker starts (then :func:`enabled` says False for ``env``); a
    worker that ends mid-command (killed with its child) gives exit status ``-SIGKILL``.
    """
    server = _take(env)
    try:
        script = cmd[0] if ":" in cmd[0] else Path(cmd[0]).name
        code = server.run([script, *cmd[1:]], env, Path(log), on_line)
    except ConnectionError:
        server.close()
        return -signal.SIGKILL
    except BaseException:
        if server.idle and server.proc.poll() is None:
            _give_back(server)
        else:  # it may still run the command: ending the server ends its child too
            server.close()
        raise
    _give_back(server)
    return code


def warm_up(env: Mapping[str, str] | None = None) -> None:
    """Start a server for ``env`` (default: this environment) now, so that the first command does not
    wait for its imports; returns at once."""
    env = dict(os.environ if env is None else env)
    if enabled(env):
        _give_back(_take(env))


def _take(env: Mapping[str, str]) -> _Server:
    key = _key(env)
    with _lock:
        for server in _idle:
            if server.key == key and server.owner == os.getpid() and server.proc.poll() is None:
                _idle.remove(server)
                return server
    return _Server(env)


def _give_back(server: _Server) -> None:
    with _lock:
        _idle.insert(0, server)
        extra = _idle[MAX_IDLE:]
        del _idle[MAX_IDLE:]
    for old in extra:
        old.close()


@atexit.register
def _close_all() -> None:
    with _lock:
        servers = list(_idle)
        _idle.clear()
    for server in servers:
        if server.owner == os.getpid():
            server.close()


# ---------------------------------------------------------------------------- the server process

def _preload() -> None:
    import importlib
    from os.path import join

    for name in PRELOAD:
        importlib.import_module(name)
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
    # what nnU-Net's trainer lookup imports before it reaches nnUNet_extTrainer: all its trainer modules
    recursive_find_python_class(join(nnunetv2.__path__[0], "training", "nnUNetTrainer"), "_no_such_trainer_",
                                "nnunetv2.training.nnUNetTrainer")


def _entry(script: str) -> Callable[[], object]:
    """The function behind console script ``script``, or ``module:function`` itself."""
    import importlib
    from importlib.metadata import entry_points
    if ":" in script:
        module, _, function = script.partition(":")
        return getattr(importlib.import_module(module), function)
    found = [e for e in entry_points(group="console_scripts") if e.name == script]
    if not found:
        raise NnunetTransferError(f"{script} is not a console script of this installation")
    return found[0].load()


def _child(request: dict, server: int, control: tuple[int, ...]) -> None:
    """In the forked child: the command's environment, output and signals, then its entry function."""
    import random

    import numpy as np
    die_with_parent(server)
    for fd in control:  # the server's control pipe: its end must be the server's alone
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(request["env"])
    fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # line-buffered, as nnUNetv2_train's pipe is read: the log shows each line as it is printed
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
    random.seed()  # fresh entropy, as a new interpreter has (numpy's and Python's; torch's start is fixed)
    np.random.seed()
    sys.argv = list(request["argv"])
    entry = _entry(sys.argv[0])
    result = entry()
    if isinstance(result, int) and result:
        sys.exit(result)


def serve(runner: int) -> None:
    """The server's loop: one request at a time on the control pipe (stdin), answers on stdout."""
    import multiprocessing

    control_in = os.fdopen(os.dup(0), "rb", buffering=0)
    control_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # stray prints must not reach the control pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the child and the runner; we end with the runner
    _preload()
    import torch
    with open("/proc/self/maps") as maps:  # the CUDA driver loaded by an import: no child could use CUDA
        if torch.cuda.is_initialized() or "libcuda.so" in maps.read():
            raise RuntimeError("CUDA was initialised while importing nnU-Net; warm workers cannot fork")

    def send(message: dict) -> None:
        control_out.write((json.dumps(message) + "\n").encode())

    send({"ready": True})
    context = multiprocessing.get_context("fork")
    control = (control_in.fileno(), control_out.fileno())
    while True:
        while not select.select([control_in], [], [], 1.0)[0]:
            if os.getppid() != runner:  # the runner is gone (killed): so are we
                return
        line = control_in.readline()
        if not line:
            return
        child = context.Process(target=_child, args=(json.loads(line), os.getpid(), control),
                                name="nnunet_warm_child")
        child.start()
        send({"pid": child.pid})
        while child.exitcode is None:
            readable = select.select([child.sentinel, control_in], [], [], 1.0)[0]
            if child.sentinel in readable:
                child.join()
            elif os.getppid() != runner or (control_in in readable and not control_in.readline()):
                child.kill()  # the runner is gone: the command goes with it, as a subprocess of it would
                child.join()
                return
        send({"exit": child.exitcode})


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
