"""The Primus we fine-tune reproduces nnssl's pretrained encoder exactly, because it orders its
tokens as the pretraining did; dynamic_network_architectures' order with the same weights does not."""
import pytest
import torch
from dynamic_network_architectures.architectures.primus import Primus

from nnunet_transfer.networks.build import build_network, has_deep_supervision
from nnunet_transfer.networks.primus import TransferPrimus
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, load_checkpoint
from nnunet_transfer.transfer.driver import transfer_from_checkpoint
from nnunet_transfer.transfer.rules import TransferRules
from tests.nnssl_primus import NnsslEvaMAE, nnssl_primus_checkpoint, randomised

PATCH = (32, 32, 24)


def _encoder_tokens(network: TransferPrimus, x: torch.Tensor) -> torch.Tensor:
    """The network's encoder output on its token grid (b, c, x, y, z), through its own forward with
    the decoder bypassed."""
    grid = {}
    original = network.up_projection.forward
    network.up_projection.forward = lambda g: grid.setdefault("g", g)
    try:
        network(x)
    finally:
        network.up_projection.forward = original
    return grid["g"]


def _fine_tuning_network(tmp_path, token_order=None):
    """nnssl's module with weights large enough for position-sensitive attention, and the network
    planned like its checkpoint with the weights transferred."""
    path = tmp_path / "primus.pth"
    module = nnssl_primus_checkpoint(path, pretrain_patch=PATCH, downstream_patch=PATCH,
                                     module=randomised(NnsslEvaMAE(PATCH), scale=0.5))
    arch = checkpoint_metadata(load_checkpoint(path))["architecture"]
    if token_order:
        arch["arch_kwargs"]["token_order"] = token_order
    network = build_network(arch, PATCH, 1, 3)
    transfer_from_checkpoint(path, network, TransferRules())
    return module.eval(), network.eval()


def test_the_fine_tuning_network_reproduces_the_pretrained_encoder_exactly(tmp_path):
    module, network = _fine_tuning_network(tmp_path)
    assert network.token_order == "yxz" and network.token_grid == (4, 4, 3)
    x = torch.randn(2, 1, *PATCH)
    with torch.no_grad():
        assert torch.equal(_encoder_tokens(network, x), module.encode(x))


def test_dynamic_network_architectures_token_order_cannot_reproduce_it(tmp_path):
    """Index-wise into xyz order: every positional code on the patch with x and y swapped. Even with
    the learnt embedding reordered (what the transfer does into an xyz network), RoPE stays swapped."""
    module, network = _fine_tuning_network(tmp_path, token_order="xyz")
    x = torch.randn(1, 1, *PATCH)
    with torch.no_grad():
        expected = module.encode(x)
        reordered = (_encoder_tokens(network, x) - expected).abs().max()
        network.eva.pos_embed.copy_(module.eva.pos_embed)  # index by index
        index_wise = (_encoder_tokens(network, x) - expected).abs().max()
    assert reordered > 1e-3 and index_wise > 1e-3


def test_order_xyz_is_dynamic_network_architectures_primus():
    kwargs = dict(embed_dim=48, patch_embed_size=(8, 8, 8), eva_depth=1, eva_numheads=2, init_values=0.1,
                  scale_attn_inner=True)
    torch.manual_seed(0)
    ours = TransferPrimus(1, num_classes=2, input_shape=PATCH, token_order="xyz", **kwargs).eval()
    theirs = Primus(1, num_classes=2, input_shape=PATCH, **kwargs).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, 1, *PATCH)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_build_network_gives_the_patch_size_and_no_deep_supervision(tmp_path):
    _, network = _fine_tuning_network(tmp_path)
    arch = {"network_class_name": "nnunet_transfer.networks.primus.TransferPrimus", "arch_kwargs": {}}
    assert not has_deep_supervision(arch)
    assert network(torch.zeros(1, 1, *PATCH)).shape == (1, 3, *PATCH)


def test_an_unknown_token_order_and_yxz_with_unequal_patch_embedding_are_refused():
    with pytest.raises(ValueError, match="token_order"):
        TransferPrimus(1, 48, (8, 8, 8), 2, PATCH, token_order="zyx", eva_depth=1, eva_numheads=2)
    with pytest.raises(ValueError, match="first two axes"):
        TransferPrimus(1, 48, (8, 4, 8), 2, PATCH, token_order="yxz", eva_depth=1, eva_numheads=2)
