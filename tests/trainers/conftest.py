"""Trainer tests build nnU-Net trainers in-process on the session's tiny planned datasets."""
import os

import pytest

from nnunet_transfer.environment import ext_trainer_value
from tests.conftest import use_folders


@pytest.fixture
def folders(planned_tiny, monkeypatch):
    """nnU-Net pointed at the session's tiny planned datasets, our trainers findable by its lookup."""
    use_folders(monkeypatch, planned_tiny)
    monkeypatch.setenv("nnUNet_extTrainer", ext_trainer_value(os.environ.get("nnUNet_extTrainer")))
    return planned_tiny
