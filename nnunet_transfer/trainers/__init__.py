"""nnU-Net trainer classes, thin subclasses that wire ``transfer``, ``pretext`` and the heads into
nnU-Net's seams; stock ``nnUNetv2_train`` / ``nnUNetv2_predict`` find them through
``nnUNet_extTrainer`` (the names are in ``nnunet_transfer.names``; ``registry`` derives name -> class)."""
