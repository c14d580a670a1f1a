"""Pure weight transfer: safe checkpoint loading, state-dict cleaning, key matching through the
network's declared encoder / stem, tensor adaptations (input channels, 2D->3D inflation, kernel
size) and the TransferReport. Imports torch, never nnU-Net; no I/O besides reading a checkpoint.
``driver.transfer_from_checkpoint`` is the one entry point the trainers and ``preview`` use."""
