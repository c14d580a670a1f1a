"""Base of our trainers: the training schedule travels in the plans, not in trainer names.

Plans key ``training_schedule`` (all fields optional, nnU-Net's defaults otherwise)::

    "training_schedule": {"num_epochs": 1000, "num_iterations_per_epoch": 250,
                          "num_val_iterations_per_epoch": 50, "initial_lr": 0.01,
                          "save_every": 50, "final_validation": "auto"}

``final_validation``: ``auto`` skips nnU-Net's final sliding-window validation for fold ``all``
(its "validation" cases are the training cases, so the pass costs time and measures nothing),
``always`` keeps it, ``never`` skips it for every fold.
"""
from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.trainers.metadata import add_metadata_to_checkpoint, build_metadata

SCHEDULE_KEY = "training_schedule"
SCHEDULE_FIELDS = {
    "num_epochs": int,
    "num_iterations_per_epoch": int,
    "num_val_iterations_per_epoch": int,
    "initial_lr": float,
    "save_every": int,
}
FINAL_VALIDATION = ("auto", "always", "never")


def validate_schedule(schedule: dict, where: str = "plans") -> dict:
    """Check a ``training_schedule`` block; return it with numbers converted.

    Raises NnunetTransferError naming the key for unknown keys, wrong types or values < 1.
    """
    if not isinstance(schedule, dict):
        raise NnunetTransferError(f"'{SCHEDULE_KEY}' in {where} must be a JSON object.")
    out = {}
    for key, value in schedule.items():
        if key == "final_validation":
            if value not in FINAL_VALIDATION:
                raise NnunetTransferError(f"'{SCHEDULE_KEY}.final_validation' in {where} is {value!r}; "
                                          f"use one of {', '.join(FINAL_VALIDATION)}.")
            out[key] = value
            continue
        if key not in SCHEDULE_FIELDS:
            raise NnunetTransferError(f"Unknown key '{SCHEDULE_KEY}.{key}' in {where}; known: "
                                      f"{', '.join(list(SCHEDULE_FIELDS) + ['final_validation'])}.")
        kind = SCHEDULE_FIELDS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise NnunetTransferError(f"'{SCHEDULE_KEY}.{key}' in {where} must be {kind.__name__}, got {value!r}.")
        if value <= 0 or (key == "num_val_iterations_per_epoch" and value < 1):
            raise NnunetTransferError(f"'{SCHEDULE_KEY}.{key}' in {where} must be positive, got {value!r}.")
        out[key] = kind(value)
    return out


class TransferTrainerBase(nnUNetTrainer):
    """nnUNetTrainer whose schedule comes from the plans' ``training_schedule`` block."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        schedule = validate_schedule(self.plans_manager.plans.get(SCHEDULE_KEY, {}),
                                     f"plans '{self.plans_manager.plans_name}'")
        for key in SCHEDULE_FIELDS:
            if key in schedule:
                setattr(self, key, schedule[key])
        self.final_validation = schedule.get("final_validation", "auto")

    def perform_actual_validation(self, save_probabilities: bool = False):
        skip = self.final_validation == "never" or (self.final_validation == "auto" and self.fold == "all")
        if skip:
            self.print_to_log_file(
                f"Final validation skipped (training_schedule.final_validation={self.final_validation}, "
                f"fold={self.fold}): fold 'all' has no held-out cases.")
            return
        super().perform_actual_validation(save_probabilities)


PRETRAINING_KEY = "pretraining"  # plans key with the settings of a pretraining mode


class PretrainingTrainerBase(TransferTrainerBase):
    """What every pretraining trainer shares: self-describing checkpoints (the ``nnunet_transfer``
    block, loadable with ``weights_only=True``), its settings from the plans' ``pretraining`` block,
    and replacing nnU-Net's U-Net by a network with a pretraining head."""

    pretraining_mode = "segmentation"
    pretext_name: str | None = None

    @property
    def pretraining_settings(self) -> dict:
        return dict(self.plans_manager.plans.get(PRETRAINING_KEY) or {})

    def checkpoint_metadata(self) -> dict:
        return build_metadata(self, self.pretraining_mode, self.pretext_name)

    def save_checkpoint(self, filename: str) -> None:
        super().save_checkpoint(filename)
        if self.local_rank == 0 and not self.disable_checkpointing:
            add_metadata_to_checkpoint(filename, self.checkpoint_metadata())

    def replace_network(self, network: torch.nn.Module) -> None:
        """Use ``network`` (built around the initialised U-Net) and rebuild the optimizer for it."""
        self.network = network.to(self.device)
        self.optimizer, self.lr_scheduler = self.configure_optimizers()
