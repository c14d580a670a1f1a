"""The scheduler alone on small synthetic graphs (what is done, ready, running, waiting, blocked,
failed; a failure blocks only its dependants), then the executors on one study with a failing
pretraining: the sequential runner, the multi-GPU launcher, submitit's local executor and the
SLURM planning (``plan_jobs``, what ``--dry-run`` prints) all hold back the same steps, the ones
``study status`` shows as blocked."""
import json
import sys

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study import launch, runner, state
from nnunet_transfer.study.parallel import run_parallel
from nnunet_transfer.study.scheduler import BLOCKED, READY, WAITING, Job, Schedule, drive, job_state, jobs
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.status import status_table

# a -> b -> d -> e, a -> c -> g, e also after c; f alone
GRAPH = {"a": (), "b": ("a",), "c": ("a",), "d": ("b",), "e": ("c", "d"), "f": (), "g": ("c",)}


def test_states_follow_the_graph():
    schedule = Schedule(GRAPH, {"a": state.DONE, "b": state.FAILED, "c": state.RUNNING})
    assert {n: schedule.state(n) for n in GRAPH} == {
        "a": state.DONE, "b": state.FAILED, "c": state.RUNNING, "d": BLOCKED, "e": BLOCKED, "f": READY, "g": WAITING}
    assert schedule.blocker("d") == "b" and schedule.blocker("e") == "b"  # the failed node, also through d
    assert schedule.blocker("g") == "c" and schedule.blocker("f") is None and schedule.blocker("b") is None
    assert schedule.ready() == ["f"]
    assert schedule.counts() == {state.DONE: 1, state.RUNNING: 1, state.FAILED: 1, READY: 1, WAITING: 1, BLOCKED: 2}
    assert schedule.nodes(BLOCKED, state.FAILED) == ["b", "d", "e"]


def test_an_interruption_blocks_nothing_and_a_new_run_retries_what_is_not_done():
    schedule = Schedule(GRAPH, {"a": state.DONE, "b": state.INTERRUPTED, "c": state.FAILED})
    assert schedule.state("d") == WAITING and schedule.blocker("d") == "b"
    assert schedule.state("e") == BLOCKED and schedule.blocker("e") == "c"
    again = schedule.restarted()
    assert again.ready() == ["b", "c", "f"] and again.state("e") == WAITING
    assert schedule.state("c") == state.FAILED  # the schedule restarted is a new one


def test_start_and_finish_follow_an_executor():
    schedule = Schedule(GRAPH)
    assert schedule.ready() == ["a", "f"]
    with pytest.raises(ValueError, match="b is waiting, not ready"):
        schedule.start("b")
    schedule.start("a")
    assert schedule.state("a") == state.RUNNING and schedule.ready() == ["f"]
    schedule.finish("a", ok=True)
    assert schedule.ready() == ["b", "c", "f"]
    schedule.start("b")
    schedule.finish("b", ok=False)
    assert schedule.state("d") == BLOCKED and schedule.state("e") == BLOCKED and schedule.ready() == ["c", "f"]


def test_dependencies_must_be_nodes():
    with pytest.raises(ValueError, match="not nodes of the graph: x"):
        Schedule({"a": ("x",)})


def test_a_job_is_as_far_as_its_steps():
    assert job_state([state.DONE, state.DONE]) == state.DONE
    assert job_state([state.DONE, state.FAILED]) == state.FAILED
    assert job_state([state.DONE, state.RUNNING]) == state.RUNNING
    assert job_state([state.INTERRUPTED, state.PENDING]) == state.INTERRUPTED
    assert job_state([state.DONE, state.PENDING]) == state.PENDING
    schedule = Schedule.of_jobs([Job("p", ("p",), ()), Job("r", ("t", "x"), ("p",))],
                                {"p": state.FAILED, "t": state.DONE})
    assert schedule.state("r") == BLOCKED and schedule.blocker("r") == "p"


def test_drive_runs_ready_nodes_one_per_slot_and_holds_back_only_a_failures_dependants():
    schedule, started, polls = Schedule(GRAPH), [], {}

    def start(node, slot):
        started.append((node, slot, sorted(n for n in GRAPH if schedule.state(n) == state.RUNNING)))
        polls[node] = 2  # each node runs for two polls
        return node

    def poll(node):
        polls[node] -= 1
        return None if polls[node] else node != "b"

    ended = []
    drive(schedule, ["s0", "s1"], start, poll, finished=lambda node, ok: ended.append((node, ok)), poll_s=0)
    assert [n for n, _, _ in started] == ["a", "f", "b", "c", "g"]  # d and e never start: b failed
    assert all(len(running) <= 2 for _, _, running in started)  # at most one node per slot
    assert started[0][1] == "s0" and started[1][1] == "s1"
    assert ("b", False) in ended and schedule.nodes(BLOCKED) == ["d", "e"]
    assert schedule.nodes(state.DONE) == ["a", "c", "f", "g"]


# ---------------------------------------------------------------------------- executors agree

STUDY = """
nnunet_root = "nn"
[launcher]
gpus = [0, 1]
[[sources]]
dataset = 1
[[sources]]
dataset = 2
task = "classification"
[[targets]]
dataset = 3
label = "t"
"""
FAILING = "pretrain/mri_classification"
BLOCKED_STEPS = {"train/t/mri_classification/finetune/fold_0", "test/t/mri_classification/finetune/fold_0"}


