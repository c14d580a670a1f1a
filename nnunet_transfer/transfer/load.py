"""Match a source state dict to a target network and load what fits, with a full report.

Keys are matched by name after wrapper prefixes are removed. Which part a key belongs to is
read from the model's own declaration (``key_to_encoder`` / ``key_to_stem`` of
dynamic_network_architectures); segmentation heads are never loaded. Aliases of one tensor
(``convs.0.conv`` and ``convs.0.all_modules.0``, ``decoder.encoder.*``) are handled once.
A shape mismatch is offered to ``adapters`` (functions that may change a source tensor into
the target shape and say how); when none applies, the entry is skipped with the reason.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.adapt import keep_rows
from nnunet_transfer.transfer.adapters import make_adapter
from nnunet_transfer.transfer.mapping import NameMaps
from nnunet_transfer.transfer.rules import TransferRules
from nnunet_transfer.transfer.report import (ADAPTED, INITIALISED, LOADED, SKIPPED, ParameterRecord,
                                             TransferReport)

HEAD_PREFIXES = ("decoder.seg_layers",)
LOAD_PARTS: dict[str, tuple[str, ...]] = {  # keys: nnunet_transfer.names.LOAD_RULES
    "encoder": ("encoder",),
    "encoder+decoder": ("encoder", "decoder"),
    "all-but-head": ("encoder", "decoder", "other"),
}
# adapter(target_key, source_tensor, target_tensor) -> (new_tensor, how) or None when it does not apply
Adapter = Callable[[str, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, str] | None"]


class TransferError(NnunetTransferError):
    """Strict transfer failed; the message lists the offending keys and shapes (never values)."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain network inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def model_part(model: nn.Module, key: str, head_prefixes: Sequence[str] = HEAD_PREFIXES) -> str:
    """'encoder', 'decoder', 'head' or 'other' for a state-dict key, from the model's declared keys."""
    if any(key == p or key.startswith(p + ".") for p in head_prefixes):
        return "head"
    encoder_keys = [k for k in (getattr(model, "key_to_encoder", None), getattr(model, "key_to_stem", None)) if k]
    encoder_keys = encoder_keys or ["encoder"]
    if any(key.startswith(p + ".") for p in encoder_keys):
        return "encoder"
    if key.startswith("decoder."):
        return "decoder"
    return "other"


