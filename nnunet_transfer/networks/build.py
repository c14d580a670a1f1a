"""Build the network a plans configuration names: nnU-Net's U-Nets as nnU-Net does, networks
without deep supervision (transformers such as Primus) from the same block, at the patch size."""
from __future__ import annotations

import inspect
import pydoc
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from torch import nn

from nnunet_transfer.errors import NnunetTransferError


@lru_cache(maxsize=None)
def _network_class(name: str) -> type:
    cls = pydoc.locate(name)
    if not isinstance(cls, type):
        raise NnunetTransferError(f"The plans' architecture names {name!r}, which is not an importable class.")
    return cls


def has_deep_supervision(architecture: Mapping[str, Any]) -> bool:
    """Whether the architecture block's class takes nnU-Net's ``deep_supervision`` (the U-Nets of
    dynamic_network_architectures do, a Primus does not)."""
    cls = _network_class(architecture["network_class_name"])
    return "deep_supervision" in inspect.signature(cls.__init__).parameters


def build_network(architecture: Mapping[str, Any], patch_size: Sequence[int], input_channels: int,
                  output_channels: int, deep_supervision: bool = True) -> nn.Module:
    """The network of a plans ``architecture`` block: a U-Net through nnU-Net's
    ``get_network_from_plans``; any other class with its kwargs (imports resolved as nnU-Net does),
    ``input_shape`` = ``patch_size`` and no deep supervision."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    name, kwargs, imports = (architecture["network_class_name"], dict(architecture["arch_kwargs"]),
                             architecture.get("_kw_requires_import") or [])
    if has_deep_supervision(architecture):
        return get_network_from_plans(name, kwargs, imports, input_channels, output_channels,
                                      deep_supervision=deep_supervision)
    for key in imports:
        if kwargs.get(key) is not None:
            kwargs[key] = pydoc.locate(kwargs[key])
    kwargs["input_shape"] = [int(s) for s in patch_size]
    return _network_class(name)(input_channels=input_channels, num_classes=output_channels, **kwargs)
