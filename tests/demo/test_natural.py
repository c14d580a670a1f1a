"""Tests for nnunet_transfer/demo/natural.py."""
from __future__ import annotations

import numpy as np
import pytest

from nnunet_transfer.demo.natural import (
    CLASS_IMAGES,
    IMAGE_ORIGINS,
    TEXTURE_IMAGES,
    classification_crop,
    horse_mask,
    horse_scene,
    load_image,
    random_crop,
    unlabeled_crop,
)
from nnunet_transfer.errors import NnunetTransferError


@pytest.mark.parametrize("name", CLASS_IMAGES + TEXTURE_IMAGES)
def test_every_picture_loads_offline_as_rgb(name):
    image = load_image(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= 128
    assert name in IMAGE_ORIGINS


def test_classification_crops_cover_the_classes():
    rng = np.random.default_rng(0)
    labels = set()
    for _ in range(40):
        crop, label = classification_crop(rng, 32)
        assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
        labels.add(label)
    assert len(CLASS_IMAGES) >= 4 and labels == set(range(len(CLASS_IMAGES)))


def test_horse_scene_has_a_real_silhouette():
    silhouette = horse_mask()
    assert silhouette.dtype == bool and 0.2 < silhouette.mean() < 0.9
    image, mask = horse_scene(np.random.default_rng(1), 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert 0.05 < mask.mean() < 0.8


def test_crops_are_reproducible_and_vary():
    first = unlabeled_crop(np.random.default_rng(4), 48)
    np.testing.assert_array_equal(first, unlabeled_crop(np.random.default_rng(4), 48))
    assert not np.array_equal(first, unlabeled_crop(np.random.default_rng(5), 48))


@pytest.mark.parametrize("size", [4, 1000, 32.5, True])
def test_bad_size_raises(size):
    with pytest.raises(NnunetTransferError, match="size"):
        random_crop(load_image("chelsea"), size, np.random.default_rng(0))


def test_unknown_picture_raises():
    with pytest.raises(NnunetTransferError, match="unknown demo picture"):
        load_image("lena")
