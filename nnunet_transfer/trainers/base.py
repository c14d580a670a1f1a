"""Base of our trainers: the training schedule travels in the plans, not in trainer names.

Every trainer of ours reads the plans' ``training_schedule`` block
(:class:`nnunet_transfer.plans_blocks.TrainingSchedule`); pretraining trainers also write the
self-describing checkpoint block and read the ``pretraining`` block.
"""
from __future__ import annotations

import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_transfer.io import atomic_path
from nnunet_transfer.names import MODE_SEGMENTATION
from nnunet_transfer.networks.build import build_network, has_deep_supervision
from nnunet_transfer.plans_blocks import SCHEDULE_KEY, Strategy, parse_pretraining, parse_schedule
from nnunet_transfer.trainers.schedule import TransferLRScheduler
from nnunet_transfer.trainers.metadata import add_metadata_to_checkpoint, build_metadata
from nnunet_transfer.trainers.seeding import (TRAIN_LOADER, VALIDATION_LOADER, epoch_entropy, seed_everything,
                                              worker_seeds)


class TransferTrainerBase(nnUNetTrainer):
    """nnUNetTrainer whose schedule comes from the plans' ``training_schedule`` block, seeded
    from its ``seed`` (:mod:`nnunet_transfer.trainers.seeding`).

    ``final_validation``: ``auto`` skips nnU-Net's final validation for fold ``all`` (its
    "validation" cases are its training cases, so the pass costs time and measures nothing),
    ``always`` keeps it, ``never`` skips it for every fold.

    The optimizer recipe (``optimizer``, ``weight_decay``, ``grad_clip``, ``warmup_epochs``) comes from
    the same block. Networks without deep supervision (a Primus) are built from the plans'
    architecture block at the patch size and trained without it.
    """

    ADAMW_BETAS = (0.9, 0.98)  # nnU-Net's and nnssl's Primus trainers

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        schedule = parse_schedule(self.plans_manager.plans.get(SCHEDULE_KEY) or {},
                                  f"plans '{self.plans_manager.plans_name}'")
        for key, value in schedule.trainer_settings().items():
            setattr(self, key, value)
        self.final_validation = schedule.final_validation or "auto"
        self.train_subset = schedule.train_subset
        self.seed = schedule.training_seed
        self.schedule = schedule
        if not has_deep_supervision(self.configuration_manager.configuration["architecture"]):
            self.enable_deep_supervision = False

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> nn.Module:
        return build_network(configuration_manager.configuration["architecture"], configuration_manager.patch_size,
                             num_input_channels, num_output_channels, enable_deep_supervision)

    def set_deep_supervision_enabled(self, enabled: bool):
        if has_deep_supervision(self.configuration_manager.configuration["architecture"]):
            super().set_deep_supervision_enabled(enabled)

    def make_optimizer(self, param_groups: list[dict]) -> torch.optim.Optimizer:
        """The schedule's optimizer over ``param_groups``, gradient-norm clipping at ``grad_clip``
        before every step (after nnU-Net's own at 12: clipping to the smaller norm is what remains)."""
        if self.schedule.optimizer == "adamw":
            optimizer = torch.optim.AdamW(param_groups, self.initial_lr, weight_decay=self.weight_decay,
                                          betas=self.ADAMW_BETAS)
        else:
            optimizer = torch.optim.SGD(param_groups, self.initial_lr, weight_decay=self.weight_decay, momentum=0.99,
                                        nesterov=True)
        if self.schedule.grad_clip is not None:
            limit = self.schedule.grad_clip

            def clip(opt, args, kwargs):
                torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], limit)
            optimizer.register_step_pre_hook(clip)
        return optimizer

    @property
    def warmup_epochs(self) -> int:
        """The schedule's warm-up (0 when unset): every strategy's default."""
        return self.schedule.warmup_epochs or 0

    def configure_optimizers(self):
        optimizer = self.make_optimizer([{"params": list(self.network.parameters())}])
        return optimizer, TransferLRScheduler(optimizer, self.initial_lr, self.num_epochs,
                                              Strategy(warmup_epochs=self.warmup_epochs))

    def initialize(self):
        if not self.was_initialized:  # the network's initial weights: the same on every DDP rank
            seed_everything([self.seed])
        super().initialize()

    def on_train_start(self):
        super().on_train_start()
        self.print_to_log_file(f"Training seed {self.seed} (training_schedule.seed)")

    def on_epoch_start(self):
        seed_everything(epoch_entropy(self.seed, self.current_epoch, self.local_rank))
        super().on_epoch_start()

    def get_dataloaders(self):
        """nnU-Net's loaders; augmentation workers restarted with their own seeds (nnU-Net starts them
        unseeded: numpy from the operating system, torch inherited from this process)."""
        train, validation = super().get_dataloaders()
        restart = [(loader, which) for loader, which in ((train, TRAIN_LOADER), (validation, VALIDATION_LOADER))
                   if isinstance(loader, NonDetMultiThreadedAugmenter)]
        for loader, which in restart:
            loader._finish()
            loader.seeds = worker_seeds(self.seed, which, loader.num_processes, self.local_rank)
        if restart:
            self.before_workers_restart()
        for loader, _ in restart:
            loader._start()
        return train, validation

    def before_workers_restart(self) -> None:
        """Called after nnU-Net's first augmentation workers ended and before the seeded ones start."""

    def do_split(self):
        """nnU-Net's split; with ``training_schedule.train_subset`` the fold trains on the listed cases
        only (each must be one of the fold's training cases), and validates on its usual cases."""
        train, validation = super().do_split()
        if self.train_subset is None:
            return train, validation
        where = f"training_schedule.train_subset of plans '{self.plans_manager.plans_name}'"
        cases = self.train_subset.get(str(self.fold))
        if cases is None:
            raise RuntimeError(f"{where} has no subset for fold {self.fold} (folds: {', '.join(self.train_subset)})")
        outside = sorted(set(cases) - set(train))
        if outside:
            raise RuntimeError(f"{where}: case(s) {', '.join(outside[:5])} are not training cases of fold "
                               f"{self.fold} in nnU-Net's split")
        self.print_to_log_file(f"Training on {len(cases)} of the fold's {len(train)} training cases "
                               f"(training_schedule.train_subset): {', '.join(cases)}")
        return list(cases), validation

    def perform_actual_validation(self, save_probabilities: bool = False):
        skip = self.final_validation == "never" or (self.final_validation == "auto" and self.fold == "all")
        if skip:
            self.print_to_log_file(
                f"Final validation skipped (training_schedule.final_validation={self.final_validation}, "
                f"fold={self.fold}): fold 'all' has no held-out cases.")
            return
        super().perform_actual_validation(save_probabilities)

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint, written beside ``filename`` and renamed: a training stopped at any
        moment (a cluster job at its time limit, a full disk) leaves the previous checkpoint whole,
        never half of a new one that ``--c`` would fail on."""
        if self.local_rank != 0 or self.disable_checkpointing:
            super().save_checkpoint(filename)  # writes nothing (or logs that it does not)
            return
        with atomic_path(filename) as tmp:
            super().save_checkpoint(str(tmp))


class PretrainingTrainerBase(TransferTrainerBase):
    """What every pretraining trainer shares: self-describing checkpoints (the ``nnunet_transfer``
    block, loadable with ``weights_only=True``), its settings from the plans' ``pretraining`` block,
    and replacing nnU-Net's U-Net by a network with a pretraining head."""

    pretraining_mode = MODE_SEGMENTATION
    pretext_name: str | None = None

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        if not has_deep_supervision(self.configuration_manager.configuration["architecture"]):
            raise RuntimeError(f"{type(self).__name__} pretrains nnU-Net's U-Nets; plans "
                               f"'{self.plans_manager.plans_name}' configure a "
                               f"{self.configuration_manager.network_arch_class_name}. Pretrain transformers with "
                               f"nnssl and fine-tune their checkpoints here.")
        self.pretraining_settings = parse_pretraining(self.plans_manager.plans,
                                                      f"plans '{self.plans_manager.plans_name}'")

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
