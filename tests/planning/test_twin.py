"""The 2D twin of a 3D configuration."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.twin import twin_2d


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
