"""The transfer rules of a plans ``transfer`` block, validated, and the default load rule.

Plain data (no torch): the adapter the rules make is in :mod:`nnunet_transfer.transfer.adapters`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.names import (INFLATION_RULES, INPUT_CHANNEL_RULES, KERNEL_RULES, LOAD_RULES,
                                   UNMAPPED_CHANNEL_RULES, decoder_trained)

AUTO = "auto"


@dataclass(frozen=True)
class TransferRules:
    """How a source state dict is brought into a target network.

    ``load``: which parts are loaded (heads never). ``input_channels``: N->1 ``sum`` / ``mean``
    (1->N always repeats and divides by N), ``tile`` for any N->M. ``inflation``: 2D->3D rule,
    ``average`` or ``center``. ``kernel``: kernel-size mismatch, ``crop`` or ``average``.
    ``strict``: fail unless every encoder entry is loaded or adapted. ``allow_no_encoder_weights``:
    accept a transfer that loads or adapts no encoder weight at all (otherwise an error: such a
    fine-tuning would be training from scratch under another name). ``channel_map``: target input
    channel -> checkpoint channel by name or index (or ``"auto"``: same names), the rest
    ``unmapped_channels`` (``zero``, ``mean``, ``random``); replaces ``input_channels`` for the
    first layer. ``keep_classes``: target class -> checkpoint class (or ``"auto"``) whose head rows
    are kept; the other rows are initialised (heads are otherwise never loaded).
    """

    load: str | None = None  # None: by the checkpoint (attach), encoder+decoder when matching tensors
    input_channels: str = "sum"
    inflation: str = "average"
    kernel: str = "crop"
    strict: bool = False
    allow_no_encoder_weights: bool = False
    channel_map: str | Mapping[str, str | None] | None = None
    unmapped_channels: str = "zero"
    keep_classes: str | Mapping[str, str | None] | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("load", LOAD_RULES + (None,)), ("input_channels", INPUT_CHANNEL_RULES),
                              ("inflation", INFLATION_RULES), ("kernel", KERNEL_RULES),
                              ("unmapped_channels", UNMAPPED_CHANNEL_RULES)):
            if getattr(self, name) not in allowed:
                raise NnunetTransferError(f"transfer.{name} is {getattr(self, name)!r}; choose one of "
                                          f"{', '.join(a for a in allowed if a)}.")
        for name in ("strict", "allow_no_encoder_weights"):
            if not isinstance(getattr(self, name), bool):
                raise NnunetTransferError(f"transfer.{name} must be true or false, got {getattr(self, name)!r}.")
        for name in ("channel_map", "keep_classes"):
            value = getattr(self, name)
            if not (value is None or value == AUTO or (isinstance(value, Mapping) and value and all(
                    isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()))):
                raise NnunetTransferError(f"transfer.{name} is {value!r}; give '{AUTO}' or a non-empty mapping of "
                                          f"target to checkpoint names (or indices, as strings).")
            if isinstance(value, Mapping):
                object.__setattr__(self, name, dict(value))

    def with_default_load(self, metadata: Mapping | None) -> "TransferRules":
        """These rules with ``load`` decided by the checkpoint's block (``default_load``) when unset."""
        return self if self.load is not None else replace(self, load=default_load(metadata))


def default_load(metadata: Mapping | None) -> str:
    """The load rule used when none is given, from a checkpoint's ``nnunet_transfer`` block:
    ``encoder`` when the pretraining never trained the decoder (classification, rotation, SimCLR;
    see :func:`nnunet_transfer.names.decoder_trained`), else ``encoder+decoder``."""
    metadata = metadata or {}
    return "encoder+decoder" if decoder_trained(metadata.get("mode"), metadata.get("pretext")) else "encoder"
