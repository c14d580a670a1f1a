"""Run a study locally, step after step, resumably; show its status.

A finished step is never redone. A step that was running when the runner died (killed, machine
restarted) is started again: trainings continue from nnU-Net's ``checkpoint_latest.pth`` when
it is intact, predictions are written to a temporary folder that is renamed when complete. A
failed step is recorded with its log; steps that do not depend on it still run.
"""
from __future__ import annotations

import pandas as pd
from tqdm import tqdm

from nnunet_transfer.errors import CommandKilled, NnunetTransferError
from nnunet_transfer.study import state
from nnunet_transfer.study.sources import record_external_sources
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.steps import Step, activate, execute, expand, log_path


def run_step(study: Study, step: Step) -> None:
    """Run ``step`` unless it is done; record running / done / failed. Raises NnunetTransferError on failure."""
    if state.read_state(study.folder, step.id)["status"] == state.DONE:
        return
    state.mark(study.folder, step.id, state.RUNNING, log=str(log_path(study, step)))
    try:
        execute(study, step)
    except BaseException as e:
        # Ctrl-C, SystemExit, a training ended by a signal (scancel): not a failure of the step, it did not finish
        if not isinstance(e, Exception) or isinstance(e, CommandKilled):
            state.mark(study.folder, step.id, state.INTERRUPTED, log=str(log_path(study, step)),
                       **({"error": str(e).splitlines()[0][:500]} if isinstance(e, CommandKilled) else {}))
            raise
        ours = isinstance(e, NnunetTransferError)
        message = (str(e) if ours else f"{type(e).__name__}: {e}").strip() or type(e).__name__
        state.mark(study.folder, step.id, state.FAILED, log=str(log_path(study, step)),
                   error=message.splitlines()[0][:500])
        if ours:
            raise
        raise NnunetTransferError(f"{step.id} failed: {message}") from e
    state.mark(study.folder, step.id, state.DONE, log=str(log_path(study, step)))


def run_local(study: Study, progress: bool = True) -> list[str]:
    """Run every step that is not done, in order; returns the ids of the steps that failed.

    Steps whose dependencies failed are skipped (reported as ``blocked`` by ``status``). Holds the
    study's runner lock: a second runner on the same study is refused. External sources'
    checkpoints are recorded (first run) or checked against the record before any step.
    """
    activate(study)
    failed: list[str] = []
    with state.runner_lock(study.folder):
        record_external_sources(study)
        steps = expand(study)  # after the record: a hub checkpoint planned like is read from its recorded file
        done = {s.id for s in steps if state.read_state(study.folder, s.id)["status"] == state.DONE}
        bar = tqdm(total=len(steps), initial=len(done), desc=f"study {study.name}", unit="step", disable=not progress)
        for step in steps:
            if step.id in done:
                continue
            if any(d not in done for d in step.deps):
                continue
            bar.set_postfix_str(step.id)
            try:
                run_step(study, step)
            except NnunetTransferError as e:
                failed.append(step.id)
                tqdm.write(f"FAILED {step.id}: {str(e).splitlines()[0]}\n  log: {log_path(study, step)}")
                continue
            done.add(step.id)
            bar.update()
        bar.close()
    return failed


def status_table(study: Study) -> pd.DataFrame:
    """One row per step: ``step``, ``status`` (done / running / failed / interrupted / pending /
    blocked), ``time`` of the last change, ``log`` path and the ``error`` of a failed step."""
    rows, status = [], {}
    for step in expand(study):
        s = state.read_state(study.folder, step.id)
        st = s["status"]
        if st == state.PENDING and any(status.get(d) in (state.FAILED, "blocked") for d in step.deps):
            st = "blocked"
        status[step.id] = st
        rows.append({"step": step.id, "status": st, "time": s.get("time", ""),
                     "log": s.get("log", "") if st != state.PENDING else "", "error": s.get("error", "")})
    return pd.DataFrame(rows)


def print_status(study: Study) -> None:
    table = status_table(study)
    counts = table["status"].value_counts()
    print(f"study {study.name} ({study.folder}): " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 120, "display.width", 200):
        shown = table[table["status"] != state.DONE] if (table["status"] != state.DONE).any() else table
        print(shown.to_string(index=False))
