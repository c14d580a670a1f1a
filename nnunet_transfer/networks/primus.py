"""dynamic_network_architectures' Primus, able to order its tokens as nnssl's pretraining did.

A Primus (Wald, Roy, Isensee et al., "Primus: Enforcing attention usage for 3D medical image
segmentation", arXiv 2503.01835) cuts the image into patches, embeds each (a strided
convolution), runs an EVA transformer over the token sequence and decodes the token grid.
Everything the transformer knows of position comes from the token's index in the sequence: the
learnt absolute embedding (``eva.pos_embed``) is added by index, and the rotary embedding (RoPE)
is computed for the index unravelled over the reference grid. The order in which the grid is
flattened therefore belongs to the trained weights.

nnssl's pretraining module (``EvaMAE``, nnssl ``architectures/evaMAE_module.py``) flattens the
grid of axes (x, y, z) as ``(y x z)``; dynamic_network_architectures' Primus flattens it as
``(x y z)``. Copied index by index into the latter, every pretrained positional code lands on
the patch with its first two grid axes swapped; permuting only the learnt embedding would not
help, since RoPE is not a weight (timm keeps it as a non-persistent buffer). This network
flattens in the order it is told (``token_order``: ``"xyz"``, dynamic_network_architectures'
order, or ``"yxz"``, nnssl's), so a network built like an nnssl checkpoint reproduces the
pretrained encoder exactly at the pretraining's patch size (tests/networks/test_primus.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from dynamic_network_architectures.architectures.primus import Primus

TOKEN_ORDERS = ("xyz", "yxz")


class TransferPrimus(Primus):
    """dynamic_network_architectures' ``Primus`` with ``token_order`` (see the module docstring).

    All other arguments are Primus's. ``token_grid`` (the patch grid in image axis order) and
    ``token_order`` are kept for the weight transfer. Register tokens and patch dropout (MAE-style
    pretraining inside the network) are not used for segmentation and are refused with ``yxz``.
    """

    def __init__(self, input_channels: int, embed_dim: int, patch_embed_size: Sequence[int], num_classes: int,
                 input_shape: Sequence[int], token_order: str = "xyz", **kwargs):
        if token_order not in TOKEN_ORDERS:
            raise ValueError(f"token_order must be one of {TOKEN_ORDERS}, got {token_order!r}")
        input_shape, patch_embed_size = tuple(input_shape), tuple(patch_embed_size)
        grid = tuple(s // p for s, p in zip(input_shape, patch_embed_size))
        reference_shape = input_shape
        if token_order == "yxz":
            if patch_embed_size[0] != patch_embed_size[1]:
                raise ValueError("token_order 'yxz' needs the same patch embedding size along the first two axes, "
                                 f"got {patch_embed_size}")
            if kwargs.get("num_register_tokens") or kwargs.get("patch_drop_rate"):
                raise ValueError("token_order 'yxz' supports neither register tokens nor patch dropout")
            # RoPE unravels the sequence index over the reference grid: give it the grid in sequence order
            reference_shape = (input_shape[1], input_shape[0], input_shape[2])
        super().__init__(input_channels, embed_dim, patch_embed_size, num_classes, input_shape=reference_shape,
                         **kwargs)
        self.token_grid = grid
        self.token_order = token_order

    def forward(self, x: torch.Tensor, ret_mask: bool = False):
        if self.token_order == "xyz":
            return super().forward(x, ret_mask)
        grid = self.down_projection(x)  # (b, c, x, y, z)
        b, c, nx, ny, nz = grid.shape
        tokens = grid.transpose(2, 3).flatten(2).transpose(1, 2)  # (b, y*x*z, c), y slowest
        tokens, _ = self.eva(tokens)
        grid = tokens.transpose(1, 2).reshape(b, c, ny, nx, nz).transpose(2, 3)
        out = self.up_projection(grid.contiguous())
        return (out, None) if ret_mask else out
