"""Pretrain-then-plan: plan target datasets like an existing pretraining checkpoint."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

import nnunet_transfer
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from nnunet_transfer.layout import channel_names, preprocessed_dir, resolve_dataset
from nnunet_transfer.names import MODE_NNSSL
from nnunet_transfer.networks.build import has_deep_supervision
from nnunet_transfer.planning.nnunet_planner import ensure_fingerprint, one_worker_pool, plan_dataset, preprocess
from nnunet_transfer.planning.plans_file import resolved_configuration, write_plans
from nnunet_transfer.planning.shared import share_architecture, with_schedule
from nnunet_transfer.planning.spacing import (ResolvedSpacing, SpacingRule, apply_spacing_rule, normalization_note,
                                              parse_spacing_rule, resolve_spacing_rule)
from nnunet_transfer.plans_blocks import (SHARED_KEYS, SHARED_PLANS_KEY, TRANSFORMER_RECIPE, TrainingSchedule,
                                          parse_schedule)
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, extract_state_dict, load_checkpoint
from nnunet_transfer.transfer.compat import check_channels_adaptable
from nnunet_transfer.transfer.mapping import channel_names_of, resolve_mapping
from nnunet_transfer.transfer.rules import TransferRules


@dataclass(frozen=True)
class CheckpointPlan:
    """What a checkpoint says about the network it holds."""

    path: Path
    configuration: str
    configuration_dict: dict[str, Any]  # architecture, patch_size, batch_size (+ whatever else is known)
    input_channels: int | None
    channel_names: dict[str, str] | None
    source_dataset: str | None
    metadata: dict[str, Any] | None


def describe_checkpoint(path: str | Path, allow_bare: bool = False) -> CheckpointPlan:
    """Read the architecture of a checkpoint: our self-describing block, else nnU-Net's
    ``init_args`` (plans + configuration). With ``allow_bare`` a plain state dict is described by
    its first convolution only (dimensionality and input channels; no architecture). Raises
    NnunetTransferError if nothing describes the network."""
    path = Path(path).resolve()
    return describe_contents(load_checkpoint(path), path, allow_bare)


def describe_contents(checkpoint: Mapping[str, Any], path: Path, allow_bare: bool = False) -> CheckpointPlan:
    """:func:`describe_checkpoint` of contents already read from ``path`` (``load_checkpoint``)."""
    meta = checkpoint_metadata(checkpoint)
    if meta is not None:
        cfg = {"architecture": meta["architecture"], "patch_size": meta["patch_size"],
               "batch_size": meta["batch_size"], "spacing": meta.get("spacing")}
        return CheckpointPlan(path, meta["configuration"], cfg, meta.get("input_channels"),
                              meta.get("channel_names"), meta.get("source_dataset"), meta)
    init = checkpoint.get("init_args")
    if isinstance(init, dict) and isinstance(init.get("plans"), dict) and init.get("configuration"):
        plans = init["plans"]
        cfg = resolved_configuration(plans, init["configuration"])
        channels = (init.get("dataset_json") or {}).get("channel_names")
        return CheckpointPlan(path, init["configuration"], cfg, len(channels) if channels else None,
                              channels, plans.get("dataset_name"), None)
    if allow_bare:
        state = extract_state_dict(checkpoint)
        stems = [t for k, t in state.items() if t.ndim in (4, 5) and (".stages.0." in k or ".stem." in k)]
        stems = stems or [t for t in state.values() if t.ndim in (4, 5)]
        if stems:
            dims = stems[0].ndim - 2
            return CheckpointPlan(path, "2d" if dims == 2 else "3d_fullres", {"patch_size": [0] * dims},
                                  int(stems[0].shape[1]), None, path.stem, None)
    raise NnunetTransferError(
        f"Checkpoint {path} does not describe its network (no 'nnunet_transfer' block and no nnU-Net "
        f"'init_args'); it cannot be used to plan a dataset. Plan the targets with `nnunet_transfer plan`.")


def check_configuration(ckpt: CheckpointPlan, configuration: str | None) -> str:
    """The configuration to plan: the checkpoint's. A request of another dimensionality is refused."""
    if configuration is None or configuration == ckpt.configuration:
        return ckpt.configuration
    src_dims, dst_dims = len(ckpt.configuration_dict["patch_size"]), 2 if configuration == "2d" else 3
    if src_dims != dst_dims:
        raise NnunetTransferError(
            f"Checkpoint {ckpt.path.name} holds a {src_dims}D network ({ckpt.configuration}); targets cannot be "
            f"planned like it in a {dst_dims}D configuration ({configuration}). Use -c {ckpt.configuration}, or, "
            f"for 2D->3D inflation, plan the 3D study with `nnunet_transfer plan --twin-2d` and pretrain the 2D "
            f"source on its 2d_twin configuration.")
    return configuration


