"""Fine-tuning from a checkpoint named in the plans' ``transfer`` block, and the scratch baseline."""
from __future__ import annotations

from os.path import join

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import write_json_atomic
from nnunet_transfer.trainers.base import TransferTrainerBase
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, extract_state_dict, load_checkpoint
from nnunet_transfer.transfer.compat import check_compatible
from nnunet_transfer.transfer.load import transfer_weights

TRANSFER_KEY = "transfer"
REPORT_FILE = "transfer_report.json"


class nnUNetTrainerFinetune(TransferTrainerBase):
    """Full fine-tuning: load the checkpoint of the plans' ``transfer`` block, then train as
    nnU-Net does (same loss, augmentation and schedule as the from-scratch baseline).

    The transfer happens once, before the first epoch; ``--c`` resumes from nnU-Net's own
    checkpoint without reloading. The TransferReport is written to
    ``fold_X/transfer_report.json`` and summarised in the training log.
    """

    def on_train_start(self):
        if not self.was_initialized:
            self.initialize()
        if self.current_epoch == 0:
            self.load_transfer_checkpoint()
        super().on_train_start()

    def transfer_block(self) -> dict:
        block = self.plans_manager.plans.get(TRANSFER_KEY)
        if not isinstance(block, dict) or "checkpoint" not in block:
            raise NnunetTransferError(
                f"Plans '{self.plans_manager.plans_name}' of {self.plans_manager.dataset_name} have no "
                f"'{TRANSFER_KEY}' block naming a checkpoint. Attach one first: nnunet_transfer attach "
                f"CHECKPOINT -d {self.plans_manager.dataset_name} -p {self.plans_manager.plans_name}")
        return block

    def load_transfer_checkpoint(self) -> None:
        block = self.transfer_block()
        checkpoint = load_checkpoint(block["checkpoint"])
        source = extract_state_dict(checkpoint)
        check_compatible(source, self.network, f"Checkpoint {block['checkpoint']}",
                         f"the {self.configuration_name} network of {self.plans_manager.dataset_name}")
        report = transfer_weights(source, self.network, load=block.get("load", "encoder+decoder"),
                                  strict=bool(block.get("strict", False)))
        report.checkpoint = str(block["checkpoint"])
        report.source_metadata = checkpoint_metadata(checkpoint)
        if self.local_rank == 0:
            write_json_atomic(report.to_dict(), join(self.output_folder, REPORT_FILE))
        self.print_to_log_file(report.summary())
        self.print_to_log_file(f"TransferReport written to {join(self.output_folder, REPORT_FILE)}")


class nnUNetTrainerFromScratch(TransferTrainerBase):
    """The baseline: same plans, architecture and schedule as the fine-tuning trainers, random
    initialisation. A ``transfer`` block in the plans is ignored (and said so in the log)."""

    def on_train_start(self):
        if TRANSFER_KEY in self.plans_manager.plans and self.current_epoch == 0:
            self.print_to_log_file("Training from scratch: the plans' 'transfer' block is ignored.")
        super().on_train_start()
