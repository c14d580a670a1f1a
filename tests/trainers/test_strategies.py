import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.twin import twin_2d
from nnunet_transfer.trainers.schedule import Strategy, TransferLRScheduler, lr_multipliers


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


@pytest.mark.parametrize("block, message", [
    ({"warmup_epochs": -1}, "transfer.warmup_epochs"),
    ({"frozen_encoder_epochs": 1.5}, "transfer.frozen_encoder_epochs"),
    ({"encoder_lr_factor": "0.1"}, "transfer.encoder_lr_factor"),
    ({"frozen_encoder_epochs": 10}, "must be smaller than the number of epochs"),
])
def test_strategy_keys_are_validated(block, message):
    with pytest.raises(NnunetTransferError, match=message):
        Strategy.from_block(block, Strategy(), num_epochs=10)


def test_twin_2d_keeps_stages_features_and_in_plane_kernels():
    cfg3 = {"patch_size": [32, 64, 48], "batch_size": 2, "architecture": {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 32], "conv_op": "torch.nn.modules.conv.Conv3d",
                        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "dropout_op": None,
                        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
                        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]]},
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op"]}}
    twin = twin_2d(cfg3, batch_size=12)
    kw = twin["architecture"]["arch_kwargs"]
    assert twin["patch_size"] == [64, 48] and twin["batch_size"] == 12
    assert kw["conv_op"] == "torch.nn.modules.conv.Conv2d" and kw["norm_op"].endswith("InstanceNorm2d")
    assert kw["kernel_sizes"] == [[3, 3]] * 3 and kw["strides"] == [[1, 1], [2, 2], [2, 2]]
    assert kw["features_per_stage"] == [8, 16, 32] and cfg3["architecture"]["arch_kwargs"]["conv_op"].endswith("3d")
    with pytest.raises(NnunetTransferError, match="needs a 3D configuration"):
        twin_2d({"patch_size": [8, 8]}, 2)
