"""Trainer lookup module for nnU-Net's ``nnUNet_extTrainer`` search.

nnU-Net imports this file as a top-level module and looks for the requested trainer class name
among its attributes. Only re-exports live here; the trainers themselves are in
``nnunet_transfer.trainers``, named once in ``nnunet_transfer.names.TRAINER_NAMES`` and looked up by
``nnunet_transfer.trainers.registry``.
"""
from nnunet_transfer.trainers.registry import TRAINERS

globals().update(TRAINERS)
