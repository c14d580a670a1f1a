"""The adapter transfer rules make, on tiny nnU-Net-style networks: inflation, input channels, depth
and kernel mismatch (through ``transfer_with_rules``)."""
import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet

from nnunet_transfer.transfer.load import transfer_with_rules
from nnunet_transfer.transfer.report import ADAPTED, INITIALISED, LOADED, SKIPPED
from nnunet_transfer.transfer.rules import TransferRules
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
    assert by_name["encoder.stages.2.0.convs.0.conv.weight"].status == INITIALISED
    # the source's only decoder stage (full resolution) is the target's last one
    top = by_name["decoder.stages.1.convs.0.conv.weight"]
    assert top.status == LOADED and top.source_key == "decoder.stages.0.convs.0.conv.weight"
    assert by_name["decoder.stages.0.convs.0.conv.weight"].status == INITIALISED


def test_kernel_mismatch_is_adapted_and_reported():
    source = _random(tiny_unet(3, kernel=5))
    report = transfer_with_rules(source.state_dict(), tiny_unet(3, kernel=3), TransferRules(kernel="crop"))
    convs = [r for r in report.records if len(r.shape) == 5 and r.part == "encoder"]
    assert all(r.status == ADAPTED and "kernel (5, 5, 5)->(3, 3, 3) (crop)" in r.how for r in convs)
