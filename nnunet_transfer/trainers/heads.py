"""Pretraining networks built around nnU-Net's U-Net: the U-Net's own modules keep their state-dict
names (``encoder.*``, ``decoder.*``), so a pretraining checkpoint transfers like a segmentation one;
the head gets a name no segmentation target has, so it is never loaded."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

POOLED_KEYS = ("key_to_encoder", "key_to_stem", "keys_to_in_proj")


def stage_channels(unet: nn.Module) -> list[int]:
    """Output channels of every encoder stage of a dynamic_network_architectures U-Net."""
    return list(unet.encoder.output_channels)


class EncoderClassifier(nn.Module):
    """Global average pooling of encoder stages (default: the bottleneck) -> linear head.

    The decoder is kept (built, unused) so that the state dict has the U-Net's layout; its
    weights stay as initialised.
    """

    def __init__(self, unet: nn.Module, num_classes: int, pool_stages: Sequence[int] = (-1,)):
        super().__init__()
        self.encoder, self.decoder = unet.encoder, unet.decoder
        for key in POOLED_KEYS:
            setattr(self, key, getattr(unet, key, None))
        channels = stage_channels(unet)
        self.pool_stages = [int(i) for i in pool_stages]
        self.classification_head = nn.Linear(sum(channels[i] for i in self.pool_stages), num_classes)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        skips = self.encoder(x)
        return torch.cat([skips[i].flatten(2).mean(-1) for i in self.pool_stages], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classification_head(self.pooled_features(x))