@pytest.fixture
def study(tmp_path):
    """The study with its plan done and the classification pretraining failed (in an earlier run)."""
    (tmp_path / "s.toml").write_text(STUDY)
    study = load_study(tmp_path / "s.toml")
    state.mark(study.folder, "plan", state.DONE)
    state.mark(study.folder, FAILING, state.FAILED, error="out of memory", log=str(study.folder / "logs" / "p.log"))
    return study


def _blocked(study):
    table = status_table(study)
    return set(table.loc[table["status"] == BLOCKED, "step"])


def _not_done(study):
    table = status_table(study)
    return set(table.loc[table["status"] != state.DONE, "step"])


def test_status_and_the_slurm_planning_block_the_dependants_of_the_failed_step(study):
    assert _blocked(study) == BLOCKED_STEPS
    assert set(status_table(study).set_index("step").loc[sorted(BLOCKED_STEPS), "waits_for"]) == {FAILING}
    plan = launch.plan_jobs(study).set_index("job")
    blocked_jobs = plan[plan["state"].str.startswith(BLOCKED)]
    assert {s for steps in blocked_jobs["steps"] for s in steps.split(", ")} == BLOCKED_STEPS
    assert set(blocked_jobs["state"]) == {f"blocked ({FAILING})"}
    assert plan.loc[FAILING, "state"] == state.FAILED and plan.loc[FAILING, "submit"] == "yes"  # tried again
    assert plan.loc["plan", "submit"] == "no (done)" and plan.loc["run/t/scratch/scratch/fold_0", "state"] == READY
    dry = launch.submit(study, "submitit-local", dry_run=True)
    assert dry.equals(plan.reset_index())  # --dry-run prints the same


def test_the_sequential_executor_holds_back_the_same_steps(study, monkeypatch):
    ran = []

    def execute(study, step):
        ran.append(step.id)
        if step.id == FAILING:
            raise NnunetTransferError("out of memory again")

    monkeypatch.setattr(runner, "execute", execute)
    assert runner.run_local(study, progress=False) == [FAILING]
    assert FAILING in ran and not BLOCKED_STEPS & set(ran)
    assert _blocked(study) == BLOCKED_STEPS and _not_done(study) == BLOCKED_STEPS | {FAILING}
    assert state.read_state(study.folder, FAILING)["seconds"] >= 0  # status shows how long it ran


FAKE_JOB = """
import json, sys
from pathlib import Path
from nnunet_transfer.study import state
record, folder, name, fail, steps = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
with open(record, "a") as f:
    f.write(json.dumps(name) + "\\n")
for step in steps:
    state.mark(folder, step, state.FAILED if name == fail else state.DONE)
sys.exit(1 if name == fail else 0)
"""


def test_the_multi_gpu_executor_holds_back_the_same_steps(study, tmp_path):
    record = tmp_path / "record.jsonl"

    def command(study, job):
        return [sys.executable, "-c", FAKE_JOB, str(record), str(study.folder), job.name, FAILING, *job.steps]

    failed = run_parallel(study, ["0", "1"], progress=False, command=command)
    assert set(failed) == BLOCKED_STEPS | {FAILING}
    started = {json.loads(line) for line in record.read_text().splitlines()}
    assert FAILING in started and not any(set(j.steps) & BLOCKED_STEPS for j in jobs(study) if j.name in started)
    assert _blocked(study) == BLOCKED_STEPS and _not_done(study) == BLOCKED_STEPS | {FAILING}


class _FakeExecutor:
    """submitit's executor, running each job in this process when it is submitted."""

    def __init__(self, folder, cluster):
        self.count = 0

    def update_parameters(self, **params):
        pass

    def submit(self, function, *args):
        self.count += 1
        return _FakeJob(str(self.count), function, args)


class _FakeJob:
    def __init__(self, job_id, function, args):
        self.job_id, self.error = job_id, None
        try:
            function(*args)
        except Exception as e:  # noqa: BLE001 - submitit keeps it for exception()
            self.error = e

    def done(self):
        return True

    def exception(self):
        return self.error


def test_the_submitit_local_executor_holds_back_the_same_steps(study, monkeypatch):
    started = []

    def run_job(study_file, step_ids):
        started.extend(step_ids)
        for step in step_ids:
            state.mark(study.folder, step, state.FAILED if step == FAILING else state.DONE)
            if step == FAILING:
                raise NnunetTransferError("out of memory again")
        return step_ids

    monkeypatch.setattr(launch.submitit, "AutoExecutor", _FakeExecutor)
    monkeypatch.setattr(launch, "run_job", run_job)
    monkeypatch.setattr(launch, "LOCAL_POLL_S", 0)
    with pytest.raises(NnunetTransferError, match=f"a submitit-local job failed: {FAILING}: .*2 step\\(s\\) depending"):
        launch.submit(study, "submitit-local")
    assert FAILING in started and not BLOCKED_STEPS & set(started)
    assert _blocked(study) == BLOCKED_STEPS and _not_done(study) == BLOCKED_STEPS | {FAILING}
