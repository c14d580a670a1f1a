"""Tests for nnunet_transfer/demo/lesions.py and territories.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from nnunet_transfer.demo.lesions import (
    MS_MAX_VOLUME_ML,
    MS_MIN_VOXELS,
    add_ms_lesions,
    add_stroke_lesions,
    juxtacortical_mm,
    periventricular_mm,
)
from nnunet_transfer.demo.subjects import make_subject
from nnunet_transfer.demo.territories import cerebrum_mask, territory_mask
from nnunet_transfer.errors import NnunetTransferError

CONNECTIVITY_26 = np.ones((3, 3, 3), bool)
SEEDS = range(6)


def _components(mask):
    labelled, count = ndimage.label(mask, structure=CONNECTIVITY_26)
    return labelled, count


@pytest.fixture(scope="module")
def subjects(atlas):
    return [make_subject(atlas, np.random.default_rng(seed)) for seed in SEEDS]


@pytest.mark.parametrize("seed", SEEDS)
def test_stroke_lesions(subjects, seed):
    subject = subjects[seed]
    result = add_stroke_lesions(subject, np.random.default_rng(100 + seed))
    mask = result.lesion_mask.astype(bool)
    assert result.lesion_mask.dtype == np.uint8 and set(np.unique(result.lesion_mask)) == {0, 1}
    labelled, count = _components(mask)
    assert count == len(result.lesions) and count in (1, 2)
    assert mask.sum() * subject.voxel_volume_ml <= 150 * 1.05 + 40
    for lesion in result.lesions:
        component = labelled == labelled[lesion.centre_voxel]
        assert component.sum() == lesion.n_voxels
        assert 2.5 <= lesion.volume_ml <= 150 * 1.05
        assert subject.brain_mask[component].all()
        tissue = subject.labels[component]
        assert (tissue == 2).any() and (tissue == 3).any()  # cortical-subcortical
        assert territory_mask(subject.mni_mm, lesion.territory, lesion.side)[component].all()
    wm_mean = result.t1[(subject.labels == 3) & ~mask].mean()
    assert result.t1[mask].mean() < 0.8 * wm_mean  # hypointense
    # Only the lesion and its partial-volume rim changed.
    changed = ~np.isclose(result.t1, subject.t1)
    assert not changed[~ndimage.binary_dilation(mask, CONNECTIVITY_26, iterations=2)].any()


@pytest.mark.parametrize("seed", SEEDS)
def test_ms_lesions(subjects, seed):
    subject = subjects[seed]
    result = add_ms_lesions(subject, np.random.default_rng(200 + seed))
    mask = result.lesion_mask.astype(bool)
    labelled, count = _components(mask)
    assert 3 <= count <= 30 and count == len(result.lesions)
    assert (subject.labels[mask] == 3).all()  # white matter only
    assert cerebrum_mask(subject.mni_mm)[mask].all()
    to_ventricles = ndimage.distance_transform_edt(~subject.ventricles, sampling=subject.spacing_mm)
    to_gm = ndimage.distance_transform_edt(subject.labels != 2, sampling=subject.spacing_mm)
    wm_mean = result.t1[(subject.labels == 3) & ~mask].mean()
    for lesion in result.lesions:
        component = labelled == labelled[lesion.centre_voxel]
        assert component.sum() == lesion.n_voxels >= MS_MIN_VOXELS
        assert lesion.volume_ml <= MS_MAX_VOLUME_ML + subject.voxel_volume_ml
        if lesion.location == "periventricular":
            assert to_ventricles[component].min() <= periventricular_mm(subject.spacing_mm)
        else:
            assert lesion.location == "juxtacortical"
            assert to_gm[component].min() <= juxtacortical_mm(subject.spacing_mm)
        assert 0.35 <= lesion.intensity_factor <= 0.85
        assert subject.t1_clean[component].mean() * 0.9 > 0  # sanity: lesion lies in tissue
        assert result.t1[component].mean() < wm_mean  # hypointense


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_lesion_records_match_components_for_any_seed(subjects, seed):
    subject = subjects[seed % len(subjects)]
    for simulate in (add_stroke_lesions, add_ms_lesions):
        result = simulate(subject, np.random.default_rng(seed))
        _, count = _components(result.lesion_mask)
        assert count == len(result.lesions)
        assert sum(lesion.n_voxels for lesion in result.lesions) == int(result.lesion_mask.sum())


def test_lesions_are_reproducible(subjects):
    for simulate in (add_stroke_lesions, add_ms_lesions):
        first = simulate(subjects[0], np.random.default_rng(5))
        second = simulate(subjects[0], np.random.default_rng(5))
        np.testing.assert_array_equal(first.t1, second.t1)
        np.testing.assert_array_equal(first.lesion_mask, second.lesion_mask)
        assert first.lesions == second.lesions
        other = simulate(subjects[0], np.random.default_rng(6))
        assert not np.array_equal(first.lesion_mask, other.lesion_mask)


def test_territories_are_disjoint_and_lateralised(subjects):
    mni = subjects[0].mni_mm
    masks = {(t, s): territory_mask(mni, t, s) for t in ("MCA", "ACA", "PCA") for s in ("left", "right")}
    total = sum(m.astype(int) for m in masks.values())
    assert total.max() == 1
    assert (mni[0][masks["MCA", "right"]] > 0).all() and (mni[0][masks["MCA", "left"]] < 0).all()


@pytest.mark.parametrize("territory, side", [("XCA", "left"), ("MCA", "up")])
def test_unknown_territory_raises(subjects, territory, side):
    with pytest.raises(NnunetTransferError):
        territory_mask(subjects[0].mni_mm, territory, side)
