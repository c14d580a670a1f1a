"""Boundary metrics: hand-computed cases, and a dense scipy distance transform on random anisotropic volumes."""
import math

import numpy as np
import pytest
from scipy import ndimage

from nnunet_transfer.evaluation.boundary import boundary_metrics


def test_two_single_voxels_in_anisotropic_spacing():
    ref, pred = np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool)
    ref[0, 0, 0], pred[1, 1, 0] = True, True
    spacing = (3.0, 1.0, 2.0)                      # z, y, x in mm
    d = math.sqrt(3.0 ** 2 + 1.0 ** 2)             # one voxel in z and one in y apart
    m = boundary_metrics(ref, pred, spacing, tolerance_mm=3.0)
    assert m["HD95"] == pytest.approx(d) and m["ASSD"] == pytest.approx(d)
    assert m["NSD"] == 0.0                         # sqrt(10) > 3
    assert boundary_metrics(ref, pred, spacing, tolerance_mm=d)["NSD"] == 1.0   # the tolerance is inclusive


def test_identical_masks_and_a_shifted_cube():
    cube = np.zeros((9, 9, 9), bool)
    cube[2:5, 2:5, 2:5] = True                     # 27 voxels, 26 on the surface
    assert boundary_metrics(cube, cube, (1.0, 1.0, 1.0), 0.0) == {"NSD": 1.0, "HD95": 0.0, "ASSD": 0.0}
    shifted = np.roll(cube, 1, axis=2)
    m = boundary_metrics(cube, shifted, (1.0, 1.0, 1.0), 0.0)
    # on each surface: the 9-voxel face outside the other cube is 1 mm from its surface, and so is the
    # centre of the far face, which is the other cube's interior voxel; the other 16 lie on its surface
    assert m["NSD"] == pytest.approx(16 / 26)
    assert m["ASSD"] == pytest.approx(10 / 26)
    assert m["HD95"] == pytest.approx(1.0)


def test_a_single_slice_has_2d_outlines():
    ref = np.zeros((1, 7, 7), bool)
    ref[0, 2:5, 2:5] = True                        # a 3x3 square: its centre is inside in 2D
    pred = ref.copy()
    pred[0, 3, 3] = False                          # the same outline without the centre
    assert boundary_metrics(ref, pred, (5.0, 1.0, 1.0), 0.0) == {"NSD": 1.0, "HD95": 0.0, "ASSD": 0.0}


@pytest.mark.parametrize("ref_empty, pred_empty, expected", [
    (True, True, {"NSD": 1.0, "HD95": 0.0, "ASSD": 0.0}),
    (True, False, {"NSD": 0.0, "HD95": math.nan, "ASSD": math.nan}),
    (False, True, {"NSD": 0.0, "HD95": math.nan, "ASSD": math.nan}),
])
def test_empty_masks(ref_empty, pred_empty, expected):
    full = np.zeros((5, 5, 5), bool)
    full[1:3, 1:3, 1:3] = True
    empty = np.zeros_like(full)
    m = boundary_metrics(empty if ref_empty else full, empty if pred_empty else full, (1.0, 1.0, 1.0), 1.0)
    assert m.keys() == expected.keys()
    for key, value in expected.items():
        assert (math.isnan(m[key]) and math.isnan(value)) or m[key] == value


def _dense_reference(ref, pred, spacing, tolerance):
    """The same definitions with scipy's dense Euclidean distance transform over the whole volume."""
    structure = ndimage.generate_binary_structure(3, 1)
    s_ref = ref & ~ndimage.binary_erosion(ref, structure, border_value=0)
    s_pred = pred & ~ndimage.binary_erosion(pred, structure, border_value=0)
    to_ref = ndimage.distance_transform_edt(~s_ref, sampling=spacing)[s_pred]
    to_pred = ndimage.distance_transform_edt(~s_pred, sampling=spacing)[s_ref]
    both = np.concatenate([to_ref, to_pred])
    return {"NSD": np.count_nonzero(both <= tolerance) / both.size,
            "HD95": max(np.percentile(to_ref, 95), np.percentile(to_pred, 95)), "ASSD": both.mean()}


@pytest.mark.parametrize("seed", range(8))
def test_equals_a_dense_distance_transform_on_random_anisotropic_volumes(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(6, 20, 3))
    spacing = tuple(float(s) for s in rng.uniform(0.4, 3.5, 3))
    ref = ndimage.binary_opening(rng.random(shape) > 0.55)
    pred = ndimage.binary_opening(rng.random(shape) > 0.55) | ref & (rng.random(shape) > 0.5)
    if not ref.any() or not pred.any():
        pytest.skip("an empty random mask")
    tolerance = float(rng.uniform(0.5, 3.0))
    ours = boundary_metrics(ref, pred, spacing, tolerance)
    dense = _dense_reference(ref, pred, spacing, tolerance)
    for key in ("HD95", "ASSD", "NSD"):
        assert ours[key] == pytest.approx(dense[key], abs=1e-6), key


def test_equals_monai_where_it_is_installed():
    monai_metrics = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(42)
    for _ in range(5):
        shape = tuple(int(n) for n in rng.integers(8, 20, 3))
        spacing = tuple(float(s) for s in rng.uniform(0.5, 3.0, 3))
        ref = ndimage.binary_opening(rng.random(shape) > 0.5)
        pred = ndimage.binary_opening(rng.random(shape) > 0.5)
        if not ref.any() or not pred.any():
            continue
        ours = boundary_metrics(ref, pred, spacing, 2.0)
        p, r = (torch.from_numpy(m)[None, None].float() for m in (pred, ref))
        theirs = {"HD95": monai_metrics.compute_hausdorff_distance(p, r, include_background=True, percentile=95,
                                                                   spacing=spacing).item(),
                  "ASSD": monai_metrics.compute_average_surface_distance(p, r, include_background=True, symmetric=True,
                                                                         spacing=spacing).item(),
                  "NSD": monai_metrics.compute_surface_dice(p, r, [2.0], include_background=True,
                                                            spacing=spacing).item()}
        for key in theirs:  # MONAI returns float32
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-5), key


def test_bad_arguments():
    mask = np.ones((3, 3, 3), bool)
    with pytest.raises(ValueError, match="shapes differ"):
        boundary_metrics(mask, mask[:2], (1, 1, 1), 1.0)
    with pytest.raises(ValueError, match="spacing"):
        boundary_metrics(mask, mask, (1, 1), 1.0)
    with pytest.raises(ValueError, match="tolerance"):
        boundary_metrics(mask, mask, (1, 1, 1), -1.0)
