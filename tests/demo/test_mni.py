"""Tests for nnunet_transfer/demo/mni.py."""
from __future__ import annotations

import numpy as np
import pytest

from nnunet_transfer.demo.mni import load_atlas, tissue_labels
from nnunet_transfer.errors import NnunetTransferError


def test_atlas_arrays_are_consistent(atlas):
    assert atlas.t1.dtype == atlas.gm.dtype == atlas.wm.dtype == atlas.csf.dtype == np.float32
    assert atlas.brain_mask.dtype == atlas.ventricles.dtype == bool
    assert all(a.shape == atlas.shape for a in (atlas.gm, atlas.wm, atlas.csf, atlas.brain_mask, atlas.ventricles))
    assert 0.0 <= atlas.t1.min() and atlas.t1.max() <= 1.0
    expected_csf = np.clip(atlas.brain_mask - atlas.gm - atlas.wm, 0.0, 1.0)
    np.testing.assert_allclose(atlas.csf, expected_csf, atol=1e-6)
    np.testing.assert_array_equal(atlas.affine[:3, :3], np.eye(3) * 4.0)
    assert atlas.ventricles[~atlas.brain_mask].sum() == 0


def test_atlas_anatomy_is_plausible(atlas):
    brain_ml = atlas.brain_mask.sum() * atlas.voxel_volume_ml
    ventricles_ml = atlas.ventricles.sum() * atlas.voxel_volume_ml
    assert 1200 < brain_ml < 2200
    assert 8 < ventricles_ml < 60
    csf, gm, wm = atlas.pure_intensities
    assert csf < gm < wm  # T1 contrast


def test_atlas_is_cached_per_spacing(atlas):
    assert load_atlas(4.0) is atlas
    assert load_atlas(4) is atlas


@pytest.mark.parametrize("spacing", [0.5, 9.0, float("nan"), "two"])
def test_bad_spacing_raises(spacing):
    with pytest.raises(NnunetTransferError, match="spacing"):
        load_atlas(spacing)


def test_tissue_labels_argmax_inside_brain():
    csf = np.array([0.6, 0.1, 0.1, 0.9], np.float32)
    gm = np.array([0.3, 0.8, 0.2, 0.0], np.float32)
    wm = np.array([0.1, 0.1, 0.7, 0.1], np.float32)
    brain = np.array([True, True, True, False])
    np.testing.assert_array_equal(tissue_labels(csf, gm, wm, brain), [1, 2, 3, 0])
