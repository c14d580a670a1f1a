"""The fine-tuning trainer as ``nnUNetv2_train`` builds it, set up for a diagnosis.

The trainer is looked up and constructed by nnU-Net's own ``get_trainer_from_args`` (our trainers
found through ``nnUNet_extTrainer``), with ``nnUNet_results`` pointed at a scratch folder while it
exists: nnU-Net's trainer writes a log, the TransferReport and (with W&B enabled) deletes a ``wandb``
folder in its output folder, and a diagnosis must leave the real run's folder as it was.
"""
from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nnunet_transfer.environment import ext_trainer_value, temporary_environment
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from nnunet_transfer.layout import existing_plans, model_folder, plans_path, preprocessed_dir, resolve_dataset
from nnunet_transfer.plans_blocks import TransferBlock, parse_transfer


@dataclass(frozen=True)
class Target:
    """One fine-tuning run, checked: dataset name, plans, configuration, fold, trainer, its block."""

    dataset: str
    plans: str
    configuration: str
    fold: int | str
    trainer: str
    block: TransferBlock


def parse_fold(fold: int | str) -> int | str:
    """``all`` or a fold number, as ``nnUNetv2_train`` takes it; NnunetTransferError otherwise."""
    if str(fold) == "all":
        return "all"
    try:
        return int(fold)
    except ValueError:
        raise NnunetTransferError(f"Fold {fold!r} is neither a number nor 'all'.") from None


def _configuration(name: str, plans_name: str, plans: dict, trainer: str, configuration: str | None) -> str:
    available = list(plans.get("configurations") or {})
    if configuration is not None:
        if configuration not in available:
            raise NnunetTransferError(f"Plans '{plans_name}' of {name} have no configuration {configuration!r} "
                                      f"(available: {', '.join(available) or 'none'}).")
        return configuration
    # the run that exists says which configuration was fine-tuned; else the plans' only one
    trained = [c for c in available if model_folder(name, trainer, plans_name, c).is_dir()]
    for candidates in (trained, available):
        if len(candidates) == 1:
            return candidates[0]
    raise NnunetTransferError(f"Plans '{plans_name}' of {name} have configurations {', '.join(available)}: pass "
                              f"-c CONFIGURATION.")


