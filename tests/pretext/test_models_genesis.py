"""Models Genesis as the authors' generate_pair does it (github.com/MrGiovanni/ModelsGenesis,
pytorch/utils.py): local shuffle windows read from the original image, 10,000 of them; the
in-/out-painting box counts, sizes and border distance; the probabilities; the curve."""
import math

import numpy as np
import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.pretext import ModelsGenesis
from nnunet_transfer.pretext import models_genesis as mg_module
from nnunet_transfer.pretext.models_genesis import nonlinear_curves, shuffle_windows

ONLY_SHUFFLE = dict(p_nonlinear=0, p_local_shuffle=1, p_painting=0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def written_one_after_the_other(image, boxes, keys):
    """The authors' loop: each window read from the original, shuffled, written over the output."""
    out, offset = image.clone(), 0
    for box in boxes:
        region = (slice(None),) + tuple(slice(int(a), int(b)) for a, b in box)
        window = image[region]
        n = window[0].numel()
        order = torch.argsort(keys[offset:offset + n], stable=True)
        out[region] = window.reshape(window.shape[0], -1)[:, order].reshape(window.shape)
        offset += n
    return out


@pytest.mark.parametrize("shape", [(2, 36, 28), (1, 20, 18, 14)])
def test_local_shuffle_equals_writing_the_windows_one_after_the_other(shape):
    mg = ModelsGenesis(**ONLY_SHUFFLE, shuffle_blocks=300, shuffle_max_fraction=0.3)
    x = torch.randn((1,) + shape, generator=gen(1))
    params = mg.sample(x.shape, gen(2))
    expected = written_one_after_the_other(x[0], params["shuffle_boxes"][0], params["shuffle_keys"][0])
    assert torch.equal(shuffle_windows(x[0], params["shuffle_boxes"][0], params["shuffle_keys"][0]), expected)
    assert torch.allclose(mg.apply(x, params).input[0], expected, atol=1e-5)  # via [0, 1] and back


def test_too_many_windows_to_pack_sorts_twice_with_the_same_result(monkeypatch):
    x = torch.randn(1, 24, 20, generator=gen(1))
    params = ModelsGenesis(**ONLY_SHUFFLE, shuffle_blocks=50, shuffle_max_fraction=0.3).sample((1,) + x.shape, gen(3))
    packed = shuffle_windows(x, params["shuffle_boxes"][0], params["shuffle_keys"][0])
    monkeypatch.setattr(mg_module, "KEY_BITS", 60)
    assert torch.equal(shuffle_windows(x, params["shuffle_boxes"][0], params["shuffle_keys"][0]), packed)


def test_each_window_is_read_from_the_original_not_from_the_windows_before():
    x = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 16, 16)  # every value once
    # two disjoint windows, then one over parts of both, written last
    boxes = torch.tensor([[[0, 4], [0, 4]], [[8, 12], [8, 12]], [[2, 10], [2, 10]]])
    keys = torch.randint(0, 2 ** 31, (16 + 16 + 64,), generator=gen(4))
    out = shuffle_windows(x, boxes, keys)
    last = (slice(None), slice(2, 10), slice(2, 10))
    # the last window holds its own original values (read from the running result, it would hold
    # values the first two windows moved in from outside it)
    assert torch.equal(out[last].flatten().sort().values, x[last].flatten().sort().values)
    assert not torch.equal(out[last], x[last])
    hidden = torch.zeros(16, 16, dtype=torch.bool)
    hidden[2:10, 2:10] = True
    for box in boxes[:2].tolist():  # what the last window leaves of the first two: their own values
        region = tuple(slice(a, b) for a, b in box)
        assert torch.isin(out[0][region][~hidden[region]], x[0][region]).all()
    untouched = torch.ones(16, 16, dtype=torch.bool)
    for box in boxes.tolist():
        untouched[tuple(slice(a, b) for a, b in box)] = False
    assert torch.equal(out[0][untouched], x[0][untouched])


