"""``diagnose``: what a transferred initialisation does to the network at the start of fine-tuning,
against the same network freshly initialised.

The fine-tuning trainer is built and initialised as ``nnUNetv2_train`` would; its freshly
initialised network is copied, then the transfer checkpoint is loaded through the trainer's own
``load_transfer_checkpoint`` (the one transfer driver), so the two networks differ only by what was
loaded. Both see the same batches of the trainer's own training dataloader: the first batch for
activations, head output and loss; the first N for two short trainings with the trainer's own
``train_step``, optimizer and strategy, recording gradient norms per stage and the loss.
"""
from __future__ import annotations

import contextlib
import copy
import tempfile
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnunet_transfer.diagnostics.curves import training_curves
from nnunet_transfer.diagnostics.findings import findings, ratio
from nnunet_transfer.diagnostics.nnunet import (Arm, Target, build_trainer, class_names, make_arms,
                                                nnunet_scratch_environment, resolve_target, shut_down_dataloaders)
from nnunet_transfer.diagnostics.report import finite, write_outputs
from nnunet_transfer.diagnostics.statistics import (GradientRecorder, group_order, head_distribution, parameter_group,
                                                    part_norms, stage_statistics)
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import require_writable_folder
from nnunet_transfer.layout import results_folder
from nnunet_transfer.names import SCRATCH_TRAINER, STRATEGIES
from nnunet_transfer.transfer.report import ADAPTED, LOADED

DEFAULT_TRAINER = STRATEGIES["finetune"]
DIAGNOSTICS_FOLDER = "diagnostics"


@dataclass
class Diagnosis:
    """What ``diagnose`` measured (``data``: plain JSON, as in diagnostics.json) and the files it wrote."""

    data: dict[str, Any]
    files: dict[str, Path]


def _device(device: str | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise NnunetTransferError("--device cuda: no CUDA device is available here; use --device cpu.")
    return torch.device(device)


def _on(device: torch.device, target: Any) -> Any:
    return [t.to(device) for t in target] if isinstance(target, list) else target.to(device)


def _first(output: Any) -> torch.Tensor:
    # nnU-Net's deep supervision: a list, full resolution first
    return output[0] if isinstance(output, (list, tuple)) else output


def loaded_by_group(report: dict, model: torch.nn.Module) -> dict[str, dict[str, int]]:
    """Per parameter group (``statistics.parameter_group``): entries of the TransferReport that were
    loaded or adapted, and all entries."""
    out: dict[str, dict[str, int]] = {}
    for record in report.get("parameters", []):
        counts = out.setdefault(parameter_group(model, record["name"]), {"transferred": 0, "entries": 0})
        counts["entries"] += 1
        counts["transferred"] += record["status"] in (LOADED, ADAPTED)
    return {g: out[g] for g in group_order(out)}


def first_batch(trainer: Any, arms: tuple[Arm, Arm], batch: dict, loaded: dict) -> dict[str, Any]:
    """Activation statistics per stage, head output distribution and loss of both arms on ``batch``
    (training mode, as the first ``train_step`` sees it; no gradients)."""
    device = trainer.device
    data, target = batch["data"].to(device), _on(device, batch["target"])
    names = class_names(trainer)
    stats, heads, losses = {}, {}, {}
    for arm in arms:
        arm.enter(trainer)
        arm.network.train()
        stats[arm.name], output = stage_statistics(arm.network, data)
        with torch.no_grad():
            losses[arm.name] = float(trainer.loss(output, target))
        heads[arm.name] = head_distribution(_first(output), _first(target), names, trainer.label_manager.has_regions)
    rows = []
    for stage, t in stats["transferred"].items():
        f = stats["fresh"][stage]
        rows.append({"stage": stage, "transferred": t.to_dict(), "fresh": f.to_dict(), "sd_ratio": ratio(t.sd, f.sd),
                     "weights": loaded.get(stage)})
    return {"stages": rows, "head": heads, "loss": losses, "batch_shape": list(data.shape)}


def train_both(trainer: Any, arms: tuple[Arm, Arm], batch: dict, iterations: int,
               progress: bool = True) -> dict[str, Any]:
    """``iterations`` training steps of each arm with the trainer's own ``train_step`` on the same
    batches (``batch`` first, then the trainer's dataloader; each drawn once, used by both arms),
    the trainer's epoch start (scheduler, strategy) at every epoch boundary. Returns the loss and
    the gradient norm per group and iteration of each arm, and the mean norm per group and part."""
    from tqdm import tqdm

    per_epoch = trainer.num_iterations_per_epoch
    recorders = {arm.name: GradientRecorder(arm.network) for arm in arms}
    loss = {arm.name: [] for arm in arms}
    norms: dict[str, dict[str, list]] = {arm.name: {} for arm in arms}
    with contextlib.ExitStack() as hooks:
        for recorder in recorders.values():
            hooks.enter_context(recorder)
        for i in tqdm(range(iterations), desc="diagnose: training both networks", unit="it", disable=not progress):
            if i % per_epoch == 0:
                for arm in arms:
                    arm.enter(trainer)
                    trainer.current_epoch = i // per_epoch
                    trainer.on_train_epoch_start()
            if i:
                batch = next(trainer.dataloader_train)
            for arm in arms:
                arm.enter(trainer)
                scale = arm.scale()  # the scale this step's gradients carry, before the scaler updates it
                step = trainer.train_step(batch)
                loss[arm.name].append(float(step["loss"]))
                for group, norm in recorders[arm.name].take(scale).items():
                    norms[arm.name].setdefault(group, []).append(norm)
        trainer.current_epoch = 0
    groups = list(norms["transferred"])
    mean = {g: {a: _mean(norms[a][g]) for a in norms} for g in groups}
    parts = {a: [part_norms({g: norms[a][g][i] for g in groups}) for i in range(iterations)] for a in norms}
    mean_by_part = {p: {a: _mean([row[p] for row in parts[a]]) for a in parts} for p in parts["transferred"][0]}
    return {"iterations": iterations, "iterations_per_epoch": per_epoch, "loss": loss, "norms": norms,
            "mean": mean, "mean_by_part": mean_by_part,
            "norms_by_part": {a: {p: [row[p] for row in parts[a]] for p in mean_by_part} for a in parts}}


def _mean(values: list[float | None]) -> float | None:
    # a None (overflow) makes the mean unknown rather than silently smaller
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) else value


