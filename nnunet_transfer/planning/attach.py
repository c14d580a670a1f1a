"""Attach a checkpoint to a target: a plans copy with a ``transfer`` block.

``nnUNetv2_train TARGET CONFIG FOLD -tr nnUNetTrainerFinetune -p <new plans>`` then needs no
extra flag. The copy keeps the ``data_identifier`` of every configuration, so the preprocessed
data of the original plans is reused.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.hub import ResolvedCheckpoint, resolve_checkpoint
from nnunet_transfer.io import sha256  # noqa: F401 - its home was here: importers of attach.sha256 keep working
from nnunet_transfer.layout import plans_path, resolve_dataset
from nnunet_transfer.planning.like_checkpoint import describe_contents
from nnunet_transfer.planning.plans_file import load_plans, write_plans
from nnunet_transfer.planning.preview import preview
from nnunet_transfer.plans_blocks import TRANSFER_KEY, Strategy, make_transfer_block, update_schedule
from nnunet_transfer.transfer.checkpoint import load_checkpoint
from nnunet_transfer.transfer.report import TransferReport
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
    ``train_subset``), in the same write. The checkpoint is read once and every configuration is
    previewed through the trainers' transfer driver (``transfer_from_checkpoint``), which alone
    decides compatibility and the default ``load``: a configuration it refuses is left out of the
    block's ``configurations``, and when that is every one, attach raises ``preview``'s error.
    Raises NnunetTransferError for a missing plans file, a checkpoint whose network cannot
    initialise any configuration of the plans (3D into 2D, input channels no rule maps, no encoder
    weight that loads or adapts), or an output name containing ``__`` (nnU-Net splits folder names
    on it).
    """
    rules = rules or TransferRules()
    Strategy().with_options(strategy or {}, num_epochs=10 ** 9)  # types and signs; epochs checked at training
    name = resolve_dataset(target)
    resolved = checkpoint if isinstance(checkpoint, ResolvedCheckpoint) else resolve_checkpoint(checkpoint)
    path = Path(resolved.path).resolve()
    loaded = load_checkpoint(path)  # read once: described here, matched by the driver below
    ckpt = describe_contents(loaded, path, allow_bare=True)  # a bare state dict of a compatible network works
    plans = load_plans(name, plans_name)
    reports: dict[str, TransferReport] = {}
    refused: dict[str, NnunetTransferError] = {}
    for configuration, cfg in plans["configurations"].items():
        if "patch_size" not in cfg:
            continue
        try:  # the trainers' own transfer path decides: what training would refuse is refused now
            reports[configuration] = preview(path, name, plans_name, configuration, rules, loaded=loaded)
        except NnunetTransferError as e:  # 3D into 2D, input channels no rule maps, no encoder weight loads
            refused[configuration] = e
    if not reports:
        if not refused:
            raise NnunetTransferError(f"Plans '{plans_name}' of {name} have no configuration with a patch size.")
        # 2D checkpoints inflate into 3D: the configuration of most dimensions refuses for the reason that matters
        raise refused[max(refused, key=lambda c: len(plans["configurations"][c]["patch_size"]))]
    usable = list(reports)
    rules = replace(rules, load=next(iter(reports.values())).load)  # the driver's default when unset
    out_name = output_plans_name or default_output_plans(plans_name, ckpt.source_dataset)
    if "__" in out_name or not PLANS_NAME.fullmatch(out_name):
        raise NnunetTransferError(f"Plans name {out_name!r} must use letters, digits, '_', '-', '.' and no '__'.")
    if out_name == plans_name:
        raise NnunetTransferError("The plans copy needs a name of its own (-o); the original plans stay untouched.")
    if plans_path(name, out_name).exists() and not overwrite:
        raise NnunetTransferError(f"{plans_path(name, out_name)} exists; pass --overwrite to replace it.")
    # a hub file keeps its cache name (snapshots/<commit>/<file>), not the blob its symlink points to
    local = Path(resolved.path).absolute() if resolved.is_hub else path
    block = make_transfer_block(str(local), rules, strategy, checkpoint_sha256=resolved.sha256,
                                checkpoint_origin=resolved.pinned,
                                source_dataset=ckpt.source_dataset, source_configuration=ckpt.configuration,
                                configurations=usable, attached_to=plans_name)
    out = {**plans, "plans_name": out_name, TRANSFER_KEY: block.block()}
    return write_plans(update_schedule(out, schedule) if schedule else out, name)
