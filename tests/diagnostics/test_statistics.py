import math

import pytest
import torch

from nnunet_transfer.diagnostics.statistics import (GradientRecorder, group_order, head_distribution, parameter_group,
                                                    part_norms, recording_stages, stage_modules, stage_statistics,
                                                    summarise)
from tests.conftest import tiny_unet


def _net(residual=False, dim=2, features=(4, 8)):
    torch.manual_seed(0)
    return tiny_unet(dim=dim, features=features, residual=residual)


def test_summarise_is_exact_on_arange():
    stats = summarise(torch.arange(-2.0, 6.0).reshape(1, 2, 2, 2))  # -2 .. 5
    assert stats.mean == pytest.approx(1.5)
    assert stats.sd == pytest.approx(math.sqrt(sum((v - 1.5) ** 2 for v in range(-2, 6)) / 8))
    assert stats.nonpositive == pytest.approx(3 / 8)  # -2, -1, 0
    assert stats.shape == [1, 2, 2, 2]


def test_stage_modules_follow_the_u_net_input_to_output():
    assert [n for n, _ in stage_modules(_net(features=(4, 8, 8)))] == [
        "encoder stage 0", "encoder stage 1", "encoder stage 2", "decoder stage 0", "decoder stage 1"]
    assert [n for n, _ in stage_modules(_net(residual=True))] == [
        "encoder stem", "encoder stage 0", "encoder stage 1", "decoder stage 0"]
    assert stage_modules(torch.nn.Conv2d(1, 1, 3)) == []  # another architecture: no stages, no error


@pytest.mark.parametrize("residual", [False, True])
def test_stage_statistics_are_those_of_the_stage_outputs(residual):
    net = _net(residual, dim=3).eval()
    x = torch.randn(2, 1, 16, 16, 16)
    stats, output = stage_statistics(net, x)
    with torch.no_grad():
        skips = net.encoder(x)  # encoder stage outputs, full resolution first
        up = net.decoder.stages[0](torch.cat((net.decoder.transpconvs[0](skips[-1]), skips[-2]), 1))
        expected_output = net(x)
    for i, skip in enumerate(skips):
        assert stats[f"encoder stage {i}"].mean == pytest.approx(skip.double().mean().item())
        assert stats[f"encoder stage {i}"].sd == pytest.approx(skip.double().std(unbiased=False).item())
    assert stats["decoder stage 0"].nonpositive == pytest.approx((up <= 0).double().mean().item())
    assert stats["decoder stage 0"].shape == list(up.shape)
    assert list(stats) == [n for n, _ in stage_modules(net)]
    assert torch.equal(output[0], expected_output[0])  # deep supervision: a list, full resolution first


def test_hooks_are_removed_after_recording():
    net = _net()
    with recording_stages(net) as stats:
        net(torch.randn(1, 1, 16, 16))
    assert stats and all(not m._forward_hooks for m in net.modules())


def test_head_distribution_of_softmax_logits():
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 1, :2] = 10.0  # class 1 wins on the top half
    reference = torch.zeros(1, 1, 4, 4)
    reference[..., 0, 0] = 1
    head = head_distribution(logits, reference, ["background", "lesion"])
    assert head["predicted_fraction"] == pytest.approx([0.5, 0.5])
    assert sum(head["mean_probability"]) == pytest.approx(1.0)
    assert head["mean_probability"][1] == pytest.approx(0.5 * torch.sigmoid(torch.tensor(10.0)).item() + 0.25)
    assert head["reference_fraction"] == pytest.approx([15 / 16, 1 / 16])
    assert head["logit_mean"] == pytest.approx(10 * 8 / 32)
    assert head["classes"] == ["background", "lesion"]


def test_head_distribution_of_region_logits():
    logits = torch.full((1, 2, 2, 2), -5.0)
    logits[:, 0] = 5.0
    reference = torch.zeros(1, 2, 2, 2)
    reference[:, 1, 0] = 1
    head = head_distribution(logits, reference, ["whole", "core"], regions=True)
    assert head["predicted_fraction"] == [1.0, 0.0]
    assert head["reference_fraction"] == [0.0, 0.5]


