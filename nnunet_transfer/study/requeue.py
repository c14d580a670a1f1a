"""SLURM jobs that outlive a time limit or a preemption: requeued, continued from nnU-Net's latest checkpoint.

SLURM sends SIGUSR2 ``launcher.signal_delay_s`` seconds before a job's time limit (``--signal``,
written by submitit; SLURM checks every 30 s, so it may come up to 30 s earlier) and when the job is
preempted (with the partition's GraceTime). submitit's handler in the job's process then calls
:meth:`RequeueableJob.checkpoint`, which

1. ends the job's other processes (the running ``nnUNetv2_train`` and its data loaders, or a
   prediction's workers): SIGTERM, SIGKILL after :data:`STOP_GRACE_S`. Our trainers write every
   checkpoint beside its name and rename it, so a stop at any moment leaves the previous
   ``checkpoint_latest.pth`` whole;
2. records the requeue in the running step's history (:func:`.state.add_history`: when, the job id,
   the epoch that was running), which ``study status`` shows (:func:`.state.step_history`);
3. returns the same job for submitit to requeue (``scontrol requeue``: the job keeps its id, so the
   jobs waiting on it with ``afterok`` keep waiting), or, once ``launcher.max_requeues`` requeues are
   used, records ``not requeued`` and ends the step as interrupted (``study run`` submits it again).

The requeued job runs its steps again: done steps are skipped, the training continues with
``nnUNetv2_train --c`` from ``checkpoint_latest.pth``. What is lost: the epochs since that checkpoint
was saved (every ``schedule.save_every`` epochs, nnU-Net's default 50) and the epoch that was running.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from submitit.core.utils import DelayedSubmission

from nnunet_transfer.errors import CommandKilled
from nnunet_transfer.nnunet_commands import EPOCH_LINE
from nnunet_transfer.processes import stop_descendants
from nnunet_transfer.study import state

STOP_GRACE_S = 20.0


def _running_step(folder: Path, step_ids: list[str]) -> str:
    """The job's first step that is not done (the one the signal interrupted)."""
    return next((s for s in step_ids if state.read_state(folder, s)["status"] != state.DONE), step_ids[-1])


def epoch_reached(log: str | os.PathLike | None) -> int | None:
    """The epoch nnU-Net was running: the last ``Epoch N`` line of a training's log; None without one."""
    if not log or not Path(log).is_file():
        return None
    epochs = [int(m.group(1)) for m in map(EPOCH_LINE.match, Path(log).read_text(errors="replace").splitlines())
              if m]
    return epochs[-1] if epochs else None


class RequeueableJob:
    """A study job, ``entry(study_file, step_ids)``, that submitit requeues on SLURM's warning signal
    (time limit or preemption) at most ``max_requeues`` times; ``folder``: the study's folder."""

    def __init__(self, entry: Callable[[str, list[str]], list[str]], folder: str | os.PathLike, max_requeues: int,
                 requeues: int = 0):
        self.entry, self.folder, self.max_requeues, self.requeues = entry, Path(folder), max_requeues, requeues

    def __call__(self, study_file: str, step_ids: list[str]) -> list[str]:
        return self.entry(study_file, step_ids)

    def checkpoint(self, study_file: str, step_ids: list[str]) -> DelayedSubmission:
        """Called by submitit on the signal: stop the training, record the requeue, return this job
        again. Raises CommandKilled (the step ends interrupted) once ``max_requeues`` are used."""
        stop_descendants(STOP_GRACE_S)
        step_id = _running_step(self.folder, step_ids)
        info = {"job_id": os.environ.get("SLURM_JOB_ID", "?"),
                "epoch": epoch_reached(state.read_state(self.folder, step_id).get("log"))}
        if self.requeues >= self.max_requeues:
            detail = (f"the job reached its time limit (or was preempted) after {self.requeues} requeue(s), "
                      f"launcher.max_requeues = {self.max_requeues}; `study run` submits it again and the training "
                      f"continues from its latest checkpoint")
            state.add_history(self.folder, step_id, "not requeued", **info, detail=detail)
            raise CommandKilled(f"{step_id}: not requeued: {detail}")
        state.add_history(self.folder, step_id, "requeued", **info, requeue=self.requeues + 1,
                          max_requeues=self.max_requeues)
        return DelayedSubmission(RequeueableJob(self.entry, self.folder, self.max_requeues, self.requeues + 1),
                                 study_file, step_ids)
