"""nnunet_transfer: pretraining, weight transfer and fine-tuning studies on top of nnU-Net v2."""

__version__ = "0.1.0"
