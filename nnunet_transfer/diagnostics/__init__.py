"""Diagnose a fine-tuning: what the transferred initialisation does to the network at the start of
training, against the same network freshly initialised (``nnunet_transfer diagnose``)."""
from nnunet_transfer.diagnostics.run import Diagnosis, diagnose

__all__ = ["Diagnosis", "diagnose"]