def check_channels(ckpt: CheckpointPlan, dataset: str, rules: TransferRules | None = None) -> None:
    """Refuse a target whose input channels the checkpoint's cannot feed: a ``channel_map``
    naming a channel that does not exist on either side, or, without one, a channel count that
    the ``input_channels`` rule does not map (N->1 sum / mean, 1->N, tile)."""
    rules = rules or TransferRules()
    channels = channel_names(dataset)
    if rules.channel_map is not None:
        source = channel_names_of({"channel_names": ckpt.channel_names}) if ckpt.channel_names else (
            {i: str(i) for i in range(ckpt.input_channels)} if ckpt.input_channels else None)
        try:
            resolve_mapping(rules.channel_map, source, {int(k): v for k, v in channels.items()}, "channel_map")
        except NnunetTransferError as e:
            raise NnunetTransferError(f"Checkpoint {ckpt.path.name} into {dataset}: {e}") from None
        return
    if ckpt.input_channels is None or len(channels) == ckpt.input_channels:
        return
    what = (f"{dataset} has {len(channels)} input channel(s) {list(channels.values())} but checkpoint "
            f"{ckpt.path.name} was trained on {ckpt.input_channels} {list((ckpt.channel_names or {}).values())}")
    check_channels_adaptable(ckpt.input_channels, len(channels), rules.input_channels,
                             f"{what} (map channels by name with --channel-map)")


def pretraining_normalization(ckpt: CheckpointPlan) -> list[str] | None:
    """The nnU-Net normalisation scheme names the pretraining used, where the checkpoint says:
    ``normalization`` (nnssl), ``normalization_schemes`` (ours; nnU-Net's configuration)."""
    meta = ckpt.metadata or {}
    names = meta.get("normalization") or meta.get("normalization_schemes") or \
        ckpt.configuration_dict.get("normalization_schemes")
    return [str(n) for n in names] if names else None


def spacing_rule_of(ckpt: CheckpointPlan, spacing: str | Sequence | SpacingRule | None) -> ResolvedSpacing:
    """The spacing rule targets planned like ``ckpt`` get for the requested ``spacing`` (see
    ``planning.spacing``; None: the checkpoint's default). Raises NnunetTransferError for a bad value."""
    rule = spacing if isinstance(spacing, SpacingRule) else parse_spacing_rule(spacing)
    nnssl = (ckpt.metadata or {}).get("mode") == MODE_NNSSL
    return resolve_spacing_rule(rule, ckpt.configuration_dict.get("spacing"), nnssl, ckpt.path.name)


