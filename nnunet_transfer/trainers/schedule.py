"""Learning-rate schedule of the fine-tuning strategies, on top of nnU-Net's poly decay."""
from __future__ import annotations

from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler

from nnunet_transfer.plans_blocks import Strategy


def lr_multipliers(epoch: int, strategy: Strategy) -> tuple[float, float]:
    """(encoder, rest) multipliers of the poly learning rate at ``epoch``.

    The rest of the network warms up over the first ``warmup_epochs``; the encoder is at 0 while
    frozen, then warms up over ``warmup_epochs`` from unfreezing, times ``encoder_lr_factor``.
    A ramp over W epochs uses (k + 1) / (W + 1) in its k-th epoch, so no epoch has lr 0.
    """
    def ramp(k: int) -> float:
        w = strategy.warmup_epochs
        return (k + 1) / (w + 1) if 0 <= k < w else 1.0

    frozen = strategy.frozen_encoder_epochs
    rest = ramp(epoch) if frozen == 0 else 1.0
    encoder = 0.0 if epoch < frozen else ramp(epoch - frozen) * strategy.encoder_lr_factor
    return encoder, rest


class TransferLRScheduler(PolyLRScheduler):
    """nnU-Net's poly schedule per parameter group: group 0 = decoder and head, group 1 = encoder.

    The learning rate is a pure function of the epoch, so ``--c`` resumes any phase exactly.
    """

    def __init__(self, optimizer, initial_lr: float, max_steps: int, strategy: Strategy):
        self.strategy = strategy
        super().__init__(optimizer, initial_lr, max_steps)

    def step(self, current_step=None):
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        poly = self.initial_lr * (1 - current_step / self.max_steps) ** self.exponent
        encoder, rest = lr_multipliers(current_step, self.strategy)
        groups = self.optimizer.param_groups
        groups[0]["lr"] = poly * rest
        for group in groups[1:]:
            group["lr"] = poly * encoder
        self._last_lr = [group["lr"] for group in groups]
