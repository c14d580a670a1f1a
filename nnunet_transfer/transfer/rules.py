"""The transfer rules of a plans ``transfer`` block, validated, and the adapter they make."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.adapt import (INFLATION_RULES, INPUT_CHANNEL_RULES, KERNEL_RULES, adapt_input_channels,
                                            adapt_kernel, inflate_2d_to_3d)

LOAD_RULES = ("encoder", "encoder+decoder", "all-but-head")


@dataclass(frozen=True)
class TransferRules:
    """How a source state dict is brought into a target network.

    ``load``: which parts are loaded (heads never). ``input_channels``: N->1 ``sum`` / ``mean``
    (1->N always repeats and divides by N), ``tile`` for any N->M. ``inflation``: 2D->3D rule,
    ``average`` or ``center``. ``kernel``: kernel-size mismatch, ``crop`` or ``average``.
    ``strict``: fail unless every encoder entry is loaded or adapted.
    """

    load: str | None = None  # None: by the checkpoint (attach), encoder+decoder when matching tensors
    input_channels: str = "sum"
    inflation: str = "average"
    kernel: str = "crop"
    strict: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (("load", LOAD_RULES + (None,)), ("input_channels", INPUT_CHANNEL_RULES),
                              ("inflation", INFLATION_RULES), ("kernel", KERNEL_RULES)):
            if getattr(self, name) not in allowed:
                raise NnunetTransferError(f"transfer.{name} is {getattr(self, name)!r}; choose one of "
                                          f"{', '.join(a for a in allowed if a)}.")
        if not isinstance(self.strict, bool):
            raise NnunetTransferError(f"transfer.strict must be true or false, got {self.strict!r}.")

    def with_default_load(self, metadata: Mapping | None) -> "TransferRules":
        """These rules with ``load`` decided by the checkpoint's block (``default_load``) when unset."""
        return self if self.load is not None else replace(self, load=default_load(metadata))

    @classmethod
    def from_block(cls, block: Mapping) -> "TransferRules":
        """Rules from a plans ``transfer`` block; unknown rule keys are ignored by design
        (the block also holds the checkpoint and the schedule)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in block.items() if k in names})


def in_projection_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the first convolution's weight (all aliases)."""
    return {f"{k}.weight" for k in getattr(model, "keys_to_in_proj", ()) or ()}


def make_adapter(model: nn.Module, rules: TransferRules):
    """An adapter for ``match_state_dict``: 2D->3D inflation, input channels of the first layer,
    kernel size; in that order, each step named in the returned ``how``."""
    in_proj = in_projection_keys(model)
    # transposed convolutions: how many depth taps reach one output voxel (kernel / stride)
    taps = {f"{name}.weight": max(1, m.kernel_size[0] // m.stride[0]) for name, m in model.named_modules()
            if isinstance(m, nn.ConvTranspose3d)}

    def adapter(key: str, src: torch.Tensor, tgt: torch.Tensor):
        steps, out = [], src
        if out.ndim == 4 and tgt.ndim == 5:
            out = inflate_2d_to_3d(out, tgt.shape[2], rules.inflation, taps.get(key))
            steps.append(f"inflated 2D->3D ({rules.inflation}, depth {tgt.shape[2]})")
        if out.ndim != tgt.ndim:
            return None
        if key in in_proj and out.ndim >= 3 and out.shape[1] != tgt.shape[1]:
            out, how = adapt_input_channels(out, tgt.shape[1], rules.input_channels)
            steps.append(how)
        if out.ndim >= 3 and out.shape[:2] == tgt.shape[:2] and out.shape[2:] != tgt.shape[2:]:
            before = tuple(out.shape[2:])
            out = adapt_kernel(out, tuple(tgt.shape[2:]), rules.kernel)
            steps.append(f"kernel {before}->{tuple(tgt.shape[2:])} ({rules.kernel})")
        if out.shape != tgt.shape or not steps:
            return None
        return out, "; ".join(steps)

    return adapter


_DECODER_INDEXED = re.compile(r"^(decoder\.(?:stages|transpconvs|seg_layers))\.(\d+)\.(.*)$")
_ENCODER_STAGE = re.compile(r"^encoder\.stages\.(\d+)\.")


def count_stages(keys) -> int:
    """Number of encoder stages named in state-dict keys (0 if none)."""
    found = {int(m.group(1)) for m in map(_ENCODER_STAGE.match, keys) if m}
    return max(found) + 1 if found else 0


def align_decoder_stages(source_keys, target_keys) -> dict[str, str]:
    """Map each source key to the name it should be matched under.

    dynamic_network_architectures numbers decoder stages from the bottleneck up, encoder stages
    from full resolution down. When source and target have a different number of stages,
    decoder stage j of the source sits at the resolution of target stage j + (T - S). A source
    stage without a counterpart keeps a name that matches nothing (``unmatched-depth:...``), so it
    is reported as unused.
    """
    source_keys = list(source_keys)
    s, t = count_stages(source_keys), count_stages(target_keys)
    if not s or not t or s == t:
        return {k: k for k in source_keys}
    out = {}
    for key in source_keys:
        m = _DECODER_INDEXED.match(key)
        if m is None:
            out[key] = key
            continue
        j = int(m.group(2)) + (t - s)
        out[key] = f"{m.group(1)}.{j}.{m.group(3)}" if j >= 0 else f"unmatched-depth:{key}"
    return out


# Pretraining whose decoder never trained: only the encoder is worth loading by default.
ENCODER_ONLY = ("classification", "rotation", "simclr")


def default_load(metadata: Mapping | None) -> str:
    """The load rule ``attach`` uses when none is given, from a checkpoint's ``nnunet_transfer``
    block: ``encoder`` for classification, rotation and SimCLR pretraining (their decoder is
    untrained), else ``encoder+decoder``."""
    metadata = metadata or {}
    return "encoder" if {metadata.get("mode"), metadata.get("pretext")} & set(ENCODER_ONLY) else "encoder+decoder"
