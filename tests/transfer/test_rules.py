"""Transfer rules on tiny nnU-Net-style networks: inflation, input channels, depth and kernel mismatch."""
import pytest
import torch

import nnunet_transfer.transfer.checkpoint as checkpoint_module
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.compat import check_compatible
from nnunet_transfer.transfer.load import transfer_with_rules
from nnunet_transfer.transfer.report import ADAPTED, LOADED, SKIPPED
from nnunet_transfer.transfer.rules import TransferRules, align_decoder_stages
from tests.conftest import tiny_unet


def _random(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


@pytest.mark.parametrize("residual", [False, True])
def test_rgb_2d_source_into_grey_3d_target(residual):
    source = _random(tiny_unet(2, in_channels=3, classes=5, residual=residual))
    target = tiny_unet(3, in_channels=1, classes=2, residual=residual)
    report = transfer_with_rules(source.state_dict(), target, TransferRules(input_channels="mean"))
    names = [r.name for r in report.records]
    assert len(names) == len(set(names)) == len(list(target.parameters())) + len(list(target.buffers()))
    stem = next(r for r in report.records if r.source_shape and len(r.source_shape) == 4 and r.shape[1] == 1
                and r.part == "encoder")
    assert stem.status == ADAPTED and "inflated 2D->3D (average, depth 3)" in stem.how
    assert "input channels 3->1 (mean)" in stem.how
    convs = [r for r in report.records if len(r.shape) == 5 and r.part != "head"]
    assert convs and all(r.status == ADAPTED and "inflated" in r.how for r in convs)
    norms = [r for r in report.records if len(r.shape) == 1 and r.part != "head"]
    assert all(r.status == LOADED for r in norms)
    assert all(r.status == SKIPPED for r in report.records if r.part == "head")


def test_anisotropic_3d_kernels_take_the_matching_depth():
    source = _random(tiny_unet(2, features=(4, 8)))
    target = tiny_unet(3, features=(4, 8))
    # an nnU-Net plan with in-plane-only first stage: kernel (1, 3, 3), stride (1, 1, 1)
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    target = PlainConvUNet(1, 2, [4, 8], torch.nn.Conv3d, [[1, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2]], 2, 2, 2,
                           True, torch.nn.InstanceNorm3d, {"eps": 1e-5, "affine": True}, None, None,
                           torch.nn.LeakyReLU, {"inplace": True}, deep_supervision=True)
    report = transfer_with_rules(source.state_dict(), target, TransferRules())
    by_name = {r.name: r for r in report.records}
    first = by_name["encoder.stages.0.0.convs.0.conv.weight"]
    assert first.shape == [4, 1, 1, 3, 3] and "depth 1" in first.how
    up = by_name["decoder.transpconvs.0.weight"]
    assert up.shape == [8, 4, 1, 2, 2] and up.status == ADAPTED
    with torch.no_grad():
        torch.testing.assert_close(dict(target.named_parameters())["encoder.stages.0.0.convs.0.conv.weight"][:, :, 0],
                                   dict(source.named_parameters())["encoder.stages.0.0.convs.0.conv.weight"])


def test_depth_mismatch_loads_matching_stages_and_aligns_the_decoder_by_resolution():
    source = _random(tiny_unet(3, features=(4, 8)))
    target = tiny_unet(3, features=(4, 8, 8))
    report = transfer_with_rules(source.state_dict(), target, TransferRules())
    by_name = {r.name: r for r in report.records}
    assert by_name["encoder.stages.1.0.convs.0.conv.weight"].status == LOADED
    assert by_name["encoder.stages.2.0.convs.0.conv.weight"].status == "initialised"
    # the source's only decoder stage (full resolution) is the target's last one
    top = by_name["decoder.stages.1.convs.0.conv.weight"]
    assert top.status == LOADED and top.source_key == "decoder.stages.0.convs.0.conv.weight"
    assert by_name["decoder.stages.0.convs.0.conv.weight"].status == "initialised"
    mapping = align_decoder_stages(tiny_unet(3, features=(4, 8, 8)).state_dict(), source.state_dict())
    assert mapping["decoder.stages.0.convs.0.conv.weight"].startswith("unmatched-depth:")


def test_kernel_mismatch_is_adapted_and_reported():
    source = _random(tiny_unet(3, kernel=5))
    report = transfer_with_rules(source.state_dict(), tiny_unet(3, kernel=3), TransferRules(kernel="crop"))
    convs = [r for r in report.records if len(r.shape) == 5 and r.part == "encoder"]
    assert all(r.status == ADAPTED and "kernel (5, 5, 5)->(3, 3, 3) (crop)" in r.how for r in convs)


def test_compatibility_under_rules():
    check_compatible(tiny_unet(2).state_dict(), tiny_unet(3))  # 2D into 3D: inflation
    with pytest.raises(NnunetTransferError, match="3D network cannot initialise a 2D one"):
        check_compatible(tiny_unet(3).state_dict(), tiny_unet(2))
    check_compatible(tiny_unet(3, in_channels=3).state_dict(), tiny_unet(3))  # 3 -> 1 by sum
    with pytest.raises(NnunetTransferError, match="Cannot adapt 3 input channels to 2"):
        check_compatible(tiny_unet(3, in_channels=3).state_dict(), tiny_unet(3, in_channels=2))
    check_compatible(tiny_unet(3, in_channels=3).state_dict(), tiny_unet(3, in_channels=2),
                     rules=TransferRules(input_channels="tile"))


def test_rules_are_validated():
    with pytest.raises(NnunetTransferError, match="transfer.inflation"):
        TransferRules(inflation="stretch")
    assert TransferRules.from_block({"checkpoint": "x", "load": "encoder", "warmup_epochs": 3}).load == "encoder"


def test_cuda_tagged_checkpoint_loads_on_cpu(tmp_path, monkeypatch):
    path = tmp_path / "gpu.pth"
    with monkeypatch.context() as m:  # write the file as a GPU run would: storages tagged "cuda:0"
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save({"network_weights": {"w": torch.ones(3)}}, path)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    loaded = checkpoint_module.load_checkpoint(path)
    assert loaded["network_weights"]["w"].device.type == "cpu" and loaded["network_weights"]["w"].sum() == 3