def canonical_entries(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Persistent parameters and buffers listed once, and a map from every state-dict key
    (aliases included) to its canonical name."""
    canonical: dict[str, torch.Tensor] = {}
    by_identity: dict[int, str] = {}
    state = model.state_dict(keep_vars=True)
    # non-persistent buffers (a transformer's rotary embedding) are computed, not weights: not entries
    buffers = [(n, t) for n, t in model.named_buffers() if n in state]
    for name, tensor in list(model.named_parameters()) + buffers:
        if id(tensor) not in by_identity:
            by_identity[id(tensor)] = name
            canonical[name] = tensor
    alias_of: dict[str, str] = {}
    for key, tensor in state.items():
        alias_of[key] = by_identity.get(id(tensor), key)
        if key not in canonical and alias_of[key] == key:  # a persistent buffer not seen above
            canonical[key] = tensor
    return canonical, alias_of


_DECODER_INDEXED = re.compile(r"^(decoder\.(?:stages|transpconvs|seg_layers))\.(\d+)\.(.*)$")
_ENCODER_STAGE = re.compile(r"^encoder\.stages\.(\d+)\.")


def count_stages(keys: Iterable[str]) -> int:
    """Number of encoder stages named in state-dict keys (0 if none)."""
    found = {int(m.group(1)) for m in map(_ENCODER_STAGE.match, keys) if m}
    return max(found) + 1 if found else 0


def align_decoder_stages(source_keys: Iterable[str], target_keys: Iterable[str]) -> dict[str, str]:
    """Map each source key to the name it should be matched under.

    dynamic_network_architectures numbers decoder stages from the bottleneck up, encoder stages
    from full resolution down. When source and target have a different number of stages,
    decoder stage j of the source sits at the resolution of target stage j + (T - S). A source
    stage without a counterpart keeps a name that matches nothing (``unmatched-depth:...``), so it
    is reported as unused.
    """
    source_keys = list(source_keys)
    s, t = count_stages(source_keys), count_stages(target_keys)
    if not s or not t or s == t:
        return {k: k for k in source_keys}
    out = {}
    for key in source_keys:
        m = _DECODER_INDEXED.match(key)
        if m is None:
            out[key] = key
            continue
        j = int(m.group(2)) + (t - s)
        out[key] = f"{m.group(1)}.{j}.{m.group(3)}" if j >= 0 else f"unmatched-depth:{key}"
    return out


def match_state_dict(source: Mapping[str, torch.Tensor], model: nn.Module, load: str = "encoder+decoder",
                     adapters: Sequence[Adapter] = (), head_prefixes: Sequence[str] = HEAD_PREFIXES,
                     align_depth: bool = True, maps: NameMaps = NameMaps()
                     ) -> tuple[TransferReport, dict[str, torch.Tensor]]:
    """Decide, without changing the model, what each target entry receives.

    With ``align_depth`` a source with another number of stages has its decoder stages matched
    by resolution (see ``align_decoder_stages``); encoder stages match by index from the top.
    An adapter's ``forced_keys`` go through it even when their shapes agree. Heads are skipped
    unless ``maps.head_rows`` keeps some classes' rows (and the decoder is loaded).

    Returns the report and the new tensors keyed by canonical target name. Raises
    NnunetTransferError for an unknown ``load`` value.
    """
    if load not in LOAD_PARTS:
        raise NnunetTransferError(f"Unknown load rule {load!r}; choose one of {', '.join(LOAD_PARTS)}.")
    model = unwrap_model(model)
    selected = LOAD_PARTS[load]
    targets, alias_of = canonical_entries(model)
    renamed = align_decoder_stages(source.keys(), alias_of.keys()) if align_depth else {k: k for k in source}
    source_by_name: dict[str, tuple[str, torch.Tensor]] = {}
    for key, tensor in source.items():
        source_by_name.setdefault(alias_of.get(renamed[key], renamed[key]), (key, tensor))

    forced = {k for a in adapters for k in getattr(a, "forced_keys", ())}
    records, updates, consumed = [], {}, set()
    for name, target in targets.items():
        part = model_part(model, name, head_prefixes)
        found = source_by_name.get(name)
        rec = ParameterRecord(name=name, shape=list(target.shape), part=part, status=INITIALISED,
                              aliases=sorted(k for k, c in alias_of.items() if c == name and k != name))
        if found is not None:
            rec.source_key, rec.source_shape = found[0], list(found[1].shape)
        if found is None:
            rec.reason = "no tensor of this name in the source"
        elif part == "head" and (maps.head_rows is None or "decoder" not in selected):
            rec.status = SKIPPED
            rec.reason = ("heads (seg_layers) are never loaded into a target" if maps.head_rows is None
                          else f"keep_classes needs the decoder, not loaded by load={load}")
        elif part == "head":
            if found[1].shape[1:] == target.shape[1:] and found[1].shape[0] > max(
                    (r for r in maps.head_rows if r is not None), default=-1):
                rec.status, rec.how = ADAPTED, maps.head_how
                updates[name] = keep_rows(found[1], target, maps.head_rows)
            else:
                rec.status = SKIPPED
                rec.reason = (f"keep_classes: source head {tuple(found[1].shape)} does not fit target "
                              f"{tuple(target.shape)}")
        elif part not in selected:
            rec.status, rec.reason = SKIPPED, f"{part} not selected by load={load}"
        elif tuple(found[1].shape) == tuple(target.shape) and name not in forced:
            rec.status = LOADED
            updates[name] = found[1]
        else:
            adapted = next((r for r in (a(name, found[1], target) for a in adapters) if r is not None), None)
            if adapted is not None and tuple(adapted[0].shape) == tuple(target.shape):
                rec.status, rec.how = ADAPTED, adapted[1]
                updates[name] = adapted[0]
            else:
                rec.status = SKIPPED
                rec.reason = f"shape mismatch: source {tuple(found[1].shape)} vs target {tuple(target.shape)}"
        if rec.status in (LOADED, ADAPTED):
            consumed.add(name)
        records.append(rec)

    unused = {key: list(t.shape) for name, (key, t) in source_by_name.items() if name not in consumed}
    return TransferReport(records=records, unused_source=unused, load=load), updates


def _sample(keys: Iterable[str], n: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def require_encoder_transferred(report: TransferReport, source_keys: Iterable[str]) -> None:
    """Raise TransferError when the report loads or adapts no encoder entry: such a transfer
    leaves the encoder as initialised, and the fine-tuning would be training from scratch. The
    message names the likely cause from what matched by name."""
    encoder = [r for r in report.records if r.part == "encoder"]
    if not encoder or any(r.status in (LOADED, ADAPTED) for r in encoder):
        return
    named = [r for r in encoder if r.source_key is not None]
    target_keys = [r.name for r in encoder]
    if not named:
        cause = (f"no encoder key of the target exists in the checkpoint: another architecture or another key "
                 f"layout (checkpoint keys: {_sample(source_keys)}; target encoder keys: {_sample(target_keys)})")
    else:
        first = named[0]
        cause = (f"{len(named)} of {len(encoder)} encoder keys exist in the checkpoint but none fits "
                 f"(e.g. {first.name}: {first.reason}): another network size or dimensionality")
    raise TransferError(f"The checkpoint loads or adapts no encoder weight of the target ({len(encoder)} encoder "
                        f"entries, 0 loaded, 0 adapted): {cause}. Fine-tuning from it would train from scratch. Use "
                        f"a checkpoint of a network that fits, or pass --allow-no-encoder-weights (transfer "
                        f"block: allow_no_encoder_weights = true) to accept it.")


def transfer_weights(source: Mapping[str, torch.Tensor], model: nn.Module, load: str = "encoder+decoder",
                     strict: bool = False, adapters: Sequence[Adapter] = (),
                     head_prefixes: Sequence[str] = HEAD_PREFIXES,
                     require_encoder: bool = False, maps: NameMaps = NameMaps()) -> TransferReport:
    """Load the matching source tensors into ``model`` in place and return the report.

    Parameters keep their identity (an optimizer built before still holds them). With
    ``strict=True`` every selected encoder entry must be loaded or adapted, with
    ``require_encoder=True`` at least one; otherwise TransferError lists the offending keys and
    shapes and the model is left unchanged.
    """
    report, updates = match_state_dict(source, model, load, adapters, head_prefixes, maps=maps)
    if require_encoder:
        require_encoder_transferred(report, source.keys())
    if strict:
        missing = [r for r in report.records if r.part == "encoder" and r.status not in (LOADED, ADAPTED)]
        if missing:
            lines = [f"  {r.name} {tuple(r.shape)}: {r.reason}" + (f" (source {r.source_key} {tuple(r.source_shape)})"
                                                                 if r.source_key else "") for r in missing[:20]]
            more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise TransferError(f"Strict transfer: {len(missing)} encoder entries were not loaded:\n"
                                + "\n".join(lines) + more)
    targets, _ = canonical_entries(unwrap_model(model))
    with torch.no_grad():
        for name, value in updates.items():
            targets[name].copy_(value.to(dtype=targets[name].dtype, device=targets[name].device))
    return report


def transfer_with_rules(source: Mapping[str, torch.Tensor], model: nn.Module, rules: TransferRules,
                        maps: NameMaps = NameMaps(), tokens: tuple[list[int], str] | None = None) -> TransferReport:
    """``transfer_weights`` with the adaptations the rules ask for (inflation, input channels,
    kernel size, the resolved channel / class ``maps``, a transformer's positional embedding from
    the source's ``tokens`` grid and order) and their load / strict settings."""
    return transfer_weights(source, model, load=rules.load or "encoder+decoder", strict=rules.strict,
                            adapters=[make_adapter(unwrap_model(model), rules, maps, tokens)],
                            require_encoder=not rules.allow_no_encoder_weights, maps=maps)


def preview_with_rules(source: Mapping[str, torch.Tensor], model: nn.Module, rules: TransferRules,
                       maps: NameMaps = NameMaps(), tokens: tuple[list[int], str] | None = None) -> TransferReport:
    """What ``transfer_with_rules`` would do, without changing the model; refuses what it refuses
    for want of encoder weights (``strict`` is reported, not raised)."""
    report = match_state_dict(source, model, rules.load or "encoder+decoder",
                              [make_adapter(unwrap_model(model), rules, maps, tokens)], maps=maps)[0]
    if not rules.allow_no_encoder_weights:
        require_encoder_transferred(report, source.keys())
    return report
