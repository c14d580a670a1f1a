"""Checkpoint file -> TransferReport -> network: the one path every transfer takes.

The fine-tuning trainers call :func:`transfer_from_checkpoint` to load weights; ``preview`` calls it
with ``apply=False`` on the network nnU-Net would build. Both therefore resolve the same default
load rule, refuse the same incompatible checkpoints and produce the same report.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, extract_state_dict, load_checkpoint
from nnunet_transfer.transfer.compat import check_compatible
from nnunet_transfer.transfer.load import TransferError, preview_with_rules, transfer_with_rules
from nnunet_transfer.transfer.mapping import channel_names_of, resolve_name_maps, source_dataset_json
from nnunet_transfer.transfer.report import TransferReport
from nnunet_transfer.transfer.rules import TransferRules


def transfer_from_checkpoint(checkpoint: str | os.PathLike, model: nn.Module, rules: TransferRules,
                             target_name: str = "the target network", apply: bool = True,
                             loaded: dict | None = None, target_json: Mapping[str, Any] | None = None
                             ) -> TransferReport:
    """Load ``checkpoint`` safely (or take its ``loaded`` contents), decide ``load`` from its block
    when the rules leave it unset, resolve the rules' channel / class mappings between the names
    the checkpoint declares and those of ``target_json`` (the target's dataset.json), check it can
    initialise ``model`` and load what fits (``apply=False``: only report).

    Returns the TransferReport with the checkpoint path and its self-describing block. Raises
    NnunetTransferError for an unreadable or unsafe checkpoint, a 3D network into a 2D one,
    input channels no rule maps, a mapping naming a channel or class that does not exist, no
    encoder weight that loads or adapts (unless the rules allow it), or (strict rules) any encoder
    weight that does not; the model is unchanged when it raises.
    """
    loaded = load_checkpoint(checkpoint, mmap=True) if loaded is None else loaded  # read-only here
    source = extract_state_dict(loaded)
    metadata = checkpoint_metadata(loaded)
    rules = rules.with_default_load(metadata)
    source_json = source_dataset_json(loaded, metadata)
    try:
        maps = resolve_name_maps(rules, source_json, target_json)
    except NnunetTransferError as e:
        raise NnunetTransferError(f"Checkpoint {checkpoint} into {target_name}: {e}") from None
    check_compatible(source, model, f"Checkpoint {checkpoint}", target_name, rules, maps,
                     (channel_names_of(source_json), channel_names_of(target_json)))
    try:
        tokens = (metadata["token_grid"], metadata["token_order"]) if metadata and metadata.get("token_grid") else None
        report = (transfer_with_rules if apply else preview_with_rules)(source, model, rules, maps, tokens)
    except TransferError as e:
        raise TransferError(f"Checkpoint {checkpoint} into {target_name}: {e}") from None
    report.checkpoint = str(checkpoint)
    report.source_metadata = metadata
    return report
