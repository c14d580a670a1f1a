"""The entry point of one job: its steps run in order in a process of their own.

A SLURM job (submitit pickles :func:`run_job` by reference) and each child process of the
multi-GPU launcher (``python -m nnunet_transfer.study.job_entry STUDY.toml STEP [STEP ...]``) run
here; every step goes through the same :func:`.runner.run_step` as in the sequential executor,
so state files and logs are the same whatever launched them.
"""
from __future__ import annotations

from nnunet_transfer.processes import forked_children_die_on_sigterm
from nnunet_transfer.study.grid import Step, expand
from nnunet_transfer.study.paths import activate
from nnunet_transfer.study.runner import run_step
from nnunet_transfer.study.spec import load_study


def run_job(study_file: str, step_ids: list[str]) -> list[str]:
    """Job entry point (runs on the cluster node): run the given steps of the study in order."""
    forked_children_die_on_sigterm()  # else nnU-Net's pools hang under submitit's SIGTERM handler
    study = load_study(study_file)
    activate(study)
    by_id: dict[str, Step] = {s.id: s for s in expand(study)}
    for step_id in step_ids:
        run_step(study, by_id[step_id])
    return step_ids


def main(argv: list[str]) -> None:
    """``STUDY.toml STEP [STEP ...]``: the command line of a multi-GPU launcher's child."""
    run_job(argv[0], argv[1:])


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
