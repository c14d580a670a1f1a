"""Automatic findings: sentences only where a number clearly crosses a threshold, each with its numbers.

Every function here reads the plain-data diagnostics (``diagnostics.json``'s content) and returns
sentences; nothing is computed twice. The thresholds are deliberately wide: a finding should be
something a reader would also see at a glance in the tables, not noise between two random
initialisations.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# transferred / fresh activation or logit SD beyond this factor (either way)
SD_RATIO = 4.0
# a stage whose outputs are at least this often <= 0 after the nonlinearity is mostly clipped
NONPOSITIVE = 0.95
# ... or at least this many more often than the fresh network's (a fresh stage after InstanceNorm and
# LeakyReLU is near 50 %): a stage whose features the target's first batches mostly switch off
NONPOSITIVE_EXCESS = 0.10
# one class predicted for at least this fraction of the batch's voxels
SINGLE_CLASS = 0.99
# mean gradient norm of a part, transferred / fresh, beyond this factor (either way): a part that
# learns at a third (or three times) of the fresh network's pace in the first epoch
GRADIENT_RATIO = 3.0
# loss units (nnU-Net's Dice + CE, Dice counted negative): mean of the last quarter of iterations
LOSS_GAP = 0.1
# pseudo-Dice (nnU-Net's EMA of the foreground Dice) at the last epoch both runs reached
DICE_GAP = 0.05


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def _factor(r: float) -> str:
    return f"{r:.1f}x" if r >= 1 else f"1/{1 / r:.1f}" if r > 0 else "0x"


def _beyond(r: float | None, limit: float) -> bool:
    return r is not None and (r >= limit or r <= 1 / limit)


def activation_findings(stages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Stages whose transferred activations are SD_RATIO x larger or smaller than the fresh
    network's, or clipped by the nonlinearity far more often than the fresh network's (mostly, or
    NONPOSITIVE_EXCESS more)."""
    out = []
    for row in stages:
        t, f = row["transferred"], row["fresh"]
        if t["mean"] is None or t["sd"] is None:  # NaN / inf became None in the plain data
            out.append(f"{row['stage']} activations of the transferred network are not finite (NaN or inf).")
            continue
        r = ratio(t["sd"], f["sd"])
        if _beyond(r, SD_RATIO):
            out.append(f"{row['stage']} activations {_factor(r)} the fresh network's SD "
                       f"({t['sd']:.3g} vs {f['sd']:.3g}).")
        clipped = t["nonpositive"] >= NONPOSITIVE > f["nonpositive"] or \
            t["nonpositive"] >= f["nonpositive"] + NONPOSITIVE_EXCESS
        if f["nonpositive"] is not None and clipped:
            out.append(f"{row['stage']}: {100 * t['nonpositive']:.1f} % of the activations are <= 0 after the "
                       f"nonlinearity (fresh network: {100 * f['nonpositive']:.1f} %).")
    return out


def head_findings(head: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A head that predicts one class nearly everywhere while the reference has others, and
    logits far larger or smaller than the fresh network's."""
    out = []
    t, f = head["transferred"], head["fresh"]
    if t["logit_sd"] is None:
        return ["head logits of the transferred network are not finite (NaN or inf)."]
    for c, fraction in enumerate(t["predicted_fraction"]):
        reference = t["reference_fraction"][c] if t.get("reference_fraction") else None
        if fraction is not None and fraction >= SINGLE_CLASS and (reference is None or reference < SINGLE_CLASS):
            also = f"; the reference has {100 * reference:.1f} % {t['classes'][c]}" if reference is not None else ""
            out.append(f"head predicts class {c} ({t['classes'][c]}) for {100 * fraction:.1f} % of voxels at the "
                       f"first batch{also} (fresh network: {100 * f['predicted_fraction'][c]:.1f} %).")
    r = ratio(t["logit_sd"], f["logit_sd"])
    if _beyond(r, SD_RATIO):
        out.append(f"head logits {_factor(r)} the fresh network's SD ({t['logit_sd']:.3g} vs {f['logit_sd']:.3g}).")
    return out


def gradient_findings(mean_by_part: Mapping[str, Mapping[str, float | None]], iterations: int) -> list[str]:
    """Parts whose mean gradient norm differs GRADIENT_RATIO x from the fresh network's, and parts
    that got no gradient at all (a frozen encoder)."""
    out = []
    for part, pair in mean_by_part.items():
        t, f = pair.get("transferred"), pair.get("fresh")
        if t == 0:
            out.append(f"{part} received no gradient in the {iterations} iteration(s) (frozen by the strategy).")
            continue
        r = ratio(t, f)
        if _beyond(r, GRADIENT_RATIO):
            out.append(f"{part} gradient norm {_factor(r)} the fresh network's (mean over {iterations} "
                       f"iteration(s): {t:.3g} vs {f:.3g}).")
    return out


def tail_mean(values: Sequence[float | None]) -> float | None:
    """Mean of the last quarter (at least one) of the finite values, or None."""
    finite = [v for v in values if v is not None]
    if not finite:
        return None
    tail = finite[-max(1, len(finite) // 4):]
    return sum(tail) / len(tail)


def loss_findings(losses: Mapping[str, Sequence[float | None]]) -> list[str]:
    """The loss at the end of the diagnostic training, transferred vs fresh, when they are LOSS_GAP apart."""
    t, f = tail_mean(losses.get("transferred", [])), tail_mean(losses.get("fresh", []))
    if t is None or f is None or abs(t - f) < LOSS_GAP:
        return []
    n = max(1, len(losses["transferred"]) // 4)
    side = "higher" if t > f else "lower"
    return [f"training loss over the last {n} iteration(s) is {side} than the fresh network's ({t:.3f} vs {f:.3f})."]


def curve_findings(curves: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """The pseudo-Dice of the fine-tuning run against the baseline at the last epoch both reached,
    when they are DICE_GAP apart; a fine-tuning whose pseudo-Dice never left 0."""
    ft, base = curves.get("finetune"), curves.get("baseline")
    out = []
    if ft and ft.get("ema_fg_dice") and all(v == 0 for v in ft.get("mean_fg_dice") or [1]):
        out.append(f"the fine-tuning run's pseudo-Dice is 0 at every one of its {len(ft['mean_fg_dice'])} epoch(s).")
    if ft and base and ft.get("ema_fg_dice") and base.get("ema_fg_dice"):
        e = min(len(ft["ema_fg_dice"]), len(base["ema_fg_dice"])) - 1
        a, b = ft["ema_fg_dice"][e], base["ema_fg_dice"][e]
        if a is not None and b is not None and abs(a - b) >= DICE_GAP:
            out.append(f"at epoch {e} the fine-tuning run's pseudo-Dice (moving average) is {a:.3f}, the "
                       f"baseline's {b:.3f}.")
    return out


def findings(result: Mapping[str, Any]) -> list[str]:
    """Every finding for a diagnostics result (the dict written to diagnostics.json)."""
    first = result["first_batch"]
    gradients = result["gradients"]
    return (activation_findings(first["stages"]) + head_findings(first["head"])
            + gradient_findings(gradients["mean_by_part"], gradients["iterations"])
            + loss_findings(gradients["loss"]) + curve_findings(result.get("curves") or {}))
