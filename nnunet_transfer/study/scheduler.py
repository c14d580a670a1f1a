"""The one scheduler of a study: its dependency graph and what each node may do now.

A node is a step (``plan``, ``pretrain/...``, ``train/...``, ``test/...``) or a :class:`Job` (steps
run together: one SLURM job, one child process of the multi-GPU launcher). A node's recorded state
comes from the per-step state files (:mod:`.state`): ``done``, ``running``, ``failed``,
``interrupted`` or ``pending``; the schedule derives the rest of a pending node from the graph:

- ``ready``: every dependency is done, it can start now;
- ``waiting``: a dependency has not finished (pending, running or interrupted); :meth:`Schedule.blocker`
  names the first such dependency;
- ``blocked``: a dependency failed, or is blocked itself; :meth:`Schedule.blocker` names the failed
  node it comes from. A failed node blocks only its dependants; everything else goes on.

Executors differ only in how they run a ready node: :mod:`.runner` one step after another in the
runner's process, :mod:`.parallel` one job per device in child processes, :mod:`.launch` jobs
through submitit (its local executor through :func:`drive` like the others; SLURM by submitting
every job that is not done with ``afterok`` dependencies, so SLURM holds back a failed job's
dependants). ``study status`` (:mod:`.status`) prints the same schedule.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nnunet_transfer.study.grid import Step, expand
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.state import DONE, FAILED, INTERRUPTED, PENDING, RUNNING, read_state

READY, WAITING, BLOCKED = "ready", "waiting", "blocked"
STATES = (DONE, RUNNING, FAILED, INTERRUPTED, READY, WAITING, BLOCKED)
POLL_S = 0.2  # how often drive() asks running nodes whether they finished


@dataclass(frozen=True)
class Job:
    """Steps run together, in order, as one unit (a SLURM job, a child of the multi-GPU launcher)."""

    name: str
    steps: tuple[str, ...]
    deps: tuple[str, ...]  # names of jobs that must succeed first


def jobs(study: Study, steps: Sequence[Step] | None = None) -> list[Job]:
    """The study's jobs in dependency order: one per plan and per pretraining, then one per trained
    model (``run/<...>``: its training step and its test step). ``steps``: the study's, when expanded
    already."""
    steps = expand(study) if steps is None else steps
    out = [Job(s.id, (s.id,), s.deps) for s in steps if s.kind in ("plan", "pretrain")]
    for step in steps:
        if step.kind == "train":
            out.append(Job(step.id.replace("train/", "run/", 1), (step.id, step.id.replace("train/", "test/", 1)),
                           step.deps))
    return out


def job_state(step_states: Iterable[str]) -> str:
    """A job's recorded state from its steps': done when all are, else failed, running or interrupted
    when one is (in that order), else pending."""
    states = set(step_states)
    if states <= {DONE}:
        return DONE
    for state in (FAILED, RUNNING, INTERRUPTED):
        if state in states:
            return state
    return PENDING


class Schedule:
    """A dependency graph with a recorded state per node; answers what is done, ready, running,
    waiting, blocked or failed, and follows an executor's :meth:`start` / :meth:`finish`.

    ``deps``: node -> the nodes it depends on, in an order that respects them (dependencies first);
    ``states``: recorded states (:mod:`.state`'s names; a node missing is pending). Raises ValueError
    for a dependency that is not a node of the graph."""

    def __init__(self, deps: Mapping[str, Sequence[str]], states: Mapping[str, str] | None = None):
        self.deps = {node: tuple(d) for node, d in deps.items()}
        unknown = sorted({d for ds in self.deps.values() for d in ds} - set(self.deps))
        if unknown:
            raise ValueError(f"dependencies that are not nodes of the graph: {', '.join(unknown)}")
        states = states or {}
        self._recorded = {node: states.get(node, PENDING) for node in self.deps}
        self._derived: dict[str, tuple[str, str | None]] | None = None

    @classmethod
    def of_steps(cls, steps: Sequence[Step], states: Mapping[str, str] | None = None) -> Schedule:
        return cls({s.id: s.deps for s in steps}, states)

    @classmethod
    def of_jobs(cls, all_jobs: Sequence[Job], step_states: Mapping[str, str]) -> Schedule:
        """The jobs' graph; each job's state from its steps' (:func:`job_state`)."""
        return cls({j.name: j.deps for j in all_jobs},
                   {j.name: job_state(step_states.get(s, PENDING) for s in j.steps) for j in all_jobs})

    def restarted(self) -> Schedule:
        """The schedule of a new run: done stays done, everything else (failed, interrupted, running
        in a runner that died) is to run again."""
        return Schedule(self.deps, {n: DONE for n, s in self._recorded.items() if s == DONE})

    # -- questions
    def _derive(self) -> dict[str, tuple[str, str | None]]:
        if self._derived is None:
            derived: dict[str, tuple[str, str | None]] = {}
            for node in self.deps:  # dependencies come first
                derived[node] = self._derive_one(node, derived)
            self._derived = derived
        return self._derived

    def _derive_one(self, node: str, derived: dict[str, tuple[str, str | None]]) -> tuple[str, str | None]:
        recorded = self._recorded[node]
        if recorded != PENDING:
            return recorded, None
        states = [(d, derived[d] if d in derived else self._derive_one(d, derived)) for d in self.deps[node]]
        for dep, (state, blocker) in states:
            if state in (FAILED, BLOCKED):
                return BLOCKED, blocker or dep
        waits = next((dep for dep, (state, _) in states if state != DONE), None)
        return (READY, None) if waits is None else (WAITING, waits)

    def state(self, node: str) -> str:
        """done | running | failed | interrupted | ready | waiting | blocked."""
        return self._derive()[node][0]

    def blocker(self, node: str) -> str | None:
        """For a blocked node the failed node it comes from; for a waiting node the first dependency
        not done; else None."""
        return self._derive()[node][1]

    def nodes(self, *states: str) -> list[str]:
        """The nodes in one of ``states`` (every node without), in graph order."""
        derived = self._derive()
        return [n for n in self.deps if not states or derived[n][0] in states]

    def ready(self) -> list[str]:
        return self.nodes(READY)

    def counts(self) -> dict[str, int]:
        """How many nodes are in each state, in the order of :data:`STATES`, states with none left out."""
        found = [s for s, _ in self._derive().values()]
        return {s: found.count(s) for s in STATES if s in found}

    # -- an executor's reports
    def start(self, node: str) -> None:
        """Record that ``node`` started; raises ValueError when it is not ready."""
        if self.state(node) != READY:
            raise ValueError(f"{node} is {self.state(node)}, not ready")
        self._set(node, RUNNING)

    def finish(self, node: str, ok: bool) -> None:
        """Record that ``node`` ended: done when ``ok``, else failed (its dependants become blocked)."""
        self._set(node, DONE if ok else FAILED)

    def _set(self, node: str, state: str) -> None:
        self._recorded[node] = state
        self._derived = None


def step_schedule(study: Study, steps: Sequence[Step] | None = None) -> Schedule:
    """The study's steps with their recorded states (as ``study status`` shows them)."""
    steps = expand(study) if steps is None else steps
    return Schedule.of_steps(steps, {s.id: read_state(study.folder, s.id)["status"] for s in steps})


def job_schedule(study: Study, all_jobs: Sequence[Job]) -> Schedule:
    """The study's jobs with the states their steps recorded."""
    return Schedule.of_jobs(all_jobs, {s: read_state(study.folder, s)["status"] for j in all_jobs for s in j.steps})


Handle = TypeVar("Handle")


def drive(schedule: Schedule, slots: Sequence[Any], start: Callable[[str, Any], Handle],
          poll: Callable[[Handle], bool | None], finished: Callable[[str, bool], None] = lambda node, ok: None,
          poll_s: float = POLL_S) -> None:
    """Run the schedule's ready nodes, at most one per slot at a time, until none is ready or running.

    ``start(node, slot)`` starts a node and returns a handle (it may run the node to completion);
    ``poll(handle)`` says None while it runs, else whether it succeeded; ``finished(node, ok)`` is told
    each ending after the schedule recorded it. A failed node's dependants never start. Exceptions of
    ``start`` / ``poll`` propagate (Ctrl-C stops the run)."""
    free, running = list(slots), {}
    while True:
        for node in schedule.ready():
            if not free:
                break
            slot = free.pop(0)
            schedule.start(node)
            running[slot] = (node, start(node, slot))
        if not running:
            return
        ended = False
        for slot, (node, handle) in list(running.items()):
            ok = poll(handle)
            if ok is None:
                continue
            del running[slot]
            free.append(slot)
            free.sort(key=list(slots).index)
            schedule.finish(node, ok)
            finished(node, ok)
            ended = True
        if not ended:
            time.sleep(poll_s)
