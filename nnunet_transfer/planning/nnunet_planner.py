"""nnU-Net's own fingerprint extraction, experiment planning and preprocessing, called in-process.

Planning happens in memory (:func:`plan_dataset` writes nothing), so shared plans can be checked for
every dataset before any file is written. :func:`one_worker_pool` lets every fingerprint and
preprocessing run of one planning call share one pool of worker processes. nnU-Net's planning
modules are imported where they are used: they take seconds to import, and commands such as
``study status`` import this package without planning anything.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
from typing import Iterator

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.layout import DATASET_JSON, dataset_id, preprocessed_dir, raw_dir
from nnunet_transfer.names import DEFAULT_PLANNER, PLANNERS
from nnunet_transfer.planning.plans_file import load_plans


class _KeptPool:
    """What ``Pool(n)`` returns inside :func:`one_worker_pool`: ``with`` hands out the shared pool and
    leaves it running when the block ends."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def __enter__(self):
        return self.pool

    def __exit__(self, *exc) -> bool:
        return False


class _SharedPoolMultiprocessing:
    """Stands in for the ``multiprocessing`` module inside nnU-Net's fingerprint extractor and
    preprocessor: ``get_context(...).Pool(n)`` is the one shared pool."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def get_context(self, method=None):
        return self

    def Pool(self, processes=None, *args, **kwargs):  # noqa: N802 - multiprocessing's name
        return _KeptPool(self.pool)


@contextlib.contextmanager
def one_worker_pool(num_processes: int) -> Iterator[None]:
    """Run every nnU-Net fingerprint extraction and preprocessing inside the block on one shared
    pool of ``num_processes`` spawn workers.

    nnU-Net starts (and ends) a spawn pool per dataset for the fingerprint and per dataset and
    configuration for preprocessing; every worker imports nnU-Net and torch first, about 4 s on a
    small machine. A study's plan step over 9 small datasets spent more than a minute starting
    pools. The workers run nnU-Net's own per-case functions unchanged.
    """
    from nnunetv2.experiment_planning.dataset_fingerprint import fingerprint_extractor
    from nnunetv2.preprocessing.preprocessors import default_preprocessor

    modules = (fingerprint_extractor, default_preprocessor)
    saved = [m.multiprocessing for m in modules]
    pool = multiprocessing.get_context("spawn").Pool(max(1, num_processes))
    try:
        for module in modules:
            module.multiprocessing = _SharedPoolMultiprocessing(pool)
        yield
    finally:
        for module, original in zip(modules, saved):
            module.multiprocessing = original
        pool.terminate()
        pool.join()


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Silence nnU-Net's prints of whole plans dicts (stdout); its progress bars (stderr) stay."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def ensure_fingerprint(name: str, num_processes: int, clean: bool = False, verify: bool = False) -> None:
    """Extract nnU-Net's dataset fingerprint unless it exists (or ``clean``); ``verify`` runs
    nnU-Net's dataset integrity check first."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
    raw = raw_dir(name)
    if not (raw / DATASET_JSON).is_file():
        raise NnunetTransferError(f"{raw / DATASET_JSON} is missing: {name} is not an nnU-Net raw dataset.")
    if verify:
        try:
            verify_dataset_integrity(str(raw), num_processes)
        except (AssertionError, RuntimeError) as e:
            raise NnunetTransferError(f"{name} failed nnU-Net's dataset integrity check: {e}") from None
    if clean or not (preprocessed_dir(name) / "dataset_fingerprint.json").is_file():
        with quiet():
            extract_fingerprint_dataset(dataset_id(name), num_processes=num_processes, clean=True, verbose=False,
                                        show_progress_bar=True)


@contextlib.contextmanager
def _augmentation_workers_at_least_one() -> Iterator[None]:
    """nnU-Net's planner calls ``torch.set_num_threads(nnUNet_n_proc_DA)``, which fails for 0, a
    common setting for CPU training. Planning does no augmentation: use 1 while it runs."""
    old = os.environ.get("nnUNet_n_proc_DA")
    if old is not None and old.strip() == "0":
        os.environ["nnUNet_n_proc_DA"] = "1"
    try:
        yield
    finally:
        if old is not None:
            os.environ["nnUNet_n_proc_DA"] = old


def planner_class(planner: str) -> type:
    """nnU-Net's experiment planner class of that name (``names.PLANNERS``)."""
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.experiment_planning.experiment_planners.residual_unets import residual_encoder_unet_planners
    if planner not in PLANNERS:
        raise NnunetTransferError(f"unknown planner {planner!r}; choose one of {', '.join(PLANNERS)}")
    return ExperimentPlanner if planner == "ExperimentPlanner" else getattr(residual_encoder_unet_planners, planner)


def plan_dataset(name: str, plans_name: str, gpu_memory_target_in_gb: float | None = None,
                 planner: str = DEFAULT_PLANNER) -> dict:
    """The plans nnU-Net's ``planner`` (``ExperimentPlanner`` or a residual-encoder preset) makes
    for ``name`` under ``plans_name``, without writing anything. ``gpu_memory_target_in_gb`` None:
    the planner's own target (8 GB for the default and ResEnc M, 24 for L, 40 for XL)."""
    class _InMemoryPlanner(planner_class(planner)):
        def save_plans(self, plans):  # we write plans ourselves, atomically, after sharing
            self.plans = plans

    kwargs = {"plans_name": plans_name}
    if gpu_memory_target_in_gb is not None:
        kwargs["gpu_memory_target_in_gb"] = gpu_memory_target_in_gb
    with quiet(), _augmentation_workers_at_least_one():
        instance = _InMemoryPlanner(name, **kwargs)
        plans = instance.plan_experiment()
    plans["experiment_planner_used"] = planner
    return plans


def preprocess(name: str, plans_name: str, configurations: list[str], num_processes: int) -> None:
    """Run nnU-Net's preprocessing for the configurations the plans hold."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import preprocess_dataset
    available = load_plans(name, plans_name)["configurations"]
    configs = [c for c in configurations if c in available]
    if configs:
        with quiet():
            preprocess_dataset(dataset_id(name), plans_name, configs, [num_processes] * len(configs),
                               verbose=False, show_progress_bar=True)
