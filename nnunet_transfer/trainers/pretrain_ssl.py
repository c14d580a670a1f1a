"""Self-supervised pretraining trainers: one small subclass per pretext of ``nnunet_transfer.pretext``.

Reconstruction pretexts (Models Genesis, context restoration, masked image modelling) train the
whole U-Net with as many outputs as input channels and a mean-squared-error loss; rotation
prediction trains a 4-way head on the pooled bottleneck; SimCLR a projection head with NT-Xent.
Settings come from the plans key ``pretraining`` (``seed``, and ``pretext`` parameters by name).
The training corruption runs per sample in nnU-Net's data-augmentation workers, as the last
training transform (:mod:`nnunet_transfer.trainers.pretext_transform`); the training process only
runs the network. Validation corrupts its batches in the training process, every epoch with the
same seed, so the validation loss of two epochs is comparable; it is logged as negative "pseudo
dice", so nnU-Net's best checkpoint is the lowest loss. There is no segmentation export at the end.
"""
from __future__ import annotations

import multiprocessing

import torch
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.names import MODE_SELF_SUPERVISED
from nnunet_transfer.pretext import PRETEXT_CLASSES, nt_xent
from nnunet_transfer.trainers.base import PretrainingTrainerBase
from nnunet_transfer.trainers.heads import EncoderClassifier
from nnunet_transfer.trainers.pretext_transform import (CLASSIFICATION, RECONSTRUCTION, VIEWS, PretextTransform,
                                                        reconstruction_target)
from nnunet_transfer.transfer.load import unwrap_model


class MaskedMSE(nn.Module):
    """MSE over the voxels where the mask (last ``C`` channels of the target) is set, else everywhere."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape[1] == 2 * output.shape[1]:
            image, mask = target.split(output.shape[1], dim=1)
            mask = mask > 0.5
            return ((output - image) ** 2)[mask].mean() if mask.any() else output.sum() * 0
        return nn.functional.mse_loss(output, target)


class SelfSupervisedTrainerBase(PretrainingTrainerBase):
    """Shared wiring: the pretext from the plans, its transform in the augmentation workers, the
    pretext-loss validation."""

    pretraining_mode = MODE_SELF_SUPERVISED
    transform_output = RECONSTRUCTION  # what the transform makes of a sample (pretext_transform)

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = False
        settings = self.pretraining_settings
        seed = self.seed if settings.seed is None else settings.seed  # pretext streams: the training seed by default
        try:
            self.pretext = PRETEXT_CLASSES[self.pretext_name](**getattr(settings, self.pretext_name))
        except TypeError as e:
            raise NnunetTransferError(f"pretraining.{self.pretext_name} in the plans: {e}") from None
        self.val_seed = int(seed) + 1
        # its epoch and worker counter are shared with the augmentation workers (streams reseeded per
        # epoch); -1 until the first epoch starts. DDP: each rank's workers have their own streams
        self.pretext_transform = PretextTransform(self.pretext, int(seed), self.transform_output,
                                                  multiprocessing.Value("i", -1), multiprocessing.Value("i", 0),
                                                  rank=self.local_rank)

    def get_training_transforms(self, *args, **kwargs) -> ComposeTransforms:
        """nnU-Net's training transforms, then the pretext corruption (in the workers)."""
        stock = nnUNetTrainer.get_training_transforms(*args, **kwargs)
        return ComposeTransforms([*stock.transforms, self.pretext_transform])

    def before_workers_restart(self) -> None:
        """The seeded workers take worker indices 0, 1, ... again (nnU-Net's first ones have ended)."""
        with self.pretext_transform.workers.get_lock():
            self.pretext_transform.workers.value = 0

    def on_train_epoch_start(self):
        self.pretext_transform.epoch.value = self.current_epoch
        super().on_train_epoch_start()

    def corrupt(self, batch: dict, generator: torch.Generator) -> dict:
        """The batch with the pretext's input as data and its target (image or class indices)."""
        out = self.pretext(batch["data"].float(), generator)
        return dict(batch, data=out.input, target=out.target)

    def validation_step(self, batch: dict) -> dict:
        batch = self.corrupt(batch, torch.Generator().manual_seed(self.val_seed))
        with torch.no_grad():
            output = self.network(batch["data"].to(self.device))
            loss = self.loss(output, batch["target"].to(self.device))
        return {"loss": float(loss)}

    def on_validation_epoch_end(self, val_outputs: list[dict]):
        loss = float(sum(o["loss"] for o in val_outputs) / max(1, len(val_outputs)))
        self.logger.log("val_losses", loss, self.current_epoch)
        self.logger.log("mean_fg_dice", -loss, self.current_epoch)
        self.logger.log("dice_per_class_or_region", [-loss], self.current_epoch)
        self.print_to_log_file(f"pretext ({self.pretext_name}) validation loss {loss:.5f}")

    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file("Self-supervised pretraining: no segmentation validation.")


