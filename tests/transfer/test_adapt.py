import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.adapt import (adapt_input_channels, adapt_kernel, inflate_2d_to_3d,
                                            resample_token_embedding)


@settings(max_examples=20, deadline=None)
@given(k=st.sampled_from([1, 3, 5]), depth=st.sampled_from([1, 3]), seed=st.integers(0, 1000))
def test_average_inflated_conv_on_depth_constant_volume_equals_2d_conv(k, depth, seed):
    g = torch.Generator().manual_seed(seed)
    w2 = torch.randn(4, 2, k, k, generator=g, dtype=torch.float64)
    image = torch.randn(1, 2, 9, 9, generator=g, dtype=torch.float64)
    volume = image.unsqueeze(2).repeat(1, 1, 7, 1, 1)  # constant along depth
    w3 = inflate_2d_to_3d(w2, depth, "average")
    assert w3.shape == (4, 2, depth, k, k)
    # replicate padding keeps the volume constant along depth at the borders too
    out3 = F.conv3d(F.pad(volume, (k // 2,) * 4 + (depth // 2,) * 2, mode="replicate"), w3)
    out2 = F.conv2d(F.pad(image, (k // 2,) * 4, mode="replicate"), w2)
    for z in range(out3.shape[2]):
        torch.testing.assert_close(out3[:, :, z], out2)


def test_center_inflation_sees_only_its_own_slice():
    w2 = torch.randn(3, 1, 3, 3, dtype=torch.float64)
    w3 = inflate_2d_to_3d(w2, 3, "center")
    assert torch.equal(w3[:, :, 1], w2) and not w3[:, :, 0].any() and not w3[:, :, 2].any()
    volume = torch.randn(1, 1, 5, 8, 8, dtype=torch.float64)
    out3 = F.conv3d(volume, w3, padding=1)
    torch.testing.assert_close(out3[:, :, 2], F.conv2d(volume[:, :, 2], w2, padding=1))


def test_average_inflated_transposed_conv_divides_by_the_taps_per_output():
    w2 = torch.randn(4, 3, 2, 2, dtype=torch.float64)  # (in, out, k, k), stride 2: one tap per output
    image = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    volume = image.unsqueeze(2).repeat(1, 1, 3, 1, 1)
    out3 = F.conv_transpose3d(volume, inflate_2d_to_3d(w2, 2, "average", taps=1), stride=2)
    out2 = F.conv_transpose2d(image, w2, stride=2)
    for z in range(out3.shape[2]):
        torch.testing.assert_close(out3[:, :, z], out2)


@pytest.mark.parametrize("dim", [2, 3])
def test_rgb_to_grey_sum_gives_the_rgb_response_to_a_replicated_grey_image(dim):
    w = torch.randn(5, 3, *([3] * dim), dtype=torch.float64)
    grey = torch.randn(1, 1, *([6] * dim), dtype=torch.float64)
    conv = F.conv3d if dim == 3 else F.conv2d
    w1, how = adapt_input_channels(w, 1, "sum")
    torch.testing.assert_close(conv(grey, w1), conv(grey.repeat(1, 3, *([1] * dim)), w))
    assert how == "input channels 3->1 (sum)"
    w_mean, _ = adapt_input_channels(w, 1, "mean")
    torch.testing.assert_close(conv(grey, w_mean), conv(grey.repeat(1, 3, *([1] * dim)), w) / 3)


def test_one_to_many_repeats_and_divides():
    w = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    grey = torch.randn(1, 1, 7, 7, dtype=torch.float64)
    w3, how = adapt_input_channels(w, 3)
    torch.testing.assert_close(F.conv2d(grey.repeat(1, 3, 1, 1), w3), F.conv2d(grey, w))
    assert "1->3" in how


def test_other_channel_changes_need_tile():
    w = torch.randn(4, 3, 3, 3)
    with pytest.raises(NnunetTransferError, match="Cannot adapt 3 input channels to 2"):
        adapt_input_channels(w, 2, "sum")
    w2, how = adapt_input_channels(w, 5, "tile")
    assert w2.shape == (4, 5, 3, 3) and torch.allclose(w2[:, 3], w[:, 0] * 3 / 5) and "tile" in how
    with pytest.raises(NnunetTransferError, match="Unknown input-channel rule"):
        adapt_input_channels(w, 1, "max")


def test_kernel_crop_pad_and_average():
    w = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert torch.equal(adapt_kernel(w, (3, 3), "crop"), w[:, :, 1:4, 1:4])
    padded = adapt_kernel(w[:, :, 1:4, 1:4], (5, 5), "crop")
    assert torch.equal(padded[:, :, 1:4, 1:4], w[:, :, 1:4, 1:4]) and padded.sum() == w[:, :, 1:4, 1:4].sum()
    averaged = adapt_kernel(torch.ones(2, 3, 3, 3, 3), (1, 3, 3), "average")
    assert averaged.shape == (2, 3, 1, 3, 3) and torch.allclose(averaged, torch.ones(()))
    with pytest.raises(NnunetTransferError, match="differ in dimensions"):
        adapt_kernel(w, (3, 3, 3))


def test_bad_inflation_arguments():
    with pytest.raises(NnunetTransferError, match="Unknown inflation rule"):
        inflate_2d_to_3d(torch.zeros(1, 1, 3, 3), 3, "stretch")
    with pytest.raises(NnunetTransferError, match="only inflate a 2D kernel"):
        inflate_2d_to_3d(torch.zeros(1, 1, 3, 3, 3), 3)


# ---------------------------------------------------------------------------- positional embeddings

def _embedding_of_positions(grid, order):
    """An embedding whose 3 channels are the token's (x, y, z) position, flattened in ``order``."""
    x, y, z = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in grid), indexing="ij")
    volume = torch.stack([x, y, z], dim=-1)  # (x, y, z, 3)
    if order == "yxz":
        volume = volume.transpose(0, 1)
    return volume.reshape(1, -1, 3)


def test_an_unchanged_token_grid_is_copied_exactly():
    embedding = torch.randn(1, 4 * 3 * 2, 6)
    out, how = resample_token_embedding(embedding, (4, 3, 2), (4, 3, 2), "yxz", "yxz")
    assert out is embedding and how == "positional embedding unchanged"


@pytest.mark.parametrize("source_order,target_order", [("yxz", "xyz"), ("xyz", "yxz"), ("yxz", "yxz")])
def test_every_position_keeps_its_embedding_across_token_orders(source_order, target_order):
    grid = (4, 3, 2)
    out, _ = resample_token_embedding(_embedding_of_positions(grid, source_order), grid, grid, source_order,
                                      target_order)
    assert torch.equal(out, _embedding_of_positions(grid, target_order))


def test_a_new_grid_is_resampled_trilinearly_on_image_axes():
    source, target = (4, 4, 4), (6, 4, 2)
    constant = torch.full((1, 64, 5), 0.25)
    out, how = resample_token_embedding(constant, source, target, "yxz", "yxz")
    assert out.shape == (1, 48, 5) and torch.allclose(out, torch.full_like(out, 0.25))
    assert "token grid 4x4x4 -> 6x4x2 (trilinear)" in how
    ramp, _ = resample_token_embedding(_embedding_of_positions(source, "yxz"), source, target, "yxz", "xyz")
    volume = ramp.reshape(*target, 3)
    assert torch.all(volume[1:, :, :, 0] > volume[:-1, :, :, 0])  # x still grows along x
    assert torch.allclose(volume[..., 1], _embedding_of_positions((6, 4, 2), "xyz").reshape(6, 4, 2, 3)[..., 1])


def test_an_embedding_that_does_not_fill_its_grid_is_refused():
    with pytest.raises(NnunetTransferError, match="not one token per cell"):
        resample_token_embedding(torch.zeros(1, 10, 4), (2, 2, 2), (2, 2, 2))
