"""Segmentation pretraining: nnU-Net's own objective, with a self-describing checkpoint."""
from __future__ import annotations

from nnunet_transfer.trainers.base import PretrainingTrainerBase


class nnUNetTrainerPretrainSegmentation(PretrainingTrainerBase):
    """Train the shared-plans network on a source segmentation dataset.

    Identical to nnUNetTrainer (loss, augmentation, schedule from ``training_schedule``);
    every checkpoint it writes also carries the ``nnunet_transfer`` block (mode, source dataset,
    domain, channels, normalisation, configuration, architecture, patch size, spacing, versions)
    and loads with ``torch.load(..., weights_only=True)``.
    """

    pretraining_mode = "segmentation"