def resolve_target(dataset: int | str, plans: str, configuration: str | None, fold: int | str,
                   trainer: str) -> Target:
    """Check what ``nnUNetv2_train DATASET CONFIGURATION FOLD -tr TRAINER -p PLANS`` needs before
    anything is built: the dataset, the plans with a ``transfer`` block, the configuration (when
    None: the one a run of ``trainer`` exists for, else the plans' only one) and its preprocessed
    data. Raises NnunetTransferError naming what is missing and what to run."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    name = resolve_dataset(dataset)
    path = plans_path(name, plans)
    if not path.is_file():
        raise NnunetTransferError(f"Plans '{plans}' of {name} do not exist ({path}; plans there: "
                                  f"{', '.join(existing_plans(name)) or 'none'}). Pass the plans that "
                                  f"'nnunet_transfer attach' wrote.")
    content = read_json(path)
    block = parse_transfer(content, f"Plans '{plans}' of {name}",
                           hint=f"Diagnose a fine-tuning: attach a checkpoint first (nnunet_transfer attach CHECKPOINT "
                                f"-d {name} -p {plans}) and pass the plans it writes.")
    cfg = _configuration(name, plans, content, trainer, configuration)
    data = preprocessed_dir(name) / PlansManager(content).get_configuration(cfg).data_identifier
    if not data.is_dir() or not any(data.iterdir()):
        raise NnunetTransferError(f"The preprocessed data of {name} for configuration {cfg} are missing ({data}): "
                                  f"run nnUNetv2_preprocess -d {name} -plans_name {plans} -c {cfg} (or nnunet_transfer "
                                  f"plan) first.")
    return Target(name, plans, cfg, parse_fold(fold), trainer, block)


@contextlib.contextmanager
def nnunet_scratch_environment(scratch: str | Path) -> Iterator[None]:
    """nnU-Net's environment for a trainer that only diagnoses: results in ``scratch``, our trainers
    findable, no torch.compile (forward hooks must see the plain modules), no W&B; restored after."""
    changes = {"nnUNet_results": str(scratch), "nnUNet_compile": "false", "nnUNet_wandb_enabled": "0",
               "nnUNet_extTrainer": ext_trainer_value(os.environ.get("nnUNet_extTrainer"))}
    with temporary_environment(changes):
        yield


def build_trainer(target: Target, device: torch.device) -> Any:
    """The trainer ``nnUNetv2_train`` would construct (nnU-Net's lookup and construction), not yet
    initialised; call inside :func:`nnunet_scratch_environment`. Raises NnunetTransferError for a
    trainer nnU-Net cannot find or one that does not fine-tune from the ``transfer`` block."""
    from nnunetv2.run.run_training import get_trainer_from_args

    try:
        trainer = get_trainer_from_args(target.dataset, target.configuration, target.fold, target.trainer,
                                        target.plans, device=device)
    except RuntimeError as e:
        if "Could not find requested nnunet trainer" not in str(e):
            raise
        raise NnunetTransferError(f"Unknown trainer {target.trainer!r}: nnU-Net finds no such class (nor in "
                                  f"nnUNet_extTrainer). Use a fine-tuning trainer, e.g. nnUNetTrainerFinetune."
                                  ) from None
    except AssertionError as e:
        if "must inherit from 'nnUNetTrainer'" not in str(e):
            raise
        raise NnunetTransferError(f"{target.trainer} is not an nnU-Net trainer (no subclass of nnUNetTrainer)."
                                  ) from None
    if not callable(getattr(trainer, "load_transfer_checkpoint", None)):
        raise NnunetTransferError(f"{target.trainer} does not fine-tune from the plans' transfer block (it has no "
                                  f"load_transfer_checkpoint): diagnose a fine-tuning trainer such as "
                                  f"nnUNetTrainerFinetune.")
    return trainer


@dataclass
class Arm:
    """One network trained by the trainer's own ``train_step``, with its own optimizer, learning-rate
    scheduler, grad scaler and logger, so two arms can share one trainer without sharing state."""

    name: str
    network: torch.nn.Module
    optimizer: Any
    lr_scheduler: Any
    grad_scaler: Any
    logger: Any

    def enter(self, trainer: Any) -> None:
        """Make this arm the trainer's network, optimizer, scheduler, scaler and logger."""
        trainer.network, trainer.optimizer, trainer.lr_scheduler = self.network, self.optimizer, self.lr_scheduler
        trainer.grad_scaler, trainer.logger = self.grad_scaler, self.logger

    def scale(self) -> float:
        """The grad scaler's current scale (1 without mixed precision)."""
        return float(self.grad_scaler.get_scale()) if self.grad_scaler is not None else 1.0


def make_arms(trainer: Any, fresh_network: torch.nn.Module) -> tuple[Arm, Arm]:
    """The transferred arm (the trainer's initialised network, optimizer and scheduler after the
    transfer) and the fresh arm (``fresh_network`` with an optimizer and scheduler the trainer's own
    ``configure_optimizers`` builds for it); each gets an unused copy of the grad scaler and logger."""
    saved = (copy.deepcopy(trainer.grad_scaler), copy.deepcopy(trainer.logger))
    transferred = Arm("transferred", trainer.network, trainer.optimizer, trainer.lr_scheduler,
                      copy.deepcopy(saved[0]), copy.deepcopy(saved[1]))
    trainer.network = fresh_network
    optimizer, scheduler = trainer.configure_optimizers()
    fresh = Arm("fresh", fresh_network, optimizer, scheduler, *saved)
    transferred.enter(trainer)
    return transferred, fresh


def shut_down_dataloaders(trainer: Any) -> None:
    """Stop the trainer's background augmentation workers, if any (what ``on_train_end`` does)."""
    for loader in (trainer.dataloader_train, trainer.dataloader_val):
        finish = getattr(loader, "_finish", None)
        if callable(finish):
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                finish()


def class_names(trainer: Any) -> list[str]:
    """Names of the head's output channels: labels by value, or the regions in dataset.json order."""
    labels = trainer.dataset_json.get("labels", {})
    if trainer.label_manager.has_regions:
        return [k for k in labels if k not in ("background", "ignore")]
    by_value = {v: k for k, v in labels.items() if isinstance(v, int)}
    return [by_value.get(c, str(c)) for c in range(trainer.label_manager.num_segmentation_heads)]
