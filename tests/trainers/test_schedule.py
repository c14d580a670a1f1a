"""Learning rates of the fine-tuning strategies on top of nnU-Net's poly schedule."""
import pytest
import torch

from nnunet_transfer.plans_blocks import Strategy
from nnunet_transfer.trainers.schedule import TransferLRScheduler, lr_multipliers


def test_full_finetuning_is_nnunet_poly():
    assert all(lr_multipliers(e, Strategy()) == (1.0, 1.0) for e in range(10))


def test_warmup_ramps_linearly_then_stays():
    s = Strategy(warmup_epochs=3)
    assert [lr_multipliers(e, s)[1] for e in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert [lr_multipliers(e, s)[0] for e in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_frozen_encoder_then_warmup_after_unfreezing_with_factor():
    s = Strategy(warmup_epochs=1, frozen_encoder_epochs=2, encoder_lr_factor=0.5)
    assert [lr_multipliers(e, s) for e in range(5)] == [(0.0, 1.0), (0.0, 1.0), (0.25, 1.0), (0.5, 1.0), (0.5, 1.0)]


def test_scheduler_sets_each_group_from_the_epoch_alone():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD([{"params": [params[0]]}, {"params": [params[1]]}], lr=0.01)
    sched = TransferLRScheduler(opt, 0.01, 10, Strategy(frozen_encoder_epochs=2, encoder_lr_factor=0.1))
    sched.step(5)
    poly = 0.01 * (1 - 5 / 10) ** 0.9
    assert opt.param_groups[0]["lr"] == pytest.approx(poly)
    assert opt.param_groups[1]["lr"] == pytest.approx(poly * 0.1)
    sched.step(1)
    assert opt.param_groups[1]["lr"] == 0.0
