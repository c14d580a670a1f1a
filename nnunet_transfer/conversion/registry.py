"""Find every converter: each module of this package that defines a ``Converter`` subclass with a ``key``.

Discovery instead of a hand-kept list, so adding a dataset is adding one module.
"""
from __future__ import annotations

import importlib
import pkgutil

from nnunet_transfer import conversion
from nnunet_transfer.conversion.common import Converter

_SHARED_MODULES = {"common", "validate", "run", "registry"}


def converters() -> dict[str, Converter]:
    """``key -> converter instance`` of every converter module, sorted by key."""
    found: dict[str, Converter] = {}
    for module_info in pkgutil.iter_modules(conversion.__path__):
        if module_info.name in _SHARED_MODULES or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{conversion.__name__}.{module_info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Converter) and obj.__module__ == module.__name__ \
                    and getattr(obj, "key", None):
                if obj.key in found:
                    raise RuntimeError(f"two converters use the key {obj.key!r}")
                found[obj.key] = obj()
    return dict(sorted(found.items()))

