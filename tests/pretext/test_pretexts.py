"""Each pretext: shape and dtype kept, same seed -> same output, its statistics, bad parameters refused."""
import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.pretext import (ContextRestoration, MaskedImageModeling, ModelsGenesis, RotationPrediction,
                                     SimCLRViews, nt_xent)
from nnunet_transfer.pretext.models_genesis import apply_curve, bezier_lookup

SHAPES = [(2, 1, 24, 20), (2, 3, 12, 16, 16)]
RECONSTRUCTION = [ModelsGenesis, ContextRestoration, MaskedImageModeling]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls", RECONSTRUCTION)
def test_reconstruction_pretexts_keep_shape_dtype_and_target(cls, shape):
    x = torch.randn(shape, generator=gen(1))
    out = cls()(x, gen())
    assert out.input.shape == x.shape and out.input.dtype == x.dtype
    assert torch.equal(out.target, x) and not torch.equal(out.input, x)


@pytest.mark.parametrize("cls", RECONSTRUCTION + [RotationPrediction, SimCLRViews])
def test_same_seed_same_output_other_seed_other_output(cls):
    x = torch.randn(8, 2, 12, 16, 16, generator=gen(1))
    a, b, c = cls()(x, gen(7)), cls()(x, gen(7)), cls()(x, gen(8))
    assert torch.equal(a.input, b.input) and torch.equal(a.target, b.target)
    assert not (torch.equal(a.input, c.input) and torch.equal(a.target, c.target))


