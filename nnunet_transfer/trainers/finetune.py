"""Fine-tuning from the checkpoint named in the plans' ``transfer`` block, one trainer per
strategy, and the from-scratch baseline."""
from __future__ import annotations

from dataclasses import replace
from os.path import join

from nnunet_transfer.io import write_json_atomic
from nnunet_transfer.plans_blocks import TRANSFER_KEY, Strategy, TransferBlock, parse_transfer
from nnunet_transfer.trainers.base import TransferTrainerBase
from nnunet_transfer.trainers.schedule import TransferLRScheduler
from nnunet_transfer.transfer.driver import transfer_from_checkpoint
from nnunet_transfer.transfer.load import canonical_entries, model_part, unwrap_model
from nnunet_transfer.transfer.report import TransferReport

REPORT_FILE = "transfer_report.json"


class nnUNetTrainerFinetune(TransferTrainerBase):
    """Full fine-tuning: load the checkpoint of the plans' ``transfer`` block, then train with
    nnU-Net's loss, augmentation and poly schedule (the from-scratch baseline's schedule).

    The transfer happens once, before the first epoch; ``--c`` resumes from nnU-Net's own
    checkpoint without reloading. The optimizer has two parameter groups (decoder + head,
    encoder) so that every strategy, and a resume in any of its phases, sees the same optimizer
    state. Strategy keys in the block (``warmup_epochs``, ``frozen_encoder_epochs``,
    ``encoder_lr_factor``) override the trainer's defaults.
    """

    strategy_defaults = Strategy()

    def transfer_block(self) -> TransferBlock:
        """The plans' checked ``transfer`` block; NnunetTransferError (saying how to attach one) otherwise."""
        if not hasattr(self, "_transfer_block"):
            pm = self.plans_manager
            self._transfer_block = parse_transfer(
                pm.plans, f"Plans '{pm.plans_name}' of {pm.dataset_name}",
                hint=f"Attach one first: nnunet_transfer attach CHECKPOINT -d {pm.dataset_name} -p {pm.plans_name}")
        return self._transfer_block

    @property
    def strategy(self) -> Strategy:
        if not hasattr(self, "_strategy"):
            defaults = self.strategy_defaults
            if self.schedule.warmup_epochs is not None:  # the schedule's warm-up replaces the trainer's default
                defaults = replace(defaults, warmup_epochs=self.schedule.warmup_epochs)
            self._strategy = self.transfer_block().strategy(defaults, self.num_epochs)
        return self._strategy

    def configure_optimizers(self):
        model = unwrap_model(self.network)
        entries, _ = canonical_entries(model)
        params = {id(p) for p in model.parameters()}
        encoder = [t for n, t in entries.items() if id(t) in params and model_part(model, n) == "encoder"]
        rest = [t for n, t in entries.items() if id(t) in params and model_part(model, n) != "encoder"]
        optimizer = self.make_optimizer([{"params": rest}, {"params": encoder}])
        return optimizer, TransferLRScheduler(optimizer, self.initial_lr, self.num_epochs, self.strategy)

    def on_train_start(self):
        if not self.was_initialized:
            self.initialize()
        if self.current_epoch == 0:
            self.load_transfer_checkpoint()
        self.print_to_log_file(f"Fine-tuning strategy: {self.strategy}")
        super().on_train_start()

    def on_train_epoch_start(self):
        frozen = self.current_epoch < self.strategy.frozen_encoder_epochs
        for p in self.optimizer.param_groups[1]["params"]:
            p.requires_grad_(not frozen)
        if self.strategy.frozen_encoder_epochs and self.current_epoch == self.strategy.frozen_encoder_epochs:
            self.print_to_log_file("Encoder unfrozen.")
        super().on_train_epoch_start()

    def load_transfer_checkpoint(self) -> TransferReport:
        """Load the block's checkpoint into the network (the path ``preview`` shows), write the report
        and return it."""
        block = self.transfer_block()
        report = transfer_from_checkpoint(block.checkpoint, self.network, block.rules,
                                          f"the {self.configuration_name} network of {self.plans_manager.dataset_name}",
                                          target_json=self.dataset_json)
        report.checkpoint_sha256, report.checkpoint_origin = block.checkpoint_sha256, block.checkpoint_origin
        report.target_spacing = [float(x) for x in self.configuration_manager.spacing]
        if self.local_rank == 0:
            write_json_atomic(report.to_dict(), join(self.output_folder, REPORT_FILE))
        self.print_to_log_file(report.summary())
        self.print_to_log_file(f"TransferReport written to {join(self.output_folder, REPORT_FILE)}")
        return report


class nnUNetTrainerFinetuneWarmup(nnUNetTrainerFinetune):
    """Linear learning-rate warm-up for the first ``warmup_epochs`` (default 10), then poly decay."""

    strategy_defaults = Strategy(warmup_epochs=10)


class nnUNetTrainerFinetuneFrozenEncoder(nnUNetTrainerFinetune):
    """Encoder frozen for ``frozen_encoder_epochs`` (default 50), then unfrozen with a warm-up of
    ``warmup_epochs`` (default 10) on the encoder."""

    strategy_defaults = Strategy(warmup_epochs=10, frozen_encoder_epochs=50)


class nnUNetTrainerFinetuneEncoderLR(nnUNetTrainerFinetune):
    """Discriminative learning rate: encoder lr = ``encoder_lr_factor`` (default 0.1) x base lr."""

    strategy_defaults = Strategy(encoder_lr_factor=0.1)


class nnUNetTrainerFromScratch(TransferTrainerBase):
    """The baseline: same plans, architecture and schedule as the fine-tuning trainers, random
    initialisation, nnU-Net's optimizer. A ``transfer`` block in the plans is ignored (and said so
    in the log)."""

    def on_train_start(self):
        if TRANSFER_KEY in self.plans_manager.plans and self.current_epoch == 0:
            self.print_to_log_file("Training from scratch: the plans' 'transfer' block is ignored.")
        super().on_train_start()
