"""Run stock ``nnUNetv2_train`` (in a warm worker or a subprocess); predict with nnU-Net's predictor in-process.

Output goes to a log file; a progress bar follows nnU-Net's ``Epoch N`` lines. A failure raises
one NnunetTransferError with the last lines of the log and its path.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from nnunet_transfer import warm_workers
from nnunet_transfer.environment import ext_trainer_value, nnunet_subprocess_env
from nnunet_transfer.errors import CommandKilled, NnunetTransferError
from nnunet_transfer.processes import die_with_parent

EPOCH_LINE = re.compile(r"^(?:.*: )?Epoch (\d+)\s*$")
OUR_ERROR = re.compile(r"(?:nnunet_transfer\.\S*Error|NnunetTransferError|TransferError): (.*)")


def default_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu``."""
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_logged(cmd: Sequence[str], log_path: str | Path, desc: str, total: int | None = None,
               env: dict[str, str] | None = None, progress: bool = True) -> None:
    """Run ``cmd``; stream its output to ``log_path``; advance a bar per nnU-Net epoch line.

    Raises NnunetTransferError when the command is missing or exits non-zero.
    """
    if shutil.which(cmd[0]) is None:
        raise NnunetTransferError(f"{cmd[0]} not found on PATH: is nnunetv2 installed in this environment?")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=15)
    bar = tqdm(total=total, desc=desc, unit="epoch", disable=not progress or not total, leave=True)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        env = dict(env if env is not None else nnunet_subprocess_env())
        env.setdefault("PYTHONUNBUFFERED", "1")  # nnU-Net's epoch lines must arrive as they happen
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, bufsize=1, preexec_fn=die_with_parent)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()  # the log is what a user tails while a long run goes on
            tail.append(line.rstrip())
            match = EPOCH_LINE.match(line.strip())
            if total and match:
                bar.n = min(total, int(match.group(1)) + 1)
                bar.refresh()
        code = proc.wait()
    bar.close()
    _raise_for_exit(cmd, code, log_path, tail)


def _raise_for_exit(cmd: Sequence[str], code: int, log_path: Path, tail: Sequence[str]) -> None:
    """Nothing for exit status 0; else CommandKilled (a signal) or NnunetTransferError with our error
    message from ``tail`` (the log's last lines), else the tail itself."""
    if code < 0:  # ended by a signal: scancel, a kill, the machine going down
        raise CommandKilled(f"`{' '.join(cmd[:4])} ...` was ended by signal {-code} (a cancelled job or a killed "
                            f"process); it continues from its latest checkpoint next time. Log: {log_path}")
    if code != 0:
        ours = [m.group(1) for m in map(OUR_ERROR.search, tail) if m]
        detail = ours[-1] if ours else "\n  ".join(tail)
        raise NnunetTransferError(f"`{' '.join(cmd[:4])} ...` failed (exit code {code}): {detail}\n"
                                  f"Full log: {log_path}")