def test_local_shuffle_at_the_defaults_displaces_most_voxels_as_theirs():
    """About 78 % of a 64 x 64 x 32 cube with 10,000 windows of sides 1..6, 1..6, 1..3 (theirs:
    0.785 measured by benchmarks/pretext_fidelity.py); 100 windows shuffled in turn moved 2 %."""
    mg = ModelsGenesis(**ONLY_SHUFFLE)
    x = torch.randn(1, 1, 64, 64, 32, generator=gen(1))
    params = mg.sample(x.shape, gen(5))
    sides = params["shuffle_boxes"][0, ..., 1] - params["shuffle_boxes"][0, ..., 0]
    assert sides.shape == (10000, 3)
    assert [(int(lo), int(hi)) for lo, hi in zip(sides.amin(0), sides.amax(0))] == [(1, 6), (1, 6), (1, 3)]
    out = shuffle_windows(x[0], params["shuffle_boxes"][0], params["shuffle_keys"][0])
    displaced = (out != x[0]).float().mean().item()
    assert 0.74 < displaced < 0.83


def test_channels_are_shuffled_alike_and_2d_works():
    x = torch.randn(1, 1, 40, 36, generator=gen(1))
    x = torch.cat([x, 2 * x + 5], dim=1)
    out = ModelsGenesis(**ONLY_SHUFFLE, shuffle_blocks=500)(x, gen(2)).input
    assert out.shape == x.shape and out.dtype == x.dtype and not torch.equal(out, x)
    assert torch.allclose(out[:, 1], 2 * out[:, 0] + 5, atol=1e-4)


def _paint_draws(outpaint: bool, n: int = 3000, shape=(64, 64, 32)):
    mg = ModelsGenesis(p_nonlinear=0, p_local_shuffle=0, p_painting=1, p_outpainting=float(outpaint), shuffle_blocks=1)
    params = mg.sample(torch.Size((n, 1) + shape), gen(6))
    return params["paint_boxes"], params["paint_count"]


@pytest.mark.parametrize("outpaint", [False, True])
def test_painting_box_counts_sizes_and_border_follow_theirs(outpaint):
    """In-painting: up to 5 boxes, each while random() < 0.95 (none in 5 %); out-painting: one box,
    then up to 4 more the same way. Sides: in, side//6 .. side//3; out, side - (3/7 .. 4/7 side).
    Boxes 3 voxels from the border."""
    boxes, count = _paint_draws(outpaint)
    p = [0.95 ** k * 0.05 for k in range(5)] + [0.95 ** 5]  # P(k further boxes), k = 0..5
    if outpaint:
        p = [0.0] + [0.95 ** k * 0.05 for k in range(4)] + [0.95 ** 4]
    expected = sum(k * pk for k, pk in enumerate(p))
    sd = math.sqrt(sum((k - expected) ** 2 * pk for k, pk in enumerate(p)) / len(count))
    assert abs(count.float().mean().item() - expected) < 5 * sd
    assert int(count.min()) == (1 if outpaint else 0) and int(count.max()) == 5
    used = torch.arange(5)[None] < count[:, None]
    starts, stops = boxes[..., 0][used], boxes[..., 1][used]
    sides = stops - starts
    ranges = [(28, 37), (28, 37), (14, 19)] if outpaint else [(10, 21), (10, 21), (5, 10)]
    assert [(int(lo), int(hi)) for lo, hi in zip(sides.amin(0), sides.amax(0))] == ranges
    assert int(starts.min()) == 3 and (torch.tensor([64, 64, 32]) - stops).min() == 3


def test_out_painting_keeps_the_boxes_of_the_image_before_it_and_about_30_percent():
    mg = ModelsGenesis(p_nonlinear=0, p_local_shuffle=0, p_painting=1, p_outpainting=1, shuffle_blocks=1)
    x = torch.randn(40, 1, 64, 64, 32, generator=gen(1))
    params = mg.sample(x.shape, gen(7))
    out = mg.apply(x, params).input
    kept = torch.zeros(x.shape, dtype=torch.bool)
    for i in range(len(x)):
        for box in params["paint_boxes"][i][:int(params["paint_count"][i])].tolist():
            kept[(i, slice(None)) + tuple(slice(a, b) for a, b in box)] = True
    assert torch.allclose(out[kept], x[kept], atol=1e-5)  # the boxes: the image as it was
    assert torch.isclose(out[~kept], x[~kept], atol=1e-5).float().mean() < 0.01  # elsewhere: noise
    assert 0.26 < kept.float().mean().item() < 0.36  # theirs: 0.306 on 64 x 64 x 32


