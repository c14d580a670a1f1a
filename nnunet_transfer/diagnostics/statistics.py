"""What a network does with one batch, and where its gradients go: pure torch, no nnU-Net.

Stages are read from the structure dynamic_network_architectures gives its U-Nets
(``PlainConvUNet``, ``ResidualEncoderUNet``): ``encoder.stem`` (residual encoders only),
``encoder.stages[i]``, ``decoder.stages[j]`` (``j = 0`` next to the bottleneck) and the heads
``decoder.seg_layers``. Every stage of these networks ends in its nonlinearity, so a stage's output
is what the next stage sees.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nnunet_transfer.transfer.load import canonical_entries, model_part, unwrap_model

HEAD = "head"
_ENCODER_STAGE = re.compile(r"^encoder\.stages\.(\d+)\.")
_DECODER_STAGE = re.compile(r"^decoder\.(?:stages|transpconvs)\.(\d+)\.")


@dataclass
class StageStats:
    """Activation statistics of one stage's output over a whole batch: mean, standard deviation,
    fraction of values <= 0 (after the nonlinearity: how much a leaky ReLU clips) and the output
    shape (batch and spatial size included)."""

    mean: float
    sd: float
    nonpositive: float
    shape: list[int]

    def to_dict(self) -> dict:
        return asdict(self)


def stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The stages of a dynamic_network_architectures U-Net, input to output: ``encoder stem``,
    ``encoder stage i``, ``decoder stage j``; of a Primus: ``encoder stem`` (the patch embedding),
    ``encoder block i`` (the transformer's), ``decoder`` (the patch decoder). Empty when the network
    has none of them (another architecture)."""
    model = unwrap_model(model)
    blocks = getattr(getattr(model, "eva", None), "blocks", None)
    if isinstance(blocks, nn.Module) and isinstance(getattr(model, "down_projection", None), nn.Module):
        return ([("encoder stem", model.down_projection)] + [(f"encoder block {i}", b) for i, b in enumerate(blocks)]
                + [("decoder", model.up_projection)])
    encoder, decoder = getattr(model, "encoder", None), getattr(model, "decoder", None)
    found: list[tuple[str, nn.Module]] = []
    if isinstance(getattr(encoder, "stem", None), nn.Module):
        found.append(("encoder stem", encoder.stem))
    for label, owner in (("encoder stage", encoder), ("decoder stage", decoder)):
        stages = getattr(owner, "stages", None)
        if isinstance(stages, nn.Module):
            found += [(f"{label} {i}", stage) for i, stage in enumerate(stages)]
    return found


def summarise(tensor: torch.Tensor) -> StageStats:
    """StageStats of one tensor (computed in float64 so that large 3D batches do not lose digits)."""
    t = tensor.detach().double()
    return StageStats(mean=t.mean().item(), sd=t.std(unbiased=False).item(),
                      nonpositive=(t <= 0).double().mean().item(), shape=list(tensor.shape))


@contextmanager
def recording_stages(model: nn.Module) -> Iterator[dict[str, StageStats]]:
    """Inside the block, every forward pass of ``model`` records each stage's StageStats into the
    yielded dict (the last pass wins); the hooks are removed on leaving. Only the summary is kept,
    never the activation, so a 3D batch costs no extra memory."""
    stats: dict[str, StageStats] = {}

    def hook_for(name: str) -> Callable:
        def hook(_module, _inputs, output):
            stats[name] = summarise(output)
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in stage_modules(model)]
    try:
        yield stats
    finally:
        for handle in handles:
            handle.remove()


def stage_statistics(model: nn.Module, data: torch.Tensor) -> tuple[dict[str, StageStats], torch.Tensor | list]:
    """Run ``model`` on ``data`` without gradients and return each stage's StageStats (in stage
    order) and the model's output (a list with deep supervision). The model's train / eval mode is
    the caller's choice."""
    with torch.no_grad(), recording_stages(model) as stats:
        output = model(data)
    order = [name for name, _ in stage_modules(model)]
    return {name: stats[name] for name in order if name in stats}, output


def head_distribution(logits: torch.Tensor, reference: torch.Tensor | None, class_names: Sequence[str],
                      regions: bool = False) -> dict:
    """What the head predicts for a batch (``logits``: batch x classes x spatial, full resolution).

    Softmax heads: per class the mean probability, the fraction of voxels whose argmax it is, and
    (with ``reference``, a label map batch x 1 x spatial) the fraction of reference voxels of that
    class. Region heads (``regions=True``, sigmoid per channel, ``reference`` one channel per
    region): the fraction of voxels above 0.5 instead of the argmax. Also the logits' mean and SD.
    """
    logits = logits.detach().double()
    probabilities = torch.sigmoid(logits) if regions else torch.softmax(logits, 1)
    n = logits.shape[1]
    if regions:
        predicted = [(probabilities[:, c] > 0.5).double().mean().item() for c in range(n)]
    else:
        argmax = logits.argmax(1)
        predicted = [(argmax == c).double().mean().item() for c in range(n)]
    out = {"logit_mean": logits.mean().item(), "logit_sd": logits.std(unbiased=False).item(),
           "classes": list(class_names)[:n] + [str(c) for c in range(len(class_names), n)],
           "mean_probability": [probabilities[:, c].mean().item() for c in range(n)],
           "predicted_fraction": predicted, "reference_fraction": None}
    if reference is not None:
        reference = reference.detach()
        if regions:
            out["reference_fraction"] = [(reference[:, c] > 0).double().mean().item() for c in range(n)]
        else:
            out["reference_fraction"] = [(reference == c).double().mean().item() for c in range(n)]
    return out