def diagnose(dataset: int | str, plans: str, configuration: str | None = None, fold: int | str = 0,
             trainer: str = DEFAULT_TRAINER, baseline_plans: str | None = None,
             baseline_trainer: str = SCRATCH_TRAINER, iterations: int | None = None, device: str | None = None,
             output: str | Path | None = None, progress: bool = True) -> Diagnosis:
    """Diagnose the start of one fine-tuning run: ``nnUNetv2_train DATASET CONFIGURATION FOLD -tr
    TRAINER -p PLANS`` (PLANS with a ``transfer`` block, as ``attach`` writes them).

    Measures, for the transferred network against the same network freshly initialised: activation
    mean / SD / fraction <= 0 per stage and the head's output distribution and loss on the first
    training batch; gradient norms per stage and part and the loss over the first ``iterations``
    training steps (default: one epoch of the plans' schedule) of each, trained alike. Adds the
    per-epoch curves of the fine-tuning run and of the baseline run (``baseline_trainer`` on
    ``baseline_plans``, default the same plans) where their checkpoints exist, and findings where a
    threshold is clearly crossed. Writes diagnostics.json / .md / .png and the TransferReport into
    ``output`` (default: ``diagnostics/`` in the fine-tuning run's fold folder). ``configuration``
    None: the one a run exists for, else the plans' only one; ``device`` None: cuda if available.

    Returns the Diagnosis. Raises NnunetTransferError for an unknown dataset or trainer, plans
    without a ``transfer`` block, missing preprocessed data, an unwritable output folder, or a
    checkpoint the transfer refuses.
    """
    target = resolve_target(dataset, plans, configuration, fold, trainer)
    if iterations is not None and iterations < 1:
        raise NnunetTransferError(f"--iterations must be at least 1, got {iterations}.")
    torch_device = _device(device)
    run_folder = results_folder(target.dataset, target.trainer, target.plans, target.configuration, target.fold)
    baseline_folder = results_folder(target.dataset, baseline_trainer, baseline_plans or target.plans,
                                     target.configuration, target.fold)
    out = require_writable_folder(output or run_folder / DIAGNOSTICS_FOLDER, "Output folder")

    with tempfile.TemporaryDirectory(prefix="nnunet_transfer_diagnose_") as scratch, \
            nnunet_scratch_environment(scratch):
        result = _measure(target, torch_device, iterations, progress)
    report = result.pop("transfer_report")
    result["curves"] = {"finetune": training_curves(run_folder), "baseline": training_curves(baseline_folder),
                        "finetune_folder": str(run_folder), "baseline_folder": str(baseline_folder)}
    result = finite(result)  # a diverged number (NaN, inf) is None for the findings as in the JSON
    result["findings"] = findings(result)
    return Diagnosis(result, write_outputs(result, report, out))


def _measure(target: Target, device: torch.device, iterations: int | None, progress: bool) -> dict[str, Any]:
    trainer = build_trainer(target, device)
    trainer.initialize()  # seeded from the plans' training seed, as the fine-tuning run was
    fresh_network = copy.deepcopy(trainer.network)
    report = trainer.load_transfer_checkpoint().to_dict()
    try:
        trainer.dataloader_train, trainer.dataloader_val = trainer.get_dataloaders()
        trainer.set_deep_supervision_enabled(trainer.enable_deep_supervision)
        arms = make_arms(trainer, fresh_network)
        batch = next(trainer.dataloader_train)
        loaded = loaded_by_group(report, trainer.network)
        first = first_batch(trainer, arms, batch, loaded)
        gradients = train_both(trainer, arms, batch, iterations or trainer.num_iterations_per_epoch, progress)
    finally:
        shut_down_dataloaders(trainer)
    return {"dataset": target.dataset, "plans": target.plans, "configuration": target.configuration,
            "fold": target.fold, "trainer": target.trainer, "device": str(device), "seed": trainer.seed,
            "checkpoint": target.block.checkpoint, "strategy": _plain(getattr(trainer, "strategy", None)),
            "batch_size": trainer.batch_size, "patch_size": list(trainer.configuration_manager.patch_size),
            "transfer": {"load": report.get("load"), "counts_by_part": report.get("counts_by_part"),
                         "weights_by_group": loaded},
            "first_batch": first, "gradients": gradients, "transfer_report": report}
