"""nnU-Net trainer classes; stock ``nnUNetv2_train`` finds them through ``nnUNet_extTrainer``."""
