"""Per-epoch curves of a training run from nnU-Net's own ``logging`` in its checkpoint."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nnunet_transfer.layout import CHECKPOINT_FINAL, CHECKPOINT_LATEST
from nnunet_transfer.transfer.checkpoint import load_checkpoint

# nnU-Net's LocalLogger keys we plot: training / validation loss, pseudo-Dice and its moving average
CURVE_KEYS = ("train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def training_curves(fold_folder: str | Path) -> dict[str, Any] | None:
    """The curves of the run in ``fold_folder`` (nnU-Net's ``fold_<f>``): from
    ``checkpoint_final.pth`` (a finished run) or else ``checkpoint_latest.pth`` (one in progress),
    loaded safely on the CPU. Returns ``{"checkpoint", "finished", "epochs", <CURVE_KEYS>: [float |
    None per epoch]}``, or None when the folder holds neither checkpoint. Raises
    NnunetTransferError when the checkpoint cannot be read."""
    folder = Path(fold_folder)
    path = next((folder / n for n in (CHECKPOINT_FINAL, CHECKPOINT_LATEST) if (folder / n).is_file()), None)
    if path is None:
        return None
    logging = load_checkpoint(path).get("logging") or {}
    curves = {key: [_number(v) for v in logging.get(key) or []] for key in CURVE_KEYS}
    # an epoch interrupted after its training half logged a loss but no validation: keep whole epochs
    epochs = min((len(v) for v in curves.values() if v), default=0)
    return {"checkpoint": str(path), "finished": path.name == CHECKPOINT_FINAL, "epochs": epochs,
            **{key: values[:epochs] for key, values in curves.items()}}
