"""Can a source state dict initialise a target network at all? One clear error if not."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.adapt import adapt_input_channels
from nnunet_transfer.transfer.adapters import in_projection_keys
from nnunet_transfer.transfer.load import unwrap_model
from nnunet_transfer.transfer.mapping import NameMaps
from nnunet_transfer.transfer.rules import TransferRules

DIMS = {4: "2D", 5: "3D"}


def input_projection_key(model: nn.Module) -> str | None:
    """The state-dict key of the first convolution's weight, from the model's ``keys_to_in_proj``."""
    model = unwrap_model(model)
    keys = model.state_dict().keys()
    return next((k for k in in_projection_keys(model) if k in keys), None)


def check_channels_adaptable(source_channels: int, target_channels: int, rule: str, what: str) -> None:
    """Raise NnunetTransferError unless ``rule`` maps ``source_channels`` to ``target_channels``."""
    if source_channels == target_channels:
        return
    try:
        adapt_input_channels(torch.zeros(1, source_channels, 1, 1), target_channels, rule)
    except NnunetTransferError as e:
        raise NnunetTransferError(f"{what}: {e}") from None


def check_compatible(source: Mapping[str, torch.Tensor], model: nn.Module, source_name: str = "checkpoint",
                     target_name: str = "target network", rules: TransferRules | None = None,
                     maps: NameMaps = NameMaps(),
                     channel_names: tuple[Mapping[int, str] | None, Mapping[int, str] | None] = (None, None)) -> None:
    """Raise NnunetTransferError when the source cannot initialise ``model`` under ``rules``:
    a 3D source for a 2D target, input channels no rule maps, or a channel mapping (``maps``)
    naming a checkpoint channel the network does not have. ``channel_names`` (source, target),
    where known, name the channels in the error.

    A 2D source for a 3D target is inflated; mismatches deeper in the network are not errors,
    they show up in the TransferReport.
    """
    rules = rules or TransferRules()
    key = input_projection_key(model)
    if key is None or key not in source:
        return
    src, tgt = source[key], unwrap_model(model).state_dict()[key]
    if src.ndim > tgt.ndim or src.ndim not in DIMS or tgt.ndim not in DIMS:
        raise NnunetTransferError(
            f"{source_name} holds a {DIMS.get(src.ndim, '?')} network but {target_name} is "
            f"{DIMS.get(tgt.ndim, '?')}: a 3D network cannot initialise a 2D one. Use a 2D checkpoint "
            f"(a 2D checkpoint can initialise a 3D network by inflation).")
    if maps.channel_sources is not None:
        beyond = sorted({s for s in maps.channel_sources if s is not None and s >= src.shape[1]})
        if beyond:
            raise NnunetTransferError(f"{source_name} has {src.shape[1]} input channel(s); channel_map names "
                                      f"checkpoint channel(s) {beyond}.")
        return
    listed = [f" {list(n.values())}" if n else "" for n in channel_names]
    check_channels_adaptable(src.shape[1], tgt.shape[1], rules.input_channels,
                             f"{source_name} ({src.shape[1]} input channels{listed[0]}) into {target_name} "
                             f"({tgt.shape[1]}{listed[1]}; map channels by name with channel_map, attach "
                             f"--channel-map)")
