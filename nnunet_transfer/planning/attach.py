"""Attach a checkpoint to a target: a plans copy with a ``transfer`` block.

``nnUNetv2_train TARGET CONFIG FOLD -tr nnUNetTrainerFinetune -p <new plans>`` then needs no
extra flag. The copy keeps the ``data_identifier`` of every configuration, so the preprocessed
data of the original plans is reused.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.hub import ResolvedCheckpoint, resolve_checkpoint
from nnunet_transfer.io import sha256  # noqa: F401 - its home was here: importers of attach.sha256 keep working
from nnunet_transfer.layout import plans_path, resolve_dataset
from nnunet_transfer.planning.like_checkpoint import check_channels, describe_checkpoint
from nnunet_transfer.planning.plans_file import load_plans, write_plans
from nnunet_transfer.planning.preview import preview
from nnunet_transfer.plans_blocks import TRANSFER_KEY, Strategy, make_transfer_block, update_schedule
from nnunet_transfer.transfer.checkpoint import load_checkpoint
from nnunet_transfer.transfer.load import TransferError
from nnunet_transfer.transfer.rules import TransferRules

PLANS_NAME = re.compile(r"[A-Za-z0-9_\-.]+")


def default_output_plans(plans_name: str, source_dataset: str | None) -> str:
    """``<plans>_from_<source dataset without its DatasetXXX_ prefix>``."""
    tag = re.sub(r"^Dataset\d+_", "", source_dataset or "checkpoint")
    return f"{plans_name}_from_{re.sub(r'[^A-Za-z0-9]+', '', tag)}"


def attach(checkpoint: str | Path | ResolvedCheckpoint, target: int | str, plans_name: str,
           output_plans_name: str | None = None,
           rules: TransferRules | None = None, strategy: Mapping | None = None, overwrite: bool = True,
           schedule: Mapping | None = None) -> Path:
    """Write ``<output_plans_name>.json`` next to the target's plans with the transfer block.

    ``checkpoint`` is a file, a hub reference (``hf://OWNER/REPO[@REVISION][:FILE]`` or a
    huggingface.co URL, fetched into the cache by :func:`nnunet_transfer.hub.resolve_checkpoint`) or
    an already resolved one. The block names the local file (trainings need no network), its
    ``checkpoint_sha256`` and, for the hub, ``checkpoint_origin`` (``hf://OWNER/REPO@COMMIT:FILE``).
    ``rules`` (load, input channels, inflation, kernel, strict; ``load=None`` is decided by the
    checkpoint: ``encoder`` when its decoder never trained, else ``encoder+decoder``) and
    ``strategy`` (any of ``warmup_epochs``, ``frozen_encoder_epochs``, ``encoder_lr_factor``) go
    into the block; ``schedule`` keys replace those of the plans' ``training_schedule`` (a study's
    ``train_subset``), in the same write. Every configuration is previewed through the trainers'
    transfer path first: one that would load no encoder weight is left out of the block's
    ``configurations``, and when that is every one, attach raises ``preview``'s error.
    Raises NnunetTransferError for a missing plans file, a checkpoint whose network cannot
    initialise any configuration of the plans (3D into 2D, input channels no rule maps, no encoder
    weight that loads or adapts), or an output name containing ``__`` (nnU-Net splits folder names
    on it).
    """
    rules = rules or TransferRules()
    Strategy().with_options(strategy or {}, num_epochs=10 ** 9)  # types and signs; epochs checked at training
    name = resolve_dataset(target)
    resolved = checkpoint if isinstance(checkpoint, ResolvedCheckpoint) else resolve_checkpoint(checkpoint)
    ckpt = describe_checkpoint(resolved.path, allow_bare=True)  # a bare state dict of a compatible network works
    check_channels(ckpt, name, rules)
    rules = rules.with_default_load(ckpt.metadata)
    plans = load_plans(name, plans_name)
    dims = len(ckpt.configuration_dict["patch_size"])
    usable = [c for c, cfg in plans["configurations"].items()
              if "patch_size" in cfg and len(cfg["patch_size"]) >= dims]  # 2D checkpoints inflate into 3D
    if not usable:
        raise NnunetTransferError(
            f"Checkpoint {ckpt.path.name} holds a {dims}D network ({ckpt.configuration}) but plans '{plans_name}' of "
            f"{name} only have {', '.join(plans['configurations'])}: a 3D network cannot initialise a 2D one.")
    loaded = load_checkpoint(ckpt.path)
    refused: dict[str, TransferError] = {}
    for configuration in usable:  # the trainers' own transfer path: what training would refuse is refused now
        try:
            preview(ckpt.path, name, plans_name, configuration, rules, loaded=loaded)
        except TransferError as e:  # no encoder weight loads into this configuration's network
            refused[configuration] = e
    if len(refused) == len(usable):
        raise next(iter(refused.values()))
    usable = [c for c in usable if c not in refused]
    out_name = output_plans_name or default_output_plans(plans_name, ckpt.source_dataset)
    if "__" in out_name or not PLANS_NAME.fullmatch(out_name):
        raise NnunetTransferError(f"Plans name {out_name!r} must use letters, digits, '_', '-', '.' and no '__'.")
    if out_name == plans_name:
        raise NnunetTransferError("The plans copy needs a name of its own (-o); the original plans stay untouched.")
    if plans_path(name, out_name).exists() and not overwrite:
        raise NnunetTransferError(f"{plans_path(name, out_name)} exists; pass --overwrite to replace it.")
    # a hub file keeps its cache name (snapshots/<commit>/<file>), not the blob its symlink points to
    local = resolved.path.absolute() if resolved.is_hub else ckpt.path
    block = make_transfer_block(str(local), rules, strategy, checkpoint_sha256=resolved.sha256,
                                checkpoint_origin=resolved.pinned,
                                source_dataset=ckpt.source_dataset, source_configuration=ckpt.configuration,
                                configurations=usable, attached_to=plans_name)
    out = {**plans, "plans_name": out_name, TRANSFER_KEY: block.block()}
    return write_plans(update_schedule(out, schedule) if schedule else out, name)
