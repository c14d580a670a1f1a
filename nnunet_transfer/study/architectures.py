"""Studies over several architectures: sources planned like their own checkpoint.

By default every arm of a study trains in one architecture, the shared plans'. A source given as a
checkpoint with ``plan = "like_checkpoint"`` has its targets planned like that checkpoint instead
(:func:`nnunet_transfer.planning.like_checkpoint.plan_like_checkpoint`: its network class and
kwargs, patch and batch size, and the spacing rule), so that a zoo of pretrained networks (say
nnssl's ResEnc-L and Primus-M) is compared, each fine-tuned in its own architecture.

An *architecture* here is what such a plan is made of: the network class with its kwargs, the
patch and batch size, and the spacing rule as resolved for the checkpoint (the source's
``spacing``, default by checkpoint kind, with the pretraining's spacing). Sources whose
checkpoints agree on all of it share one plan. Its key, ``<network class>_<first 8 hex digits of
the SHA-256 of that block as canonical JSON>`` (e.g. ``ResidualEncoderUNet_3f9c2a1b``), names its
plans (``<plans>_<key>``), its plan step (``plan/<key>``) and its runs' step ids
(``train/<target>/<key>/<init>/...``); the shared plans have no key (``None``), so a study
without ``plan = "like_checkpoint"`` keeps its step ids and plans names. The scratch baseline is
trained in every architecture the study uses, and each arm is compared with scratch of its own.

A checkpoint that cannot describe its network, or one of another dimensionality than the study's
configuration, is refused when the study's steps are made; a target whose channels it cannot
feed, before anything runs (:func:`check_like_checkpoint_sources`). Errors name the source.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.layout import resolve_dataset
from nnunet_transfer.planning.like_checkpoint import (CheckpointPlan, check_channels, check_configuration,
                                                      describe_checkpoint, spacing_rule_of)
from nnunet_transfer.plans_blocks import TransferRuleOptions
from nnunet_transfer.study.spec import Source, Study, slug

LIKE_CHECKPOINT = "like_checkpoint"


@dataclass(frozen=True)
class Architecture:
    """One like-checkpoint plan of a study: ``key`` (step ids, plans name), ``label`` (the table),
    the ``checkpoint`` its targets are planned like (that of its first source) and its sources' keys."""

    key: str
    label: str
    checkpoint: Path
    sources: tuple[str, ...]


_described: dict[tuple, CheckpointPlan] = {}  # (path, size, mtime): a checkpoint is read once per process


def checkpoint_file(study: Study, source: Source) -> Path:
    """The file of an external source: its path, or a hub reference's file recorded when the study started."""
    if isinstance(source.checkpoint, Path):
        return source.checkpoint
    from nnunet_transfer.study.sources import external_checkpoint  # sources.py checks with this module
    return Path(external_checkpoint(study, source).path)


def _describe(study: Study, source: Source) -> CheckpointPlan:
    path = checkpoint_file(study, source)
    try:
        stat = path.stat()
        ident = (str(path), stat.st_size, stat.st_mtime_ns)
    except OSError:
        raise NnunetTransferError(f"source {source.label!r} has plan = \"like_checkpoint\" but its checkpoint {path} "
                                  f"does not exist (a checkpoint is relative to the study file)") from None
    if ident not in _described:
        try:
            _described[ident] = describe_checkpoint(path)
        except NnunetTransferError as e:
            raise NnunetTransferError(f"source {source.label!r} (plan = \"like_checkpoint\"): {e}") from None
    return _described[ident]


def architecture_block(ckpt: CheckpointPlan, spacing: Any = None) -> dict[str, Any]:
    """What a plan like ``ckpt`` is made of: network class and kwargs, patch and batch size, and the
    spacing rule ``spacing`` (a source's ``spacing``; None: the checkpoint's default) as resolved for
    it. Equal blocks make one plan. Raises NnunetTransferError for a rule the checkpoint cannot give."""
    cfg = ckpt.configuration_dict
    rule = spacing_rule_of(ckpt, list(spacing) if isinstance(spacing, tuple) else spacing)
    return {"architecture": cfg.get("architecture"), "patch_size": [int(p) for p in cfg["patch_size"]],
            "batch_size": cfg.get("batch_size"), "spacing_rule": rule.rule, "fixed_spacing": rule.fixed,
            "pretraining_spacing": rule.pretraining_spacing, "may_fall_back": rule.may_fall_back}


