"""Shared plans: one architecture, patch size and batch size for every dataset of a study.

nnU-Net plans the reference dataset; every other dataset is planned by nnU-Net too (its own
spacing, normalisation, channels, intensity statistics) and then receives the reference's
architecture (class + init kwargs), patch size and batch size under the same plans name.
Unlike ``nnUNetv2_move_plans_between_datasets`` nothing dataset-specific is copied across.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from pathlib import Path

from tqdm import tqdm

import nnunet_transfer
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.layout import resolve_dataset
from nnunet_transfer.names import DEFAULT_PLANNER
from nnunet_transfer.planning.nnunet_planner import ensure_fingerprint, one_worker_pool, plan_dataset, preprocess
from nnunet_transfer.planning.plans_file import resolved_configuration, write_plans
from nnunet_transfer.planning.twin import TWIN_CONFIGURATION, twin_2d
from nnunet_transfer.plans_blocks import (DEFAULT_PLANS, SCHEDULE_KEY, SHARED_KEYS, SHARED_PLANS_KEY,
                                          TrainingSchedule, parse_schedule, shared_plans_block)


def share_architecture(plans: dict, template: dict[str, dict], provenance: Mapping) -> tuple[dict, list[str]]:
    """Give ``plans`` the architecture, patch size and batch size of ``template`` (configuration
    name -> configuration dict) and keep only those configurations.

    The dataset's own spacing, normalisation, channels, resampling and intensity properties stay.
    Returns the new plans and the template configurations the dataset cannot have (a 3d
    configuration for a 2D dataset). Pure: ``plans`` is not modified.
    """
    out = deepcopy(plans)
    own = out["configurations"]
    kept, missing = {}, []
    for cfg_name, cfg in template.items():
        # a twin configuration is the dataset's own 2d configuration with the twin's network
        base = own.get(cfg_name) or (own.get("2d") if cfg.get("twin_of") else None)
        if base is None or "patch_size" not in base or len(base["patch_size"]) != len(cfg["patch_size"]):
            missing.append(cfg_name)
            continue
        base = deepcopy(base)
        base.pop("inherits_from", None)
        for key in SHARED_KEYS:
            base[key] = deepcopy(cfg[key])
        if cfg.get("twin_of"):
            base["twin_of"] = cfg["twin_of"]
        kept[cfg_name] = base
    out["configurations"] = kept
    out[SHARED_PLANS_KEY] = shared_plans_block(provenance, list(kept))
    return out, missing


def with_schedule(plans: dict, schedule: TrainingSchedule) -> dict:
    """``plans`` with the ``training_schedule`` block set (when the schedule sets anything)."""
    block = schedule.block()
    return {**plans, SCHEDULE_KEY: block} if block else plans


def plan_shared(reference: int | str, others: Sequence[int | str] = (), plans_name: str = DEFAULT_PLANS,
                configurations: Sequence[str] = ("2d", "3d_fullres"), num_processes: int = 2,
                run_preprocessing: bool = True, clean: bool = False, verify: bool = False,
                gpu_memory_target_in_gb: float | None = None, schedule: dict | TrainingSchedule | None = None,
                batch_size: int | None = None, twin: bool = False, progress: bool = True,
                planner: str = DEFAULT_PLANNER) -> dict[str, Path]:
    """Plan ``reference`` with nnU-Net, give ``others`` its architecture, preprocess them all.

    ``planner``: nnU-Net's experiment planner for every dataset, ``ExperimentPlanner`` (plain
    U-Net) or a residual-encoder preset (``nnUNetPlannerResEncM`` / ``L`` / ``XL``); the shared
    architecture is the reference's under that planner, recorded in the ``shared_plans`` block.

    ``twin`` adds the configuration ``2d_twin``: the 2D twin of the reference's ``3d_fullres``
    (same stages, features, in-plane kernels and strides; batch size of the reference's ``2d``)
    for every dataset, so that a 2D source pretrains the network a 3D target inflates.
    ``batch_size`` replaces the reference's batch size for every dataset (e.g. a small batch for a
    CPU run); otherwise nnU-Net's choice for the reference is shared. Returns dataset name ->
    plans file. Raises NnunetTransferError for unknown datasets, a
    configuration the reference cannot have, or a dataset that can have none of them. Plans of
    every dataset are checked before any is written. Fingerprints and preprocessing of all datasets
    share one pool of ``num_processes`` workers.
    """
    with one_worker_pool(num_processes):
        return _plan_shared(reference, others, plans_name, configurations, num_processes, run_preprocessing, clean,
                            verify, gpu_memory_target_in_gb, schedule, batch_size, twin, progress, planner)


def _plan_shared(reference, others, plans_name, configurations, num_processes, run_preprocessing, clean, verify,
                 gpu_memory_target_in_gb, schedule, batch_size, twin, progress, planner) -> dict[str, Path]:
    ref = resolve_dataset(reference)
    names = [ref] + [n for n in dict.fromkeys(resolve_dataset(o) for o in others) if n != ref]
    schedule = parse_schedule(schedule or {}, "the schedule options")
    steps = tqdm(total=len(names) * (2 + (len(configurations) + twin)), desc="shared plans",
                 disable=not progress, unit="step")
    for name in names:
        steps.set_postfix_str(f"fingerprint {name}")
        ensure_fingerprint(name, num_processes, clean=clean, verify=verify)
        steps.update()

    steps.set_postfix_str(f"plan {ref}")
    ref_plans = plan_dataset(ref, plans_name, gpu_memory_target_in_gb, planner)
    unknown = [c for c in configurations if c not in ref_plans["configurations"]]
    if unknown:
        raise NnunetTransferError(
            f"Reference {ref} has no configuration {', '.join(unknown)} (nnU-Net planned "
            f"{', '.join(ref_plans['configurations'])}). A 2D dataset only has '2d'.")
    template = {c: resolved_configuration(ref_plans, c) for c in configurations}
    if twin:
        if "3d_fullres" not in ref_plans["configurations"]:
            raise NnunetTransferError(f"--twin-2d needs a 3D reference; {ref} has no 3d_fullres configuration.")
        template[TWIN_CONFIGURATION] = twin_2d(resolved_configuration(ref_plans, "3d_fullres"),
                                               resolved_configuration(ref_plans, "2d")["batch_size"])
    if batch_size is not None:
        if batch_size < 1:
            raise NnunetTransferError(f"--batch-size must be at least 1, got {batch_size}.")
        for cfg in template.values():
            cfg["batch_size"] = int(batch_size)
    provenance = {"reference_dataset": ref, "planner": planner, "nnunet_transfer_version": nnunet_transfer.__version__}

    planned: dict[str, dict] = {}
    for name in names:
        own = ref_plans if name == ref else plan_dataset(name, plans_name, gpu_memory_target_in_gb, planner)
        plans, missing = share_architecture(own, template, provenance)
        if not plans["configurations"]:
            raise NnunetTransferError(
                f"{name} can have none of the configurations {', '.join(configurations)} "
                f"(nnU-Net planned {', '.join(own['configurations'])} for it).")
        if missing:
            tqdm.write(f"{name}: no {', '.join(missing)} configuration (2D dataset); keeping "
                       f"{', '.join(plans['configurations'])}.")
        planned[name] = with_schedule(plans, schedule)
        if name != ref:
            steps.update()
    steps.update()

    written = {}
    for name, plans in planned.items():
        written[name] = write_plans(plans, name)
        done = set()  # a twin shares the preprocessed data of the dataset's own 2d configuration
        for cfg in template:
            identifier = plans["configurations"].get(cfg, {}).get("data_identifier")
            if run_preprocessing and identifier not in done:
                steps.set_postfix_str(f"preprocess {name} {cfg}")
                preprocess(name, plans_name, [cfg], num_processes)
                done.add(identifier)
            steps.update()
    steps.close()
    return written