class ReconstructionTrainerBase(SelfSupervisedTrainerBase):
    """The whole U-Net restores the image: as many outputs as input channels, MSE loss."""

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        return nnUNetTrainer.build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                        num_input_channels, enable_deep_supervision)

    def initialize(self):
        super().initialize()
        self.loss = MaskedMSE()

    def corrupt(self, batch: dict, generator: torch.Generator) -> dict:
        out = self.pretext(batch["data"].float(), generator)
        return dict(batch, data=out.input, target=reconstruction_target(out))


class nnUNetTrainerPretrainModelsGenesis(ReconstructionTrainerBase):
    """Models Genesis (Zhou et al. 2019/2021): restore the image from its combined corruptions."""

    pretext_name = "models_genesis"


class nnUNetTrainerPretrainContextRestoration(ReconstructionTrainerBase):
    """Context restoration (Chen et al. 2019): restore the image after patch swaps."""

    pretext_name = "context_restoration"


class nnUNetTrainerPretrainMaskedImageModeling(ReconstructionTrainerBase):
    """Masked image modelling (SimMIM / MAE style): restore masked blocks, loss on them only."""

    pretext_name = "masked_image_modeling"


class nnUNetTrainerPretrainRotation(SelfSupervisedTrainerBase):
    """Rotation prediction (Gidaris et al. 2018): 4-way head on the pooled bottleneck."""

    pretext_name = "rotation"
    transform_output = CLASSIFICATION

    def initialize(self):
        super().initialize()
        self.replace_network(EncoderClassifier(unwrap_model(self.network), 4))
        self.loss = nn.CrossEntropyLoss()


class ProjectionNetwork(EncoderClassifier):
    """Pooled bottleneck -> MLP projection head (SimCLR); the head is never transferred."""

    def __init__(self, unet: nn.Module, dim: int = 128):
        super().__init__(unet, dim)
        width = self.classification_head.in_features
        del self.classification_head
        self.projection_head = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.pooled_features(x))


class NTXentLoss(nn.Module):
    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z1, z2 = output.chunk(2)
        return nt_xent(z1, z2, self.temperature)


class nnUNetTrainerPretrainSimCLR(SelfSupervisedTrainerBase):
    """SimCLR (Chen et al. 2020): two views per patch, projection head, NT-Xent loss."""

    pretext_name = "simclr"
    transform_output = VIEWS

    def train_step(self, batch: dict) -> dict:
        """The workers stack each patch's two views, ``(B, 2, C, ...)``: all first views, then all
        second views, as NT-Xent pairs them."""
        views = batch["data"]
        return super().train_step(dict(batch, data=torch.cat([views[:, 0], views[:, 1]])))

    def initialize(self):
        super().initialize()
        self.replace_network(ProjectionNetwork(unwrap_model(self.network)))
        self.loss = NTXentLoss(self.pretraining_settings.temperature)