def _class_name(architecture: dict[str, Any] | None) -> str:
    """The network class without its module; our ``TransferPrimus`` is nnssl's Primus, named as its papers do."""
    return str((architecture or {}).get("network_class_name") or "network").rpartition(".")[2].removeprefix(
        "Transfer")


def architecture_key(block: dict[str, Any]) -> str:
    """``<network class>_<8 hex digits>``: the short class name and the block's hash."""
    text = json.dumps(block, sort_keys=True, default=str)
    return f"{slug(_class_name(block.get('architecture')))}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _label(ckpt: CheckpointPlan) -> str:
    name = _class_name(ckpt.configuration_dict["architecture"])
    nnssl = (ckpt.metadata or {}).get("nnssl_architecture")
    return f"{name} (nnssl {nnssl})" if nnssl and nnssl != name else name


def like_checkpoint_architectures(study: Study) -> dict[str, Architecture]:
    """Source key -> its :class:`Architecture`, for every source with ``plan = "like_checkpoint"``
    (reads each checkpoint once per process). Raises NnunetTransferError naming the source when its
    checkpoint is missing, does not describe its network (a bare state dict) or has another
    dimensionality than the study's configuration, or a spacing rule it cannot give."""
    found: dict[str, tuple[Path, str, list[str]]] = {}
    of_source: dict[str, str] = {}
    for source in (s for s in study.sources if s.plan == LIKE_CHECKPOINT):
        ckpt = _describe(study, source)
        try:
            check_configuration(ckpt, study.configuration)
            key = architecture_key(architecture_block(ckpt, source.spacing))
        except NnunetTransferError as e:
            raise NnunetTransferError(f"source {source.label!r} (plan = \"like_checkpoint\"): {e}") from None
        found.setdefault(key, (ckpt.path, _label(ckpt), []))[2].append(source.key)
        of_source[source.key] = key
    labels = [label for _, label, _ in found.values()]
    archs = {key: Architecture(key, label if labels.count(label) == 1 else f"{label} {key.rpartition('_')[2]}",
                               path, tuple(sources)) for key, (path, label, sources) in found.items()}
    return {source: archs[key] for source, key in of_source.items()}


def source_architecture(study: Study, source: Source) -> str | None:
    """The architecture key a source is fine-tuned in; None for the shared plans."""
    return like_checkpoint_architectures(study)[source.key].key if source.plan == LIKE_CHECKPOINT else None


def architectures_used(study: Study) -> list[str | None]:
    """The study's architectures in order: the shared plans (None) when a source uses them, then each
    like-checkpoint architecture in the order of its first source."""
    shared = [None] if any(s.plan != LIKE_CHECKPOINT for s in study.sources) else []
    return shared + list(dict.fromkeys(a.key for a in like_checkpoint_architectures(study).values()))


def architecture(study: Study, key: str) -> Architecture:
    return next(a for a in like_checkpoint_architectures(study).values() if a.key == key)


def architecture_label(study: Study, key: str | None) -> str:
    """The table's name of an architecture: ``shared plans (<planner>)``, or the checkpoint's network
    class, with nnssl's name for it (``ResidualEncoderUNet (nnssl ResEncL)``)."""
    return f"shared plans ({study.planner})" if key is None else architecture(study, key).label


def architecture_plans(study: Study, key: str | None) -> str:
    """The plans an architecture's runs start from: the study's, or ``<plans>_<key>``."""
    return study.plans if key is None else f"{study.plans}_{key}"


def plan_step_id(key: str | None) -> str:
    return "plan" if key is None else f"plan/{key}"


def check_like_checkpoint_sources(study: Study) -> None:
    """Before anything runs: every like-checkpoint source's checkpoint describes its network, has
    the study's dimensionality and can feed every target's input channels under its transfer rules.
    Raises NnunetTransferError naming the source and the target."""
    archs = like_checkpoint_architectures(study)
    for source in (s for s in study.sources if s.key in archs):
        ckpt = _describe(study, source)
        rules = TransferRuleOptions(**source.rules).rules()
        for target in study.targets:
            try:
                check_channels(ckpt, resolve_dataset(target.dataset), rules)
            except NnunetTransferError as e:
                raise NnunetTransferError(f"source {source.label!r} (plan = \"like_checkpoint\") cannot be "
                                          f"fine-tuned on target {target.label!r}: {e}") from None
