"""describe_checkpoint reads our block, or falls back on a plain nnU-Net checkpoint's init_args."""
import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.like_checkpoint import check_configuration, describe_checkpoint

ARCH = {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {"n_stages": 2}, "_kw_requires_import": []}


def test_plain_nnunet_checkpoint_uses_its_stored_plans(tmp_path):
    plans = {"dataset_name": "Dataset007_X", "plans_name": "nnUNetPlans", "configurations": {
        "3d_fullres": {"patch_size": [16, 16, 16], "batch_size": 2, "architecture": ARCH},
        "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}}}
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": {"w": torch.zeros(1)}, "trainer_name": "nnUNetTrainer",
                "init_args": {"plans": plans, "configuration": "3d_cascade_fullres", "fold": 0,
                              "dataset_json": {"channel_names": {"0": "T1", "1": "FLAIR"}},
                              "device": torch.device("cpu")}}, path)
    ckpt = describe_checkpoint(path)
    assert ckpt.configuration == "3d_cascade_fullres" and ckpt.input_channels == 2
    assert ckpt.configuration_dict["architecture"] == ARCH and ckpt.configuration_dict["patch_size"] == [16, 16, 16]
    assert ckpt.source_dataset == "Dataset007_X" and ckpt.metadata is None
    assert check_configuration(ckpt, "3d_fullres") == "3d_fullres"
    with pytest.raises(NnunetTransferError, match="3D network .* cannot be planned like it in a 2D configuration"):
        check_configuration(ckpt, "2d")


def test_bare_state_dict_cannot_describe_a_network(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"encoder.w": torch.zeros(1)}, path)
    with pytest.raises(NnunetTransferError, match="does not describe its network"):
        describe_checkpoint(path)


def test_bare_state_dict_is_described_by_its_first_convolution_for_attach(tmp_path):
    from tests.conftest import tiny_unet
    path = tmp_path / "weights.pth"
    torch.save(tiny_unet(2, in_channels=3).state_dict(), path)
    ckpt = describe_checkpoint(path, allow_bare=True)
    assert ckpt.input_channels == 3 and len(ckpt.configuration_dict["patch_size"]) == 2
    assert ckpt.source_dataset == "weights"


@pytest.mark.parametrize("target, rules, message", [
    ({"0": "FLAIR", "1": "T1"}, {}, None),  # 1 -> N: the kernel repeated, as attach does
    ({"0": "FLAIR", "1": "T1"}, {"channel_map": "auto"}, None),
    ({"0": "FLAIR", "1": "T2"}, {"channel_map": "auto"}, "no target name \\['FLAIR', 'T2'\\] is a checkpoint name"),
    ({"0": "FLAIR", "1": "T1"}, {"channel_map": {"FLAIR": "PD"}}, "the checkpoint has no channel 'PD'"),
])
def test_plan_like_checkpoint_refuses_what_attach_would_refuse_and_nothing_else(nnunet_folders, target, rules,
                                                                                 message):
    import json

    from nnunet_transfer.planning.like_checkpoint import CheckpointPlan, check_channels
    from nnunet_transfer.transfer.rules import TransferRules
    folder = nnunet_folders["nnUNet_raw"] / "Dataset005_Two"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"channel_names": target, "labels": {"background": 0, "a": 1}}))
    ckpt = CheckpointPlan(nnunet_folders["nnUNet_raw"] / "c.pth", "3d_fullres", {"patch_size": [8, 8, 8]}, 1,
                          {"0": "T1"}, None, None)
    if message is None:
        check_channels(ckpt, "Dataset005_Two", TransferRules(**rules))
    else:
        with pytest.raises(NnunetTransferError, match=message):
            check_channels(ckpt, "Dataset005_Two", TransferRules(**rules))


def test_n_to_m_channels_need_tile_or_a_channel_map(nnunet_folders):
    import json

    from nnunet_transfer.planning.like_checkpoint import CheckpointPlan, check_channels
    from nnunet_transfer.transfer.rules import TransferRules
    folder = nnunet_folders["nnUNet_raw"] / "Dataset006_Three"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1", "1": "T2", "2": "FLAIR"}}))
    ckpt = CheckpointPlan(nnunet_folders["nnUNet_raw"] / "c.pth", "3d_fullres", {"patch_size": [8, 8, 8]}, 2,
                          {"0": "T1", "1": "T2"}, None, None)
    with pytest.raises(NnunetTransferError, match="map channels by name with --channel-map"):
        check_channels(ckpt, "Dataset006_Three")
    check_channels(ckpt, "Dataset006_Three", TransferRules(input_channels="tile"))
    check_channels(ckpt, "Dataset006_Three", TransferRules(channel_map="auto"))
