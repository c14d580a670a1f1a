"""The sequential executor: a study's steps one after another in this process, resumably.

:func:`run_step` runs one step and records its state; every executor runs steps through it (the
multi-GPU and SLURM jobs in their own processes, :mod:`.job_entry`). :func:`run_local` asks the
scheduler (:mod:`.scheduler`) for the next ready step. A finished step is never redone. A step
that was running when the runner died (killed, machine restarted) is started again: trainings
continue from nnU-Net's ``checkpoint_latest.pth`` when it is intact, predictions are written to a
temporary folder that is renamed when complete. A failed step is recorded with its log; steps
that do not depend on it still run.
"""
from __future__ import annotations

import contextlib
import errno
import os
import time

from tqdm import tqdm

from nnunet_transfer.errors import CommandKilled, NnunetTransferError, OutOfSpace
from nnunet_transfer.study import state
from nnunet_transfer.study.grid import Step, expand
from nnunet_transfer.study.paths import activate, checkpoint_path, log_path, prediction_folder, run_folder
from nnunet_transfer.study.scheduler import drive, step_schedule
from nnunet_transfer.study.sources import record_external_sources
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.steps import execute


def run_step(study: Study, step: Step) -> None:
    """Run ``step`` unless it is done; record running / done / failed / interrupted with its log and
    how many ``seconds`` it ran. Raises NnunetTransferError on failure."""
    if state.read_state(study.folder, step.id)["status"] == state.DONE:
        return
    log, start = str(log_path(study, step)), time.time()
    try:
        state.mark(study.folder, step.id, state.RUNNING, log=log)
        execute(study, step)
    except BaseException as e:
        seconds = round(time.time() - start)
        _stop_when_out_of_space(study, step, e, log, seconds)
        # Ctrl-C, SystemExit, a training ended by a signal (scancel): not a failure of the step, it did not finish
        if not isinstance(e, Exception) or isinstance(e, CommandKilled):
            state.mark(study.folder, step.id, state.INTERRUPTED, log=log, seconds=seconds,
                       **({"error": str(e).splitlines()[0][:500]} if isinstance(e, CommandKilled) else {}))
            raise
        ours = isinstance(e, NnunetTransferError)
        message = (str(e) if ours else f"{type(e).__name__}: {e}").strip() or type(e).__name__
        state.mark(study.folder, step.id, state.FAILED, log=log, seconds=seconds, error=message.splitlines()[0][:500])
        if ours:
            raise
        raise NnunetTransferError(f"{step.id} failed: {message}") from e
    try:
        state.mark(study.folder, step.id, state.DONE, log=log, seconds=round(time.time() - start))
    except OSError as e:  # the old state (running) stays: read as interrupted once this process is gone
        _stop_when_out_of_space(study, step, e, log, round(time.time() - start))
        raise


NO_SPACE = os.strerror(errno.ENOSPC)


def _out_of_space(error: BaseException | None) -> tuple[bool, str | None]:
    """Whether ``error``, or one it was raised from, is a full disk (ENOSPC), and the file it names."""
    seen: list[BaseException] = []
    while error is not None and not any(error is s for s in seen):
        seen.append(error)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True, None if error.filename is None else str(error.filename)
        if NO_SPACE in str(error):  # nnUNetv2_train's traceback in our message, a library's wrapped OSError
            return True, None
        error = error.__cause__ or error.__context__
    return False, None


def _written_by(study: Study, step: Step) -> str:
    """The folder a step writes into (its fold folder, predictions, preprocessed data)."""
    try:
        if step.kind == "pretrain":
            return str(checkpoint_path(study, step.source, step.seed).parent)
        if step.kind == "train":
            return str(run_folder(study, step.run))
        if step.kind == "test":
            return str(prediction_folder(study, step.run))
        return os.environ.get("nnUNet_preprocessed") or str(study.folder)
    except Exception:  # noqa: BLE001 - only for the message
        return str(study.folder)


def _stop_when_out_of_space(study: Study, step: Step, error: BaseException, log: str, seconds: int) -> None:
    """Raise OutOfSpace (one message naming the path) when ``error`` is a full disk, after recording
    the step as interrupted where the state can still be written (else its running state stays,
    which reads as interrupted once this process has ended); nothing otherwise."""
    full, path = _out_of_space(error)
    if not full:
        return
    where = path or f"into {_written_by(study, step)}"
    message = (f"No space left on device: {step.id} could not write {where}. The step is not done and nothing it "
               f"wrote counts as finished; free space on that file system and run the study again: the step runs "
               f"again (a training continues from its latest checkpoint). Log: {log}")
    with contextlib.suppress(OSError):
        state.mark(study.folder, step.id, state.INTERRUPTED, log=log, seconds=seconds, error=message[:500])
    raise OutOfSpace(message) from None


def run_local(study: Study, progress: bool = True) -> list[str]:
    """Run every step that is not done, one after another, each as soon as the scheduler has it ready
    (in the study's step order); returns the ids of the steps that failed.

    A failed step's dependants do not run (``status`` shows them ``blocked``); the others do. Holds
    the study's runner lock: a second runner on the same study is refused. External sources'
    checkpoints are recorded (first run) or checked against the record before any step.
    """
    activate(study)
    failed: list[str] = []
    with state.runner_lock(study.folder):
        record_external_sources(study)
        steps = expand(study)  # after the record: a hub checkpoint planned like is read from its recorded file
        by_id = {s.id: s for s in steps}
        schedule = step_schedule(study, steps).restarted()
        bar = tqdm(total=len(steps), initial=len(schedule.nodes(state.DONE)), desc=f"study {study.name}",
                   unit="step", disable=not progress)

        def run(step_id: str, slot: None) -> bool:  # the step runs here, to its end
            bar.set_postfix_str(step_id)
            try:
                run_step(study, by_id[step_id])
            except OutOfSpace:
                raise  # every later step would write to the same full disk: stop with the one message
            except NnunetTransferError as e:
                failed.append(step_id)
                tqdm.write(f"FAILED {step_id}: {str(e).splitlines()[0]}\n  log: {log_path(study, by_id[step_id])}")
                return False
            bar.update()
            return True

        drive(schedule, [None], run, poll=lambda ok: ok)
        bar.close()
    return failed