def test_parameter_groups_of_a_plain_u_net():
    net = _net(features=(4, 8, 8))
    groups = {name: parameter_group(net, name) for name, _ in net.named_parameters()}
    assert groups["encoder.stages.0.0.convs.0.conv.weight"] == "encoder stage 0"
    assert groups["encoder.stages.2.0.convs.1.norm.bias"] == "encoder stage 2"
    assert groups["decoder.transpconvs.1.weight"] == "decoder stage 1"  # feeds decoder stage 1
    assert groups["decoder.stages.0.convs.0.conv.weight"] == "decoder stage 0"
    assert groups["decoder.seg_layers.1.bias"] == "head"
    assert group_order(set(groups.values())) == ["encoder stage 0", "encoder stage 1", "encoder stage 2",
                                                 "decoder stage 0", "decoder stage 1", "head"]


def test_parameter_groups_of_a_residual_encoder_have_a_stem():
    net = _net(residual=True)
    assert parameter_group(net, "encoder.stem.convs.0.conv.weight") == "encoder stem"
    assert parameter_group(net, "encoder.stages.1.blocks.0.conv1.conv.weight") == "encoder stage 1"
    assert group_order(["head", "encoder stage 0", "decoder stage 0", "encoder stem"])[0] == "encoder stem"


def test_gradient_recorder_gives_the_norm_per_group_before_clipping():
    net = _net()
    x = torch.randn(2, 1, 16, 16)
    with GradientRecorder(net) as recorder:
        (net(x)[0] ** 2).mean().mul(1e4).backward()  # large enough that nnU-Net's clipping at 12 would bite
        expected: dict[str, float] = {}
        for name, p in net.named_parameters():
            g = parameter_group(net, name)
            expected[g] = expected.get(g, 0.0) + p.grad.double().pow(2).sum().item()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        norms = recorder.take(scale=2.0)
        assert list(norms) == group_order(expected)
        for g, square in expected.items():
            assert norms[g] == pytest.approx(math.sqrt(square) / 2.0, rel=1e-5)
            assert norms[g] > 0
        assert recorder.take() == dict.fromkeys(norms, 0.0)  # nothing since the last take
    assert not any(p._post_accumulate_grad_hooks for p in net.parameters())  # hooks removed on leaving


def test_a_frozen_part_has_norm_zero_and_an_overflow_none():
    net = _net()
    for name, p in net.named_parameters():
        p.requires_grad_(not name.startswith("encoder."))
    with GradientRecorder(net) as recorder:  # hooks go on frozen parameters too: a strategy unfreezes later
        net(torch.randn(1, 1, 16, 16))[0].sum().backward()
        norms = recorder.take()
        assert norms["encoder stage 0"] == 0.0 and norms["head"] > 0
        for p in net.parameters():
            p.requires_grad_(True)
        net(torch.randn(1, 1, 16, 16))[0].sum().backward()
        assert recorder.take()["encoder stage 0"] > 0
    with GradientRecorder(net) as recorder:
        net(torch.randn(1, 1, 16, 16))[0].sum().mul(float("inf")).backward()
        assert recorder.take()["head"] is None


def test_part_norms_combine_groups():
    parts = part_norms({"encoder stage 0": 3.0, "encoder stage 1": 4.0, "decoder stage 0": 1.0, "head": None})
    assert parts == {"encoder": 5.0, "decoder": 1.0, "head": None}


def test_stage_modules_of_a_primus_are_its_patch_embedding_blocks_and_decoder():
    from nnunet_transfer.networks.primus import TransferPrimus
    net = TransferPrimus(1, 48, (8, 8, 8), 2, (16, 16, 16), token_order="yxz", eva_depth=2, eva_numheads=2)
    assert [n for n, _ in stage_modules(net)] == ["encoder stem", "encoder block 0", "encoder block 1", "decoder"]
    with recording_stages(net) as stats:
        net(torch.zeros(1, 1, 16, 16, 16))
    assert list(stats) == ["encoder stem", "encoder block 0", "encoder block 1", "decoder"]
