"""Segmentation pretraining: nnU-Net's own objective, with a self-describing checkpoint."""
from __future__ import annotations

from nnunet_transfer.trainers.base import TransferTrainerBase
from nnunet_transfer.trainers.metadata import add_metadata_to_checkpoint, build_metadata


class nnUNetTrainerPretrainSegmentation(TransferTrainerBase):
    """Train the shared-plans network on a source segmentation dataset.

    Identical to nnUNetTrainer (loss, augmentation, schedule from ``training_schedule``);
    every checkpoint it writes also carries the ``nnunet_transfer`` block (mode, source dataset,
    domain, channels, normalisation, configuration, architecture, patch size, spacing, versions)
    and loads with ``torch.load(..., weights_only=True)``.
    """

    pretraining_mode = "segmentation"
    pretext = None

    def save_checkpoint(self, filename: str) -> None:
        super().save_checkpoint(filename)
        if self.local_rank == 0 and not self.disable_checkpointing:
            add_metadata_to_checkpoint(filename, build_metadata(self, self.pretraining_mode, self.pretext))
