"""Which source channel feeds each target input channel, which source class each target class keeps.

A mapping is written by the user by name (``{"T1": "T1", "FLAIR": null}``, target -> source) or as
``"auto"`` (same names, case-insensitive); either side may also be given by index (``"0"``). It is
resolved here against the names the checkpoint and the target dataset declare into one list: for
every target index, the source index or None (None: the target's unmapped rule). Pure Python; the
tensors are changed in :mod:`nnunet_transfer.transfer.adapt`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.rules import AUTO, TransferRules


def channel_names_of(dataset_json: Mapping[str, Any] | None) -> dict[int, str] | None:
    """Input channel index -> name of a dataset.json (``channel_names``, or the older ``modality``)."""
    names = (dataset_json or {}).get("channel_names", (dataset_json or {}).get("modality"))
    return {int(k): str(v) for k, v in names.items()} if isinstance(names, Mapping) and names else None


def class_names_of(dataset_json: Mapping[str, Any] | None) -> dict[int, str] | None:
    """Network output index -> label name of a dataset.json's ``labels`` (nnU-Net's labels are the
    consecutive integers 0 ... K-1, so the label value is the output index). Raises
    NnunetTransferError for region-based labels (a list of values): their outputs are regions, not
    classes, and no class can be kept."""
    labels = (dataset_json or {}).get("labels")
    if not isinstance(labels, Mapping) or not labels:
        return None
    out = {}
    for name, value in labels.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise NnunetTransferError(f"Label {name!r} is a region ({value!r}): the heads of region-based training "
                                      f"predict regions, not classes, so keep_classes cannot be used.")
        out[value] = str(name)
    return out


def _index(key: Any, names: Mapping[int, str] | None, side: str, what: str) -> int:
    """The index a user's name or index string stands for on one side."""
    text = str(key).strip()
    if names:
        by_name = {n.lower(): i for i, n in names.items()}
        if text.lower() in by_name:
            return by_name[text.lower()]
    if text.isdigit() and (names is None or int(text) in names):
        return int(text)
    listed = ", ".join(f"{i} {n!r}" for i, n in sorted(names.items())) if names else "no names (use an index)"
    noun = "channel" if "channel" in what else "class"
    raise NnunetTransferError(f"{what}: the {side} has no {noun} {text!r}; it has {listed}.")


def resolve_mapping(spec: str | Mapping[str, Any], source: Mapping[int, str] | None, target: Mapping[int, str],
                    what: str) -> list[int | None]:
    """For each target index (0 ... len(target)-1) the source index that feeds it, or None.

    ``spec``: ``"auto"`` (target names matched to source names, case-insensitive) or a mapping
    target name / index -> source name / index (None, or left out: unmapped). ``what`` names the
    option in messages (``"channel_map"``). Raises NnunetTransferError naming the unknown name
    and what each side has, or when ``auto`` pairs nothing.
    """
    out: list[int | None] = [None] * len(target)
    if isinstance(spec, str):
        if spec != AUTO:
            raise NnunetTransferError(f"{what} is {spec!r}; give '{AUTO}' or target=source pairs.")
        if not source:
            raise NnunetTransferError(f"{what} = '{AUTO}' needs the checkpoint's names, and it declares none; "
                                      f"give target=source pairs with source indices (e.g. 0).")
        by_name = {n.lower(): i for i, n in source.items()}
        for i, name in sorted(target.items()):
            out[i] = by_name.get(name.lower())
        if all(s is None for s in out):
            raise NnunetTransferError(
                f"{what} = '{AUTO}': no target name {sorted(target.values())} is a checkpoint name "
                f"{sorted(source.values())}; give target=source pairs.")
        return out
    if not isinstance(spec, Mapping) or not spec:
        raise NnunetTransferError(f"{what} must be '{AUTO}' or a non-empty mapping of target to source, got {spec!r}.")
    for t, s in spec.items():
        i = _index(t, target, "target", what)
        out[i] = None if s is None else _index(s, source, "checkpoint", what)
    return out


def describe_mapping(sources: list[int | None], source: Mapping[int, str] | None, target: Mapping[int, str],
                     unmapped: str) -> str:
    """``T1<-T1, FLAIR<-zero`` for the report."""
    def name(names, i):
        return (names or {}).get(i, str(i))
    return ", ".join(f"{name(target, i)}<-{unmapped if s is None else name(source, s)}" for i, s in enumerate(sources))


@dataclass(frozen=True)
class NameMaps:
    """A transfer's resolved channel and class mappings (None: not asked for) and their report text."""

    channel_sources: list[int | None] | None = None
    channel_how: str | None = None
    head_rows: list[int | None] | None = None
    head_how: str | None = None


def source_dataset_json(checkpoint: Mapping[str, Any], metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The channel names and labels a checkpoint declares: our block's, else those of the
    dataset.json in an nnU-Net checkpoint's ``init_args``; empty when it declares none."""
    if metadata and (metadata.get("channel_names") or metadata.get("labels")):
        return {"channel_names": metadata.get("channel_names"), "labels": metadata.get("labels")}
    init = checkpoint.get("init_args")
    dataset_json = init.get("dataset_json") if isinstance(init, Mapping) else None
    return dict(dataset_json) if isinstance(dataset_json, Mapping) else {}


def resolve_name_maps(rules: TransferRules, source_json: Mapping[str, Any],
                      target_json: Mapping[str, Any] | None) -> NameMaps:
    """Resolve the rules' ``channel_map`` and ``keep_classes`` against the checkpoint's names
    (``source_json``) and the target dataset.json. Raises NnunetTransferError naming the option
    when the target's names are unknown, a name does not exist, or classes are kept while the
    decoder is not loaded (a head without its decoder would predict from other features)."""
    if rules.channel_map is None and rules.keep_classes is None:
        return NameMaps()
    if not target_json:
        raise NnunetTransferError("channel_map / keep_classes need the target's dataset.json, which was not given.")
    out: dict[str, Any] = {}
    if rules.channel_map is not None:
        source, target = channel_names_of(source_json), channel_names_of(target_json)
        if not target:
            raise NnunetTransferError("channel_map: the target dataset.json declares no channel_names.")
        sources = resolve_mapping(rules.channel_map, source, target, "channel_map")
        out["channel_sources"] = sources
        out["channel_how"] = "input channels by name: " + describe_mapping(sources, source, target,
                                                                          rules.unmapped_channels)
    if rules.keep_classes is not None:
        if rules.load == "encoder":
            raise NnunetTransferError("keep_classes keeps head rows, which read the decoder's features: it needs "
                                      "load = encoder+decoder or all-but-head, not encoder.")
        source, target = class_names_of(source_json), class_names_of(target_json)
        if not target:
            raise NnunetTransferError("keep_classes: the target dataset.json declares no labels.")
        rows = resolve_mapping(rules.keep_classes, source, target, "keep_classes")
        out["head_rows"] = rows
        out["head_how"] = "head rows kept: " + describe_mapping(rows, source, target, "initialised")
    return NameMaps(**out)
