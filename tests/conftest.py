"""Shared fixtures: tiny networks of dynamic_network_architectures and nnU-Net folders."""
from __future__ import annotations

import os

# Set before torch starts its OpenMP runtime; see nnunet_transfer.environment.nnunet_subprocess_env.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet  # noqa: E402


def tiny_unet(dim: int = 3, in_channels: int = 1, classes: int = 2, features=(4, 8), residual: bool = False,
              kernel: int = 3):
    """A 2-stage U-Net as nnU-Net builds them (instance norm, leaky ReLU, deep supervision)."""
    conv = torch.nn.Conv3d if dim == 3 else torch.nn.Conv2d
    norm = torch.nn.InstanceNorm3d if dim == 3 else torch.nn.InstanceNorm2d
    common = dict(input_channels=in_channels, n_stages=len(features), features_per_stage=list(features),
                  conv_op=conv, kernel_sizes=kernel, strides=[1] + [2] * (len(features) - 1), num_classes=classes,
                  conv_bias=True, norm_op=norm, norm_op_kwargs={"eps": 1e-5, "affine": True},
                  nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=True)
    if residual:
        return ResidualEncoderUNet(n_blocks_per_stage=[1] * len(features),
                                   n_conv_per_stage_decoder=[1] * (len(features) - 1), **common)
    return PlainConvUNet(n_conv_per_stage=2, n_conv_per_stage_decoder=2, **common)


@pytest.fixture
def nnunet_folders(tmp_path, monkeypatch):
    """Empty nnU-Net raw / preprocessed / results folders set in the environment."""
    folders = {}
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        monkeypatch.setenv(name, str(folders[name]))
    return folders


def run_with_read_only(folder, cmd, **kwargs):
    """Run ``cmd`` (a subprocess) while ``folder`` cannot be written.

    A normal user gets a folder without write permission. Root ignores permission bits, so for
    root the folder becomes a read-only bind mount in a private mount namespace (``unshare -m``),
    which only the command sees.
    """
    import os
    import shlex
    import subprocess
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return subprocess.run(cmd, **kwargs)
        finally:
            folder.chmod(0o755)
    q = shlex.quote(str(folder))
    script = f'mount --bind {q} {q} && mount -o remount,ro,bind {q} && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *cmd], **kwargs)


@pytest.fixture(scope="session")
def planned_tiny(tmp_path_factory):
    """Two demo datasets (901: MRI segmentation source, 911: stroke target; 8 mm, 4 training cases)
    planned once per test session with shared 2d plans ``TinyPlans`` (2 epochs x 2 iterations).

    Returns the three nnU-Net folders. Tests point nnU-Net at them with :func:`use_folders` and
    only add files of their own (plans copies, result folders under their own names).
    """
    from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
    from nnunet_transfer.environment import temporary_environment
    from nnunet_transfer.planning.shared import plan_shared
    root = tmp_path_factory.mktemp("planned_tiny")
    folders = {name: root / name for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    with temporary_environment({name: str(path) for name, path in folders.items()}):
        write_demo_datasets(folders["nnUNet_raw"], DemoDataSize(spacing_mm=8.0, n_train=4, n_test=2),
                            seed=4, which=["mri_seg_source", "stroke"], progress=False)
        plan_shared(901, [911], "TinyPlans", ["2d"], num_processes=1, progress=False,
                    schedule={"num_epochs": 2, "num_iterations_per_epoch": 2, "num_val_iterations_per_epoch": 1})
    return folders


def use_folders(monkeypatch, folders) -> None:
    """Point nnU-Net (and this package) at ``folders`` for one test."""
    for name, path in folders.items():
        monkeypatch.setenv(name, str(path))


# Longest first, so that two pytest-xdist workers finish together: the integration modules by their
# measured durations on 2 cores, then everything else in its usual order.
LONGEST_FIRST = ("test_study", "test_howto", "test_demo_sources", "test_pretrain_ssl", "test_transfer_strategies",
                 "test_pretrain_finetune", "test_pretrain_classification", "test_convert_verify", "test_hooks")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.module.__name__.rpartition(".")[2] if item.module else ""
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: the order inside a module is kept