def plan_like_checkpoint(checkpoint: str | Path, targets: Sequence[int | str], plans_name: str,
                         configuration: str | None = None, num_processes: int = 2,
                         run_preprocessing: bool = True, clean: bool = False,
                         schedule: dict | TrainingSchedule | None = None, progress: bool = True,
                         rules: TransferRules | None = None,
                         spacing: str | Sequence | SpacingRule | None = None) -> dict[str, Path]:
    """Plan and preprocess ``targets`` with the checkpoint's architecture, patch and batch size.

    ``spacing``: the spacing rule (``planning.spacing``): ``"checkpoint"`` (the pretraining's),
    ``"nnunet"`` (nnU-Net's own for each target), three numbers in mm in nnU-Net's image axis
    order (a fixed spacing), ``"none"`` (no case resampled), or None for the checkpoint's default
    (nnssl: ``checkpoint``; ours and nnU-Net's: ``nnunet``). The rule, the pretraining's spacing and
    normalisation are recorded in each target's ``shared_plans`` block and printed with the
    target's normalisation.

    Every target is checked (dataset exists, dimensionality, input channels the checkpoint can
    feed under ``rules``: its ``input_channels`` rule or ``channel_map``, as ``attach`` will; a
    spacing the rule can give) before any plans are written. Returns dataset name -> plans file.
    """
    rule = spacing if isinstance(spacing, SpacingRule) else parse_spacing_rule(spacing)  # before loading
    ckpt = describe_checkpoint(checkpoint)
    cfg_name = check_configuration(ckpt, configuration)
    resolved = spacing_rule_of(ckpt, rule)
    names = list(dict.fromkeys(resolve_dataset(t) for t in targets))
    for name in names:
        check_channels(ckpt, name, rules)
    # a transformer gets the transformer recipe unless the options say otherwise: one recipe for every arm
    recipe = {} if has_deep_supervision(ckpt.configuration_dict["architecture"]) else TRANSFORMER_RECIPE
    schedule = parse_schedule({**recipe, **parse_schedule(schedule or {}, "the schedule options").block()},
                              "the schedule options")
    template = {cfg_name: {k: ckpt.configuration_dict[k] for k in SHARED_KEYS}}
    provenance = {"reference_checkpoint": str(ckpt.path), "reference_dataset": ckpt.source_dataset,
                  "nnunet_transfer_version": nnunet_transfer.__version__}
    with one_worker_pool(num_processes):
        return _plan_and_write(names, cfg_name, template, provenance, plans_name, schedule, num_processes,
                               run_preprocessing, clean, progress, resolved, pretraining_normalization(ckpt))


def _plan_and_write(names: list[str], cfg_name: str, template: dict, provenance: dict, plans_name: str,
                    schedule: TrainingSchedule, num_processes: int, run_preprocessing: bool, clean: bool,
                    progress: bool, resolved: ResolvedSpacing, normalization: list[str] | None) -> dict[str, Path]:
    planned = {}
    for name in tqdm(names, desc="plan like checkpoint", disable=not progress):
        ensure_fingerprint(name, num_processes, clean=clean)
        plans, missing = share_architecture(plan_dataset(name, plans_name), template, provenance)
        if missing:
            raise NnunetTransferError(f"{name} cannot have the checkpoint's {cfg_name} configuration "
                                      f"(a 2D dataset only has '2d').")
        fingerprint = read_json(preprocessed_dir(name) / "dataset_fingerprint.json")
        plans, applied = apply_spacing_rule(plans, cfg_name, resolved, fingerprint, name)
        plans[SHARED_PLANS_KEY].update(applied.provenance(), pretraining_normalization=normalization)
        cfg = plans["configurations"][cfg_name]
        tqdm.write(f"{name}: {cfg_name} at spacing {_mm(cfg['spacing'])} (--spacing {applied.rule}: {applied.reason}; "
                   f"pretraining spacing {_mm(applied.pretraining_spacing)}); "
                   f"{normalization_note(cfg.get('normalization_schemes'), normalization)}")
        planned[name] = with_schedule(plans, schedule)
    written = {}
    for name, plans in tqdm(planned.items(), desc="preprocess", disable=not progress or not run_preprocessing):
        written[name] = write_plans(plans, name)
        if run_preprocessing:
            preprocess(name, plans_name, [cfg_name], num_processes)
    return written


def _mm(spacing: Sequence[float] | None) -> str:
    return "none recorded" if spacing is None else " x ".join(f"{float(s):g}" for s in spacing) + " mm"
