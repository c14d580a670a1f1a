"""Every trainer nnU-Net can find through ``nnUNet_extTrainer``: add new trainers here."""
from nnunet_transfer.trainers.finetune import (nnUNetTrainerFinetune, nnUNetTrainerFinetuneEncoderLR,
                                               nnUNetTrainerFinetuneFrozenEncoder, nnUNetTrainerFinetuneWarmup,
                                               nnUNetTrainerFromScratch)
from nnunet_transfer.trainers.pretrain_classification import nnUNetTrainerPretrainClassification
from nnunet_transfer.trainers.pretrain_segmentation import nnUNetTrainerPretrainSegmentation
from nnunet_transfer.trainers.pretrain_ssl import (nnUNetTrainerPretrainContextRestoration,
                                                   nnUNetTrainerPretrainMaskedImageModeling,
                                                   nnUNetTrainerPretrainModelsGenesis, nnUNetTrainerPretrainRotation,
                                                   nnUNetTrainerPretrainSimCLR)

TRAINERS = {cls.__name__: cls for cls in (
    nnUNetTrainerPretrainSegmentation,
    nnUNetTrainerPretrainClassification,
    nnUNetTrainerPretrainModelsGenesis,
    nnUNetTrainerPretrainContextRestoration,
    nnUNetTrainerPretrainMaskedImageModeling,
    nnUNetTrainerPretrainRotation,
    nnUNetTrainerPretrainSimCLR,
    nnUNetTrainerFinetune,
    nnUNetTrainerFinetuneWarmup,
    nnUNetTrainerFinetuneFrozenEncoder,
    nnUNetTrainerFinetuneEncoderLR,
    nnUNetTrainerFromScratch,
)}
