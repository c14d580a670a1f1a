import numpy as np
import pytest
import torch

from nnunet_transfer.diagnostics.curves import training_curves
from nnunet_transfer.errors import NnunetTransferError


def _save(path, logging):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network_weights": {}, "logging": logging, "current_epoch": 3}, path)


def test_curves_from_nnunet_logging_with_numpy_numbers(tmp_path):
    # nnU-Net logs numpy scalars; the checkpoint still loads weights_only
    logging = {"train_losses": [np.float32(0.5), np.float32(0.25)], "val_losses": [0.4, float("nan")],
               "mean_fg_dice": [np.float64(0.1), 0.2], "ema_fg_dice": [0.1, 0.11], "lrs": [0.01, 0.009]}
    _save(tmp_path / "checkpoint_final.pth", logging)
    _save(tmp_path / "checkpoint_latest.pth", {"train_losses": [9.0]})  # a finished run's final one wins
    curves = training_curves(tmp_path)
    assert curves["finished"] and curves["epochs"] == 2 and curves["checkpoint"].endswith("checkpoint_final.pth")
    assert curves["train_losses"] == [0.5, 0.25] and curves["val_losses"] == [0.4, None]
    assert curves["ema_fg_dice"] == [0.1, 0.11] and "lrs" not in curves


def test_a_run_in_progress_keeps_whole_epochs(tmp_path):
    _save(tmp_path / "checkpoint_latest.pth", {"train_losses": [0.5, 0.4, 0.3], "val_losses": [0.5, 0.4],
                                               "mean_fg_dice": [0.1, 0.2], "ema_fg_dice": [0.1, 0.11]})
    curves = training_curves(tmp_path)
    assert not curves["finished"] and curves["epochs"] == 2 and curves["train_losses"] == [0.5, 0.4]


def test_no_checkpoint_means_no_curves(tmp_path):
    assert training_curves(tmp_path / "missing") is None


def test_a_broken_checkpoint_is_one_error(tmp_path):
    (tmp_path / "checkpoint_final.pth").write_text("not a checkpoint")
    with pytest.raises(NnunetTransferError, match="not a torch checkpoint"):
        training_curves(tmp_path)