def installed_command(name: str) -> str:
    """The console script ``name`` of this installation (next to the running interpreter, as a
    virtual environment or conda puts it), else ``name`` for a lookup on PATH. A cluster job or a
    child process then runs the nnU-Net of the installation that started it, whatever its PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else name


def train_command(dataset: str, configuration: str, fold: str | int, trainer: str, plans: str,
                  continue_training: bool = False, device: str | None = None, num_gpus: int = 1) -> list[str]:
    """``nnUNetv2_train DATASET CONFIG FOLD -tr TRAINER -p PLANS -device D [--c] [-num_gpus N]`` as a list,
    ``nnUNetv2_train`` of this installation (:func:`installed_command`); ``-num_gpus N`` (nnU-Net's
    own multi-GPU training) only when ``num_gpus > 1``."""
    cmd = [installed_command("nnUNetv2_train"), dataset, configuration, str(fold), "-tr", trainer, "-p", plans,
           "-device", device or default_device()]
    if num_gpus > 1:
        cmd += ["-num_gpus", str(num_gpus)]
    if continue_training:
        cmd.append("--c")
    return cmd


def train(dataset: str, configuration: str, fold: str | int, trainer: str, plans: str, log_path: str | Path,
          epochs: int | None = None, continue_training: bool = False, device: str | None = None,
          extra_env: dict[str, str] | None = None, progress: bool = True, num_gpus: int = 1) -> None:
    """Run :func:`train_command` with our trainers discoverable; output to ``log_path``.

    Runs in a warm worker (:mod:`nnunet_transfer.warm_workers`: a fork of a process that has nnU-Net
    imported, running ``nnUNetv2_train``'s own entry with these arguments and this environment)
    where they are enabled, else as a subprocess; multi-GPU trainings always as a subprocess.
    """
    cmd = train_command(dataset, configuration, fold, trainer, plans, continue_training, device, num_gpus)
    env = nnunet_subprocess_env(extra_env)
    if num_gpus == 1 and warm_workers.enabled(env):
        try:
            return run_warm(cmd, log_path, f"train {trainer} {dataset}", epochs, env, progress)
        except warm_workers.WorkerUnavailable as e:  # said once per environment; the stock command runs
            print(f"nnunet_transfer: {e}\nnnunet_transfer: running {cmd[0]} as a subprocess instead", file=sys.stderr)
    run_logged(cmd, log_path, f"train {trainer} {dataset}", epochs, env, progress)


def run_warm(cmd: Sequence[str], log_path: str | Path, desc: str, total: int | None = None,
             env: dict[str, str] | None = None, progress: bool = True) -> None:
    """:func:`run_logged` for an nnU-Net console command, run in a warm worker: the same log (the
    command line first, then the command's output), progress bar and errors."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(env if env is not None else nnunet_subprocess_env())
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "   # in a warm worker (nnunet_transfer.warm_workers)\n")
    tail: deque[str] = deque(maxlen=15)
    bar = tqdm(total=total, desc=desc, unit="epoch", disable=not progress or not total, leave=True)

    def on_line(line: str) -> None:
        tail.append(line.rstrip())
        match = EPOCH_LINE.match(line.strip())
        if total and match:
            bar.n = min(total, int(match.group(1)) + 1)
            bar.refresh()

    try:
        code = warm_workers.run(cmd, env, log_path, on_line)
    finally:
        bar.close()
    _raise_for_exit(cmd, code, log_path, tail)


def predict_in_process(input_dir: str | Path, output_dir: str | Path, model_folder: str | Path, folds: Sequence,
                       log_path: str | Path, device: str | None = None) -> None:
    """Predict ``input_dir`` with nnU-Net's own predictor (the code behind ``nnUNetv2_predict``) in this
    process, case after case, without test-time augmentation; nnU-Net's output goes to ``log_path``.

    Saves the ~5 s interpreter start and the export worker pool of each ``nnUNetv2_predict`` call,
    which dominate on small test sets (a study predicts once per trained model). The model folder
    is nnU-Net's ``<trainer>__<plans>__<configuration>`` folder of a training this package ran.
    Raises NnunetTransferError (with the log path) when prediction fails.
    """
    import torch  # torch and nnU-Net load in seconds: only where a prediction runs
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    os.environ["nnUNet_extTrainer"] = ext_trainer_value(os.environ.get("nnUNet_extTrainer"))
    device = device or default_device()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    Path(output_dir).mkdir(parents=True, exist_ok=True)  # the sequential path writes its json files first
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        print(f"nnUNetPredictor: {input_dir} -> {output_dir}, model {model_folder}, folds {list(folds)}, {device}")
        try:
            predictor = nnUNetPredictor(use_mirroring=False, device=torch.device(device), allow_tqdm=False,
                                        perform_everything_on_device=device != "cpu")
            predictor.initialize_from_trained_model_folder(str(model_folder), use_folds=tuple(folds),
                                                           checkpoint_name="checkpoint_final.pth")
            predictor.predict_from_files_sequential(str(input_dir), str(output_dir), save_probabilities=False,
                                                    overwrite=True)
        except Exception as e:  # noqa: BLE001 - reported with the log, like a failed nnUNetv2_predict
            traceback.print_exc()
            raise NnunetTransferError(f"prediction with {model_folder} failed: {type(e).__name__}: {e}\n"
                                      f"Full log: {log_path}") from None
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()