def parameter_group(model: nn.Module, name: str) -> str:
    """The part a parameter belongs to, for gradient norms: ``encoder stem``, ``encoder stage i``,
    ``decoder stage j`` (its stage's convolutions and the transposed convolution that feeds it),
    ``head`` (every ``seg_layers`` entry), else its part from ``transfer.load.model_part``."""
    model = unwrap_model(model)
    part = model_part(model, name)
    if part == "head":
        return HEAD
    stem = getattr(model, "key_to_stem", None)
    # PlainConvUNet declares stage 0 as its stem: it stays "encoder stage 0", as in the activations
    if part == "encoder" and stem and not _ENCODER_STAGE.match(stem + ".") and name.startswith(stem + "."):
        return "encoder stem"
    match = (_ENCODER_STAGE if part == "encoder" else _DECODER_STAGE).match(name)
    return f"{part} stage {match.group(1)}" if match else part


def group_order(groups: Sequence[str]) -> list[str]:
    """Groups input to output: stem, encoder stages, decoder stages, head, the rest."""
    def key(group: str) -> tuple[int, int, str]:
        rank = {"encoder": 1, "decoder": 2, HEAD: 3}.get(group.split(" ")[0], 4)
        number = group.rsplit(" ", 1)[-1]
        return (0 if group == "encoder stem" else rank, int(number) if number.isdigit() else -1, group)
    return sorted(groups, key=key)


def part_of_group(group: str) -> str:
    """``encoder``, ``decoder``, ``head`` or ``other`` for a group name."""
    first = group.split(" ")[0]
    return first if first in ("encoder", "decoder", HEAD) else "other"


def finite_or_none(value: float) -> float | None:
    """A number for plain JSON: NaN and infinities become None."""
    return value if math.isfinite(value) else None


class GradientRecorder:
    """Gradient norm per group of ``model`` for every backward pass, taken as each parameter's
    gradient is accumulated, i.e. before nnU-Net's ``train_step`` clips it (norm 12). Parameters
    that get no gradient (a frozen encoder) add nothing: their group's norm is 0.

    Use as a context manager; ``take()`` returns the norms of the pass since the last ``take``.
    """

    def __init__(self, model: nn.Module):
        self.model = unwrap_model(model)
        entries, _ = canonical_entries(self.model)
        own = {id(p) for p in self.model.parameters()}
        self.groups = {name: parameter_group(self.model, name) for name, t in entries.items() if id(t) in own}
        self._params = {name: t for name, t in entries.items() if name in self.groups}
        self._squares: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> "GradientRecorder":
        for name, p in self._params.items():
            # torch refuses a hook on a frozen parameter; a strategy may unfreeze it later, so the hook
            # goes on regardless (it only fires when a gradient arrives)
            frozen = not p.requires_grad
            p.requires_grad_(True)
            self._handles.append(p.register_post_accumulate_grad_hook(self._hook(self.groups[name])))
            p.requires_grad_(not frozen)
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, group: str) -> Callable[[torch.Tensor], None]:
        def hook(p: torch.Tensor) -> None:
            square = p.grad.detach().float().pow(2).sum()
            self._squares[group] = self._squares[group] + square if group in self._squares else square
        return hook

    def take(self, scale: float = 1.0) -> dict[str, float | None]:
        """Norm per group (every group, input to output) of the passes since the last call, divided
        by ``scale`` (the grad scaler's scale during those passes under mixed precision); None where
        it is not finite (an overflow under mixed precision)."""
        scale = float(scale) or 1.0
        # one transfer per group, after the step, instead of one device sync per parameter
        squares = {g: s.item() for g, s in self._squares.items()}
        self._squares = {}
        return {g: finite_or_none(math.sqrt(squares.get(g, 0.0)) / scale)
                for g in group_order(set(self.groups.values()))}


def part_norms(norms: Mapping[str, float | None]) -> dict[str, float | None]:
    """Group norms combined per part (``encoder``, ``decoder``, ``head``): the root of the summed
    squares, None when any of them is None."""
    out: dict[str, float | None] = {}
    for group, norm in norms.items():
        part = part_of_group(group)
        if norm is None or (part in out and out[part] is None):
            out[part] = None
        else:
            out[part] = math.sqrt((out.get(part) or 0.0) ** 2 + norm ** 2)
    return out
