"""The blocks this package adds to nnU-Net plans files: their keys, defaults, parsing and checks.

A plans file is nnU-Net's JSON with four optional blocks of ours (reference:
documentation/reference/plans.md):

- ``training_schedule``: epochs, iterations, learning rate, checkpoint interval and nnU-Net's final
  validation, read by every trainer of ours (:class:`TrainingSchedule`);
- ``transfer``: the checkpoint a fine-tuning trainer loads, the transfer rules and the strategy
  settings, written by ``attach`` (:class:`TransferBlock`);
- ``pretraining``: settings of a pretraining mode (:class:`PretrainingBlock`);
- ``shared_plans``: where a shared architecture came from, written by planning
  (:func:`shared_plans_block`).

This module is their only owner: planning/, trainers/ and study/ import the keys, models and
parsers from here. A block that does not parse is one NnunetTransferError naming the key.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError, create_model

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.names import (INFLATION_RULES, INPUT_CHANNEL_RULES, KERNEL_RULES, LOAD_RULES, PRETEXTS,
                                   UNMAPPED_CHANNEL_RULES)
from nnunet_transfer.transfer.rules import TransferRules
from nnunet_transfer.validation import StrictModel, first_problem

DEFAULT_PLANS = "nnUNetTransferPlans"
SCHEDULE_KEY = "training_schedule"
TRANSFER_KEY = "transfer"
PRETRAINING_KEY = "pretraining"
SHARED_PLANS_KEY = "shared_plans"
SHARED_KEYS = ("architecture", "patch_size", "batch_size")  # what shared plans copy between datasets
FINAL_VALIDATION = ("auto", "always", "never")
DEFAULT_SEED = 0  # the training seed of plans without training_schedule.seed
STRATEGY_KEYS = ("warmup_epochs", "frozen_encoder_epochs", "encoder_lr_factor")
OPTIMIZERS = ("sgd", "adamw")
NNUNET_GRAD_CLIP = 12.0  # nnUNetTrainer.train_step clips the gradient norm at 12
# training_schedule keys that are nnU-Net trainer attributes of the same name
NNUNET_ATTRIBUTES = ("num_epochs", "num_iterations_per_epoch", "num_val_iterations_per_epoch", "initial_lr",
                     "save_every", "weight_decay")
# Fine-tuning a transformer (Primus): nnU-Net's development-branch PretrainedTrainer_Primus (AdamW, lr 1e-4,
# weight decay 5e-2, gradient norm clipped at 1, 50 epochs of linear warm-up), which nnU-Net's AbstractPrimus and
# nnssl's BaseEvaMAETrainer share apart from lr 3e-4 (training from scratch / pretraining). One recipe for all arms.
TRANSFORMER_RECIPE = {"optimizer": "adamw", "initial_lr": 1e-4, "weight_decay": 5e-2, "grad_clip": 1.0,
                      "warmup_epochs": 50}
RULE_KEYS = tuple(f.name for f in fields(TransferRules))


def _parse(model: type[StrictModel], data: Any, key: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise NnunetTransferError(f"'{key}' in {where} must be a JSON object, got {type(data).__name__}.")
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        raise NnunetTransferError(f"{first_problem(e, key, model, what=f'{key} key')} (in {where}).") from None


# ---------------------------------------------------------------------------- training_schedule

class TrainingSchedule(StrictModel):
    """``training_schedule``: every key optional; nnU-Net's defaults (1000 epochs x 250 iterations,
    50 validation iterations, lr 0.01, a checkpoint every 50 epochs) otherwise.

    ``final_validation``: ``auto`` skips nnU-Net's final sliding-window validation for fold
    ``all`` (its "validation" cases are its training cases), ``always`` keeps it, ``never`` skips
    it for every fold.

    ``train_subset``: fold (``"0"``, ``"all"``) -> the case ids that fold trains on, a subset of
    its nnU-Net training cases (label-efficiency studies write it; validation cases unchanged).

    ``seed``: the training seed (default :data:`DEFAULT_SEED`). Every trainer of ours seeds
    Python's, numpy's and torch's generators from it before the network is built and at the start
    of every epoch (from seed and epoch), and gives each of nnU-Net's augmentation workers its own
    seed derived from it, so the same seed repeats a run on the CPU with ``nnUNet_n_proc_DA=0``.

    The optimizer recipe, the same for every arm of a comparison (the scratch baseline included):
    ``optimizer`` ``sgd`` (nnU-Net's: momentum 0.99, Nesterov) or ``adamw`` (betas 0.9 / 0.98, as
    nnU-Net's and nnssl's Primus trainers), ``weight_decay`` (nnU-Net's 3e-5 when unset),
    ``grad_clip`` (gradient-norm clipping, at most nnU-Net's own 12, which always applies) and
    ``warmup_epochs`` (a linear warm-up of the learning rate; the default of every strategy, which a
    transfer block's ``warmup_epochs`` overrides). :data:`TRANSFORMER_RECIPE` is the one planning
    writes for transformer checkpoints.
    """

    num_epochs: PositiveInt | None = None
    num_iterations_per_epoch: PositiveInt | None = None
    num_val_iterations_per_epoch: PositiveInt | None = None
    initial_lr: PositiveFloat | None = None
    save_every: PositiveInt | None = None
    final_validation: Literal[FINAL_VALIDATION] | None = None
    train_subset: dict[str, Annotated[list[str], Field(min_length=1)]] | None = None
    seed: NonNegativeInt | None = None
    optimizer: Literal[OPTIMIZERS] | None = None
    weight_decay: NonNegativeFloat | None = None
    grad_clip: Annotated[float, Field(gt=0, le=NNUNET_GRAD_CLIP)] | None = None
    warmup_epochs: NonNegativeInt | None = None

    def block(self) -> dict[str, Any]:
        """The block as written into plans: the keys that are set."""
        return self.model_dump(exclude_none=True)

    def trainer_settings(self) -> dict[str, int | float]:
        """The keys that are nnU-Net trainer attributes of the same name (the numbers)."""
        return {k: v for k, v in self.block().items() if k in NNUNET_ATTRIBUTES}

    @property
    def training_seed(self) -> int:
        """The seed in effect: ``seed``, else :data:`DEFAULT_SEED`."""
        return DEFAULT_SEED if self.seed is None else self.seed


def parse_schedule(data: Any, where: str = "plans") -> TrainingSchedule:
    """A ``training_schedule`` block (a dict) checked; NnunetTransferError naming the key otherwise."""
    if isinstance(data, TrainingSchedule):
        return data
    return _parse(TrainingSchedule, data or {}, SCHEDULE_KEY, where)


def update_schedule(plans: dict, keys: Mapping) -> dict:
    """``plans`` with ``keys`` set in its ``training_schedule`` block (the other keys kept), checked."""
    return {**plans, SCHEDULE_KEY: parse_schedule({**(plans.get(SCHEDULE_KEY) or {}), **keys}).block()}


# ---------------------------------------------------------------------------- fine-tuning strategy

class StrategyOptions(StrictModel):
    """Strategy keys of a ``transfer`` block (and of a study's ``strategy_options``); unset keys
    keep the trainer's defaults."""

    warmup_epochs: NonNegativeInt | None = None
    frozen_encoder_epochs: NonNegativeInt | None = None
    encoder_lr_factor: NonNegativeFloat | None = None


@dataclass(frozen=True)
class Strategy:
    """Fine-tuning strategy in effect.

    ``warmup_epochs``: linear ramp of the learning rate over the first epochs (after unfreezing
    when the encoder starts frozen). ``frozen_encoder_epochs``: the encoder does not train for
    these first epochs. ``encoder_lr_factor``: encoder lr = factor x base lr.
    """

    warmup_epochs: int = 0
    frozen_encoder_epochs: int = 0
    encoder_lr_factor: float = 1.0

    def with_options(self, options: StrategyOptions | Mapping, num_epochs: int) -> "Strategy":
        """These defaults overridden by ``options``; NnunetTransferError naming the key for a wrong
        type, a negative value or a frozen phase as long as the training."""
        if not isinstance(options, StrategyOptions):
            options = _parse(StrategyOptions, {k: v for k, v in options.items() if k in STRATEGY_KEYS}, TRANSFER_KEY,
                             "the strategy options")
        out = replace(self, **{k: v for k, v in options.model_dump(exclude_none=True).items()})
        if out.frozen_encoder_epochs >= num_epochs:
            raise NnunetTransferError(
                f"transfer.frozen_encoder_epochs ({out.frozen_encoder_epochs}) must be smaller than the number of "
                f"epochs ({num_epochs}); set it in the transfer block.")
        return out


# ---------------------------------------------------------------------------- transfer

class TransferRuleOptions(StrictModel):
    """The rule keys of a ``transfer`` block (:class:`nnunet_transfer.transfer.rules.TransferRules`),
    every one optional: what ``attach`` takes as options and a study's ``[sources.transfer]`` table."""

    load: Literal[LOAD_RULES] | None = None
    input_channels: Literal[INPUT_CHANNEL_RULES] | None = None
    inflation: Literal[INFLATION_RULES] | None = None
    kernel: Literal[KERNEL_RULES] | None = None
    strict: bool | None = None
    allow_no_encoder_weights: bool | None = None
    channel_map: Literal["auto"] | dict[str, str | None] | None = None
    unmapped_channels: Literal[UNMAPPED_CHANNEL_RULES] | None = None
    keep_classes: Literal["auto"] | dict[str, str | None] | None = None

    def rules(self) -> TransferRules:
        """The rules, unset keys at their defaults."""
        return TransferRules(**self.model_dump(exclude_none=True))


class TransferBlock(StrategyOptions):
    """``transfer``: the checkpoint, how it is loaded (the rules of
    :class:`nnunet_transfer.transfer.rules.TransferRules`) and the strategy keys.

    ``load`` unset: decided by the checkpoint (``encoder`` when its decoder never trained, else
    ``encoder+decoder``), the same rule for ``attach``, ``preview`` and training.
    """

    checkpoint: str
    checkpoint_sha256: str | None = None
    checkpoint_origin: str | None = None  # a hub checkpoint's pinned reference, hf://OWNER/REPO@COMMIT:FILE
    source_dataset: str | None = None
    source_configuration: str | None = None
    configurations: list[str] | None = None
    attached_to: str | None = None
    load: Literal[LOAD_RULES] | None = None
    input_channels: Literal[INPUT_CHANNEL_RULES] = "sum"
    inflation: Literal[INFLATION_RULES] = "average"
    kernel: Literal[KERNEL_RULES] = "crop"
    strict: bool = False
    allow_no_encoder_weights: bool = False
    channel_map: Literal["auto"] | dict[str, str | None] | None = None
    unmapped_channels: Literal[UNMAPPED_CHANNEL_RULES] = "zero"
    keep_classes: Literal["auto"] | dict[str, str | None] | None = None

    @property
    def rules(self) -> TransferRules:
        return TransferRules(**{k: getattr(self, k) for k in RULE_KEYS})

    def strategy(self, defaults: Strategy, num_epochs: int) -> Strategy:
        return defaults.with_options(StrategyOptions(**{k: getattr(self, k) for k in STRATEGY_KEYS}), num_epochs)

    def block(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def make_transfer_block(checkpoint: str, rules: TransferRules, strategy: Mapping | None = None,
                        **provenance: Any) -> TransferBlock:
    """The block ``attach`` writes: checkpoint, its provenance (sha256, source dataset, ...), the
    rules and the strategy options, all checked."""
    data = {"checkpoint": checkpoint, **provenance, **asdict(rules), **dict(strategy or {})}
    return _parse(TransferBlock, data, TRANSFER_KEY, "the transfer settings")


def parse_transfer(plans: Mapping, where: str, hint: str = "") -> TransferBlock:
    """The ``transfer`` block of ``plans`` (``where`` names them); NnunetTransferError, ending in
    ``hint``, when it is missing or malformed."""
    block = plans.get(TRANSFER_KEY)
    if block is None:
        raise NnunetTransferError(f"{where} have no '{TRANSFER_KEY}' block naming a checkpoint. {hint}".strip())
    return _parse(TransferBlock, block, TRANSFER_KEY, where)


# ---------------------------------------------------------------------------- pretraining

class _PretrainingSettings(StrictModel):
    seed: int | None = None  # the pretext streams' seed; unset: the training seed (training_schedule.seed)
    class_weights: Literal["balanced"] | None = None  # classification: inverse-frequency class weights
    pool_stages: list[int] = [-1]  # classification: encoder stages pooled into the head
    temperature: PositiveFloat = 0.1  # SimCLR


# plus one object per pretext with that pretext's parameters (checked by the pretext class)
PretrainingBlock = create_model("PretrainingBlock", __base__=_PretrainingSettings,
                                **{name: (dict[str, Any], {}) for name in PRETEXTS})
PretrainingBlock.__doc__ = ("``pretraining``: ``seed`` of the pretext generator (default: the training seed), "
                            "classification ``class_weights`` / ``pool_stages``, SimCLR ``temperature``, and one "
                            "object per pretext with its parameters.")


def parse_pretraining(plans: Mapping, where: str) -> Any:
    """The ``pretraining`` block of ``plans`` (defaults when absent), checked."""
    return _parse(PretrainingBlock, plans.get(PRETRAINING_KEY) or {}, PRETRAINING_KEY, where)


# ---------------------------------------------------------------------------- shared_plans

def shared_plans_block(provenance: Mapping[str, Any], configurations: list[str]) -> dict[str, Any]:
    """``shared_plans``: the reference dataset or checkpoint the architecture came from, the package
    version, the keys shared and the configurations kept."""
    return dict(provenance, shared_keys=list(SHARED_KEYS), configurations=sorted(configurations))
