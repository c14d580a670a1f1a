"""Tests for nnunet_transfer/demo/subjects.py."""
from __future__ import annotations

import numpy as np
import pytest

from nnunet_transfer.demo.subjects import make_subject, render_subject, sample_subject_params
from nnunet_transfer.errors import NnunetTransferError


def test_subject_arrays(atlas):
    subject = make_subject(atlas, np.random.default_rng(0))
    assert subject.t1.dtype == subject.t1_clean.dtype == np.float32
    assert subject.labels.dtype == np.uint8 and set(np.unique(subject.labels)) == {0, 1, 2, 3}
    assert subject.t1.shape == subject.labels.shape == atlas.shape
    assert np.isfinite(subject.t1).all() and subject.t1.min() >= 0
    assert np.array_equal(subject.labels > 0, subject.brain_mask)
    assert not subject.ventricles[subject.labels != 1].any()  # ventricles are CSF
    means = [subject.t1[subject.labels == k].mean() for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2]  # T1 contrast survives jitter, bias and noise


def test_subjects_are_deformed_differently(atlas):
    first = make_subject(atlas, np.random.default_rng(1))
    second = make_subject(atlas, np.random.default_rng(2))
    assert not np.array_equal(first.labels, second.labels)
    # Deformed, but still mostly overlapping the template brain.
    overlap = (first.brain_mask & atlas.brain_mask).sum() / atlas.brain_mask.sum()
    assert 0.8 < overlap < 1.0


def test_same_generator_seed_gives_identical_subject(atlas):
    first = make_subject(atlas, np.random.default_rng(7), atrophy_grade=1)
    second = make_subject(atlas, np.random.default_rng(7), atrophy_grade=1)
    np.testing.assert_array_equal(first.t1, second.t1)
    np.testing.assert_array_equal(first.labels, second.labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_atrophy_enlarges_ventricles_with_grade(atlas, seed):
    params = sample_subject_params(atlas, np.random.default_rng(seed))
    subjects = [render_subject(atlas, params, grade) for grade in (0, 1, 2)]
    volumes = [s.ventricle_volume_ml for s in subjects]
    assert volumes[0] < volumes[1] < volumes[2]
    csf_volumes = [(s.labels == 1).sum() for s in subjects]
    assert csf_volumes[0] < csf_volumes[1] < csf_volumes[2]
    # Visible in the image: the ventricle region of grade 2 is darker than the same voxels at grade 0.
    grown = subjects[2].ventricles & ~subjects[0].ventricles
    assert subjects[2].t1_clean[grown].mean() < 0.8 * subjects[0].t1_clean[grown].mean()
    # Same head: outside the brain's centre nothing moved.
    np.testing.assert_array_equal(subjects[0].brain_mask, subjects[2].brain_mask)


def test_acquire_reproduces_t1(atlas):
    subject = make_subject(atlas, np.random.default_rng(3))
    np.testing.assert_array_equal(subject.acquire(subject.t1_clean), subject.t1)


@pytest.mark.parametrize("grade", [-1, 3, 1.5])
def test_unknown_atrophy_grade_raises(atlas, grade):
    with pytest.raises(NnunetTransferError, match="atrophy_grade"):
        make_subject(atlas, np.random.default_rng(0), atrophy_grade=grade)
