"""The adapter a set of transfer rules makes: 2D->3D inflation, input channels, kernel size."""
from __future__ import annotations

import torch
from torch import nn

from nnunet_transfer.transfer.adapt import (adapt_input_channels, adapt_kernel, inflate_2d_to_3d, map_input_channels,
                                            resample_token_embedding)
from nnunet_transfer.transfer.mapping import NameMaps
from nnunet_transfer.transfer.rules import TransferRules


def in_projection_keys(model: nn.Module) -> tuple[str, ...]:
    """State-dict keys of the first convolution's weight (all aliases, in the network's declared
    order: ``keys_to_in_proj`` of dynamic_network_architectures)."""
    return tuple(f"{k}.weight" for k in getattr(model, "keys_to_in_proj", ()) or ())


def make_adapter(model: nn.Module, rules: TransferRules, maps: NameMaps = NameMaps(),
                 tokens: tuple[list[int], str] | None = None):
    """An adapter for ``match_state_dict``: 2D->3D inflation, input channels of the first layer
    (by the channel mapping of ``maps`` when there is one, else by ``rules.input_channels``),
    kernel size; in that order, each step named in the returned ``how``. With a channel mapping
    that is not the identity, the first layer is offered to the adapter even when its shape
    already fits (``forced_keys``): a reordering changes no shape.

    A transformer's learnt positional embedding (the model's ``key_to_lpe``) is moved from the
    source's token grid and order, ``tokens`` = (grid, order), to the model's ``token_grid`` /
    ``token_order`` (``resample_token_embedding``); forced when only the order differs."""
    in_proj = in_projection_keys(model)
    lpe = getattr(model, "key_to_lpe", None)
    target_tokens = (tuple(getattr(model, "token_grid", ()) or ()), getattr(model, "token_order", "xyz"))
    move_tokens = lpe is not None and tokens is not None and len(target_tokens[0]) == 3
    sources = maps.channel_sources
    # transposed convolutions: how many depth taps reach one output voxel (kernel / stride)
    taps = {f"{name}.weight": max(1, m.kernel_size[0] // m.stride[0]) for name, m in model.named_modules()
            if isinstance(m, nn.ConvTranspose3d)}

    def adapter(key: str, src: torch.Tensor, tgt: torch.Tensor):
        if key == lpe:
            if not move_tokens or src.ndim != 3 or src.shape[2] != tgt.shape[2]:
                return None
            out, how = resample_token_embedding(src, tokens[0], target_tokens[0], tokens[1], target_tokens[1])
            return (out, how) if out.shape == tgt.shape else None
        steps, out = [], src
        if out.ndim == 4 and tgt.ndim == 5:
            out = inflate_2d_to_3d(out, tgt.shape[2], rules.inflation, taps.get(key))
            steps.append(f"inflated 2D->3D ({rules.inflation}, depth {tgt.shape[2]})")
        if out.ndim != tgt.ndim:
            return None
        if key in in_proj and sources is not None and out.ndim >= 3 and out.shape[0] == tgt.shape[0]:
            out = map_input_channels(out, tgt, sources, rules.unmapped_channels)
            steps.append(maps.channel_how)
        elif key in in_proj and out.ndim >= 3 and out.shape[1] != tgt.shape[1]:
            out, how = adapt_input_channels(out, tgt.shape[1], rules.input_channels)
            steps.append(how)
        if out.ndim >= 3 and out.shape[:2] == tgt.shape[:2] and out.shape[2:] != tgt.shape[2:]:
            before = tuple(out.shape[2:])
            out = adapt_kernel(out, tuple(tgt.shape[2:]), rules.kernel)
            steps.append(f"kernel {before}->{tuple(tgt.shape[2:])} ({rules.kernel})")
        if out.shape != tgt.shape or not steps:
            return None
        return out, "; ".join(steps)

    identity = sources is None or sources == list(range(len(sources)))
    reorder = (lpe,) if move_tokens and tokens[1] != target_tokens[1] else ()
    adapter.forced_keys = (() if identity else in_proj) + reorder
    return adapter
