"""Every trainer nnU-Net can find through ``nnUNet_extTrainer``: add new trainers here."""
from nnunet_transfer.trainers.finetune import (nnUNetTrainerFinetune, nnUNetTrainerFinetuneEncoderLR,
                                               nnUNetTrainerFinetuneFrozenEncoder, nnUNetTrainerFinetuneWarmup,
                                               nnUNetTrainerFromScratch)
from nnunet_transfer.trainers.pretrain_segmentation import nnUNetTrainerPretrainSegmentation

TRAINERS = {cls.__name__: cls for cls in (
    nnUNetTrainerPretrainSegmentation,
    nnUNetTrainerFinetune,
    nnUNetTrainerFinetuneWarmup,
    nnUNetTrainerFinetuneFrozenEncoder,
    nnUNetTrainerFinetuneEncoderLR,
    nnUNetTrainerFromScratch,
)}
