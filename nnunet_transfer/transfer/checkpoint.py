"""Safe checkpoint loading and state-dict cleaning.

A checkpoint is untrusted input: it is unpickled with ``weights_only=True`` (no code can run)
and mapped to the CPU, so a checkpoint saved on a GPU loads on a machine without one. The only
non-tensor globals admitted are numpy scalar / dtype reconstructors, which nnU-Net's own
checkpoints contain in their training logs; they rebuild numbers, never call user code.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.nnssl import (WRAPPER_PREFIXES, is_nnssl, nnssl_metadata, nnssl_state_dict,  # noqa: F401
                                            strip_wrapper_prefixes)

METADATA_KEY = "nnunet_transfer"
STATE_DICT_KEYS = ("network_weights", "state_dict", "model_state_dict", "model", "teacher", "student")


class UnsafeCheckpointError(NnunetTransferError):
    """The checkpoint needs arbitrary unpickling (it would run code); it was not loaded."""


def _numpy_safe_globals() -> list[Any]:
    core = getattr(np, "_core", None) or np.core
    found = [core.multiarray.scalar, np.dtype]
    found += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return found


def _load(path: Path, mmap: bool) -> Any:
    """torch.load, safe and on the CPU; with ``mmap`` memory-mapped where the file allows it (torch's
    zip format), so that only the tensors used are read from disk."""
    if mmap:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
    return torch.load(path, map_location="cpu", weights_only=True)


FORBIDDEN_GLOBAL = re.compile(r"GLOBAL ([\w.]+)", re.IGNORECASE)


def load_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint file safely on the CPU.

    ``mmap``: map the file instead of reading it (only the tensors used are read: a transfer of a
    large network's encoder skips the rest). The tensors then read the file: never write the same
    path while they are in use (torch.save over it ends the process with a bus error).

    Returns the unpickled object as a dict (a bare state dict is returned as is). Raises
    NnunetTransferError if the file is missing or is not a torch checkpoint (any file torch cannot
    read: text, a truncated download, another format), and UnsafeCheckpointError, naming the
    object, only when the file really references a global that could run code (``os.system``, a
    class of someone's training code).
    """
    path = Path(path)
    if not path.is_file():
        raise NnunetTransferError(f"Checkpoint {path} does not exist.")
    if path.stat().st_size == 0:
        raise NnunetTransferError(f"Checkpoint {path} is an empty file (0 bytes), not a torch checkpoint.")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = _load(path, mmap)
    except Exception as e:  # noqa: BLE001 - torch raises anything from KeyError to EOFError for a non-checkpoint
        found = FORBIDDEN_GLOBAL.search(str(e)) if isinstance(e, pickle.UnpicklingError) else None
        if found:
            raise UnsafeCheckpointError(
                f"Checkpoint {path} cannot be loaded safely: it references {found.group(1)}, which would run code "
                f"when unpickled. It was not loaded. If the file comes from a source you trust, re-save its state "
                f"dict there (torch.save(model.state_dict(), ...)).") from None
        if isinstance(e, pickle.UnpicklingError):
            reason = "a pickle that holds no tensors torch can read"
        elif isinstance(e, RuntimeError) and str(e).strip():
            reason = str(e).strip().split(". ")[0].splitlines()[0]
        else:
            reason = f"torch cannot read it: {type(e).__name__}"
        raise NnunetTransferError(f"Checkpoint {path} is not a torch checkpoint ({reason[:160]}); is it the right "
                                  f"file, completely downloaded?") from None
    if not isinstance(obj, Mapping):
        raise NnunetTransferError(f"Checkpoint {path} is not a torch checkpoint: it holds a {type(obj).__name__}, "
                                  f"expected a dict of weights.")
    return dict(obj)


def extract_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Return the network state dict inside a checkpoint, with wrapper prefixes removed.

    Accepts an nnU-Net checkpoint (``network_weights``), an nnssl checkpoint (its SparK copies
    repaired, its encoder named as in nnU-Net's U-Nets; :mod:`nnunet_transfer.transfer.nnssl`),
    common ``state_dict`` / ``model`` containers, or a bare state dict. Raises
    NnunetTransferError if none is found.
    """
    if is_nnssl(checkpoint):
        return nnssl_state_dict(checkpoint, nnssl_metadata(checkpoint))
    if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state = checkpoint
    else:
        state = next((checkpoint[k] for k in STATE_DICT_KEYS if isinstance(checkpoint.get(k), Mapping)), None)
        if state is None:
            raise NnunetTransferError(
                f"No network weights found in checkpoint (looked for {', '.join(STATE_DICT_KEYS)}); "
                f"top-level keys: {', '.join(sorted(map(str, checkpoint))[:20])}.")
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            cleaned[strip_wrapper_prefixes(str(key))] = value
    return cleaned


def checkpoint_metadata(checkpoint: Mapping[str, Any], path: str = "the checkpoint") -> dict[str, Any] | None:
    """The self-describing block of a pretraining checkpoint of ours, the same block read from an
    nnssl checkpoint's adaptation plan (``mode`` ``nnssl``), or None. Raises NnunetTransferError
    for an nnssl checkpoint we cannot use (see ``nnssl.nnssl_metadata``)."""
    if is_nnssl(checkpoint):
        return nnssl_metadata(checkpoint, path)
    meta = checkpoint.get(METADATA_KEY)
    return dict(meta) if isinstance(meta, Mapping) else None
