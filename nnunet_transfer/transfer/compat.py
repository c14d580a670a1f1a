"""Can a source state dict initialise a target network at all? One clear error if not."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.load import unwrap_model


def input_projection_key(model: nn.Module) -> str | None:
    """The state-dict key of the first convolution's weight, from the model's ``keys_to_in_proj``."""
    model = unwrap_model(model)
    keys = set(model.state_dict().keys())
    for base in getattr(model, "keys_to_in_proj", ()) or ():
        if f"{base}.weight" in keys:
            return f"{base}.weight"
    return None


def check_compatible(source: Mapping[str, torch.Tensor], model: nn.Module, source_name: str = "checkpoint",
                     target_name: str = "target network") -> None:
    """Raise NnunetTransferError when the source cannot initialise ``model``: different
    convolution dimensionality (2D vs 3D) or a different number of input channels.

    Partial mismatches deeper in the network are not errors: they show up in the TransferReport.
    """
    key = input_projection_key(model)
    if key is None or key not in source:
        return
    src, tgt = source[key], unwrap_model(model).state_dict()[key]
    if src.ndim != tgt.ndim:
        dims = {4: "2D", 5: "3D"}
        raise NnunetTransferError(
            f"{source_name} holds a {dims.get(src.ndim, f'{src.ndim - 2}D')} network but {target_name} is "
            f"{dims.get(tgt.ndim, f'{tgt.ndim - 2}D')}: weights cannot be shared between a 2d and a 3d "
            f"configuration. Plan the target with the checkpoint's configuration.")
    if src.shape[1] != tgt.shape[1]:
        raise NnunetTransferError(
            f"{source_name} expects {src.shape[1]} input channel(s) but {target_name} has {tgt.shape[1]}. "
            f"No input-channel rule is configured for this pair; use a source with the target's channels.")