def test_bezier_mapping_is_monotone_and_spans_the_unit_interval():
    control = torch.zeros(5, 4, 2, dtype=torch.float64)
    control[:, 3] = 1
    control[:, 1:3] = torch.rand(5, 2, 2, generator=gen(3), dtype=torch.float64).sort(dim=1).values
    cx, cy = bezier_lookup(control)
    values = torch.linspace(0, 1, 1001, dtype=torch.float64).repeat(5, 1)
    mapped = apply_curve(values, cx, cy)
    assert (mapped.diff(dim=1) >= -1e-12).all()
    assert torch.allclose(mapped[:, 0], torch.zeros(5, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(mapped[:, -1], torch.ones(5, dtype=torch.float64), atol=1e-9)


def test_local_pixel_shuffling_keeps_each_blocks_multiset():
    mg = ModelsGenesis(p_nonlinear=0, p_local_shuffle=1, p_painting=0, shuffle_blocks=1)
    x = torch.arange(2 * 24 * 20, dtype=torch.float32).reshape(2, 1, 24, 20)
    params = mg.sample(x.shape, gen(4))
    out = mg.apply(x, params).input
    for i in range(2):
        box = params["shuffle_boxes"][i][0]
        region = (i, slice(None)) + tuple(slice(int(a), int(b)) for a, b in box)
        assert torch.allclose(out[region].flatten().sort().values, x[region].flatten().sort().values)
        outside = torch.ones_like(x[i], dtype=torch.bool)
        outside[(slice(None),) + region[2:]] = False
        assert torch.allclose(out[i][outside], x[i][outside])


def test_painting_replaces_regions_with_noise_inside_the_value_range():
    mg = ModelsGenesis(p_nonlinear=0, p_local_shuffle=0, p_painting=1, p_outpainting=0)
    x = torch.randn(2, 1, 24, 20, generator=gen(2))
    out = mg(x, gen(5)).input
    assert (out != x).any() and out.min() >= x.min() - 1e-5 and out.max() <= x.max() + 1e-5


def test_context_restoration_keeps_the_histogram():
    x = torch.randn(2, 2, 32, 32, generator=gen(2))
    out = ContextRestoration(swaps=20)(x, gen(1)).input
    for i in range(2):
        assert torch.equal(out[i].flatten().sort().values, x[i].flatten().sort().values)
    assert not torch.equal(out, x)


@pytest.mark.parametrize("shape", SHAPES)
def test_masked_fraction_and_loss_mask(shape):
    ratio = 0.4
    out = MaskedImageModeling(mask_ratio=ratio, block_size=4)(torch.randn(shape) + 5, gen())
    fraction = out.mask.float().mean().item()
    assert abs(fraction - ratio) < 0.05
    assert (out.input[out.mask] == 0).all() and (out.input[~out.mask] != 0).all()


def test_masked_blocks_are_the_ratio_rounded_up_as_simmim():
    """SimMIM's MaskGenerator masks ceil(ratio * patches): 30 of 49 at 224 px with 32 px patches."""
    out = MaskedImageModeling(mask_ratio=0.6, block_size=32).sample(torch.Size((6, 1, 224, 224)), gen())
    assert out["blocks"].flatten(1).sum(1).tolist() == [30] * 6


def test_simclr_crops_follow_simclrs_ranges():
    """Area 0.08-1 of the image with at least 0.1 kept, aspect ratio 3/4-4/3 (rounding apart)."""
    params = SimCLRViews().sample(torch.Size((2000, 1, 224, 224)), gen(4))
    size = params["crop_size"].double()
    area, aspect = (size / 224).prod(1), size[:, 1] / size[:, 0]
    assert 0.1 <= area.min() < 0.12 and 0.9 < area.max() <= 1 and 0.3 < area.mean() < 0.5
    assert 0.73 < aspect.min() < 0.76 and 1.32 < aspect.max() < 1.36
    assert (params["crop_start"] >= 0).all() and (params["crop_start"] + params["crop_size"] <= 224).all()
    volume = SimCLRViews().sample(torch.Size((200, 1, 16, 20, 24)), gen(5))
    assert ((volume["crop_start"] + volume["crop_size"]) <= torch.tensor([16, 20, 24])).all()
    assert (volume["crop_size"].double().prod(1) >= 0.1 * 16 * 20 * 24).all()


def test_rotation_labels_and_inverse():
    x = torch.randn(4, 1, 12, 16, 20, generator=gen(3))
    out = RotationPrediction()(x, gen(9))
    assert out.input.shape == (4, 1, 12, 16, 16) and set(out.target.tolist()) <= {0, 1, 2, 3}
    for img, k, orig in zip(out.input, out.target, x[..., 2:18]):
        assert torch.equal(torch.rot90(img, -int(k), dims=(-2, -1)), orig)


def test_simclr_views_and_nt_xent():
    x = torch.randn(3, 1, 16, 16, generator=gen(3))
    out = SimCLRViews()(x, gen(2))
    assert out.input.shape == (6, 1, 16, 16) and out.input.dtype == x.dtype
    z = torch.randn(3, 8, generator=gen(1))
    assert nt_xent(z, z) < nt_xent(z, torch.randn(3, 8, generator=gen(2)))
    assert nt_xent(z, z, temperature=0.05) < nt_xent(z, z, temperature=1.0)


@pytest.mark.parametrize("make, message", [
    (lambda: ModelsGenesis(p_nonlinear=1.5), "p_nonlinear must be a probability"),
    (lambda: ModelsGenesis(shuffle_blocks=0), "shuffle_blocks must be a positive int"),
    (lambda: ContextRestoration(patch_fraction=0.9), "patch_fraction must be in"),
    (lambda: ContextRestoration(swaps=-1), "swaps must be a positive int"),
    (lambda: MaskedImageModeling(mask_ratio=1.0), "mask_ratio must be in"),
    (lambda: MaskedImageModeling(block_size=2.5), "block_size must be a positive int"),
    (lambda: SimCLRViews(noise_std=-1), "noise_std"),
    (lambda: SimCLRViews(crop_area=(0, 1)), "crop_area must be a pair"),
    (lambda: SimCLRViews(crop_aspect=(2, 1)), "crop_aspect must be a pair"),
    (lambda: nt_xent(torch.zeros(2, 3), torch.zeros(3, 3)), "nt_xent needs"),
    (lambda: ModelsGenesis()(torch.zeros(2, 16, 16), gen()), "floating-point batch"),
    (lambda: MaskedImageModeling()(torch.zeros(1, 1, 8, 8, dtype=torch.long), gen()), "floating-point batch"),
])
def test_invalid_parameters_are_refused(make, message):
    with pytest.raises(NnunetTransferError, match=message):
        make()
