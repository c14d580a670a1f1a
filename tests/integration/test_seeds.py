"""Seeded training: the same ``training_schedule.seed`` on the CPU repeats a run exactly.

Real nnU-Net (``nnUNetv2_train``'s own code, in this process) with our trainers on tiny data:
two from-scratch runs with one seed give identical loss curves and final weights, another seed
gives others; a fine-tuning repeats too; augmentation workers get their own seeds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from nnunet_transfer.trainers.seeding import TRAIN_LOADER, VALIDATION_LOADER, worker_seeds
from tests.integration.nnunet import cli, env_from_cli, environment, train

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_seeds")]

DATASET, NAME, PLANS = "913", "Dataset913_DemoAnatomy", "nnUNetTransferPlans"


@pytest.fixture(scope="module")
def nnunet(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet")
    env = env_from_cli(root)
    write_demo_datasets(env["nnUNet_raw"], DemoDataSize(spacing_mm=8.0, n_train=6, n_test=2), seed=3,
                        which=["anatomy"], progress=False)
    cli(env, "plan", "-d", DATASET, "-c", "2d", "-np", "2", "--epochs", "2", "--iterations-per-epoch", "3",
        "--val-iterations", "1")
    _plans_with_seed(env, PLANS, None, final_validation="never")  # fold 0's sliding-window validation: not needed
    return env


def _plans_with_seed(env, name: str, seed: int | None, base: str = PLANS, **schedule) -> str:
    from nnunet_transfer.planning.plans_file import load_plans, write_plans
    from nnunet_transfer.plans_blocks import update_schedule
    with environment(env):
        plans = update_schedule(load_plans(NAME, base), schedule)
        if seed is not None:
            plans = update_schedule(plans, {"seed": seed})
        write_plans({**plans, "plans_name": name}, NAME)
    return name


def _train(env, trainer: str, *plans: str) -> list[dict]:
    """Train each of ``plans`` in turn (a fresh fold folder each time); their final checkpoints."""
    results = Path(env["nnUNet_results"]) / NAME
    runs = []
    for name in plans:
        fold = results / f"{trainer}__{name}__2d" / "fold_0"
        shutil.rmtree(fold, ignore_errors=True)
        train(env, DATASET, "2d", "0", trainer, name)
        runs.append(torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False))
    return runs


def _same_run(a: dict, b: dict) -> bool:
    weights_a, weights_b = a["network_weights"], b["network_weights"]
    same_weights = weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k])
                                                                for k in weights_a)
    return same_weights and a["logging"]["train_losses"] == b["logging"]["train_losses"] \
        and a["logging"]["val_losses"] == b["logging"]["val_losses"]


def test_same_seed_repeats_a_scratch_run_and_another_seed_does_not(nnunet):
    env = nnunet
    seed0 = _plans_with_seed(env, "P_default_seed", None)  # no seed key: the default seed 0
    seed1 = _plans_with_seed(env, "P_seed1", 1)
    first, second, other = _train(env, "nnUNetTrainerFromScratch", seed0, seed0, seed1)
    assert len(first["logging"]["train_losses"]) == 2
    assert _same_run(first, second)
    assert not _same_run(first, other)
    assert first["logging"]["train_losses"] != other["logging"]["train_losses"]
    log = next((Path(env["nnUNet_results"]) / NAME / f"nnUNetTrainerFromScratch__{seed1}__2d" / "fold_0")
               .glob("training_log_*.txt")).read_text()
    assert "Training seed 1 (training_schedule.seed)" in log


def test_same_seed_repeats_a_finetuning(nnunet):
    env = nnunet
    source = Path(env["nnUNet_results"]) / NAME / "nnUNetTrainerFromScratch__P_seed1__2d" / "fold_0" / \
        "checkpoint_final.pth"
    if not source.is_file():  # this test may run first
        _plans_with_seed(env, "P_seed1", 1)
        train(env, DATASET, "2d", "0", "nnUNetTrainerFromScratch", "P_seed1")
    cli(env, "attach", str(source), "-d", DATASET, "-p", PLANS, "-o", "P_ft")
    first, second = _train(env, "nnUNetTrainerFinetune", "P_ft", "P_ft")
    assert _same_run(first, second)


def test_augmentation_workers_get_their_own_seeds(nnunet):
    from nnunetv2.run.run_training import get_trainer_from_args
    env = dict(nnunet, nnUNet_n_proc_DA="2")
    plans = _plans_with_seed(env, "P_seed7", 7)
    with environment(env):
        trainer = get_trainer_from_args(DATASET, "2d", 0, "nnUNetTrainerFromScratch", plans, device=torch.device("cpu"))
        trainer.initialize()
        train_loader, validation_loader = trainer.get_dataloaders()
        try:
            assert train_loader.seeds == worker_seeds(7, TRAIN_LOADER, 2)
            assert validation_loader.seeds == worker_seeds(7, VALIDATION_LOADER, 1)
            assert len(set(train_loader.seeds + validation_loader.seeds)) == 3
            next(train_loader)  # the restarted workers deliver batches
        finally:
            train_loader._finish()
            validation_loader._finish()