def test_in_painting_fills_boxes_with_noise_in_the_sample_range():
    mg = ModelsGenesis(p_nonlinear=0, p_local_shuffle=0, p_painting=1, p_outpainting=0, shuffle_blocks=1)
    x = torch.randn(8, 2, 32, 32, 20, generator=gen(2))
    params = mg.sample(x.shape, gen(8))
    out = mg.apply(x, params).input
    assert (out != x).any()
    for i in range(len(x)):
        assert out[i].min() >= x[i].min() - 1e-5 and out[i].max() <= x[i].max() + 1e-5
        if params["paint_count"][i] == 0:
            assert torch.equal(out[i], x[i])


def test_probabilities_are_the_authors_config():
    params = ModelsGenesis(shuffle_blocks=1).sample(torch.Size((4000, 1, 16, 16)), gen(9))
    for key, p in (("nonlinear", 0.9), ("shuffle", 0.5), ("paint", 0.9), ("outpaint", 0.8), ("decreasing", 0.5)):
        assert abs(params[key].float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / 4000), key
    assert params["shuffle_keys"][int(torch.nonzero(~params["shuffle"])[0])] is None  # no order drawn when unused


def test_the_curve_is_their_interpolated_bezier_in_both_branches():
    """Increasing: x and y sorted; decreasing: x sorted, y as drawn, i.e. v -> y(1 - t(v)); 100,000 t."""
    rng = np.random.default_rng(0)
    v = np.linspace(0, 1, 5001)
    for decreasing in (False, True):
        inner = rng.random((2, 2))
        control = np.array([[0, 0], *inner, [1, 1]])
        t = np.linspace(0, 1, 100000)[:, None]
        curve = (1 - t) ** 3 * control[0] + 3 * (1 - t) ** 2 * t * control[1] + 3 * (1 - t) * t ** 2 * control[2] \
            + t ** 3 * control[3]
        xs, ys = np.sort(curve[:, 0]), curve[::-1, 1] if decreasing else np.sort(curve[:, 1])
        cx, cy = nonlinear_curves(torch.from_numpy(control)[None], torch.tensor([decreasing]))
        ours = mg_module.apply_curve(torch.from_numpy(v)[None], cx, cy)[0].numpy()
        assert np.abs(ours - np.interp(v, xs, ys)).mean() < 1e-5
        assert (np.diff(ours) <= 1e-12).all() if decreasing else (np.diff(ours) >= -1e-12).all()


def test_short_sides_are_clamped_instead_of_failing():
    x = torch.randn(3, 1, 9, 6, 4, generator=gen(1))
    mg = ModelsGenesis(p_nonlinear=1, p_local_shuffle=1, p_painting=1)
    params = mg.sample(x.shape, gen(2))
    for key in ("shuffle_boxes", "paint_boxes"):
        assert (params[key][..., 0] >= 0).all() and (params[key][..., 1] <= torch.tensor([9, 6, 4])).all()
        assert (params[key][..., 1] > params[key][..., 0]).all()
    assert mg.apply(x, params).input.shape == x.shape


@pytest.mark.parametrize("kwargs, message", [
    (dict(paint_continue=1.5), "paint_continue must be a probability"),
    (dict(paint_margin=-1), "paint_margin must be a non-negative int"),
    (dict(inpaint_size=(0.5, 0.2)), "inpaint_size must be a pair"),
    (dict(outpaint_size="wide"), "outpaint_size must be a pair"),
    (dict(shuffle_max_fraction=0), "shuffle_max_fraction must be in"),
    (dict(paint_boxes=0), "paint_boxes must be a positive int"),
])
def test_invalid_parameters_name_the_parameter(kwargs, message):
    with pytest.raises(NnunetTransferError, match=message):
        ModelsGenesis(**kwargs)


def test_plans_lists_are_accepted_for_the_size_ranges():
    assert ModelsGenesis(inpaint_size=[0.1, 0.2], outpaint_size=[0.4, 0.5]).inpaint_size == (0.1, 0.2)
