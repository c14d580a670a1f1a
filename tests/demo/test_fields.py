"""Tests for nnunet_transfer/demo/fields.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnunet_transfer.demo.fields import interpolate_lattice, lattice_shape, random_field


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(*[st.integers(2, 24)] * 3), spacing=st.sampled_from([1.0, 2.0, 4.0]),
       node=st.sampled_from([8.0, 20.0]))
def test_constant_coefficients_give_a_constant_field(shape, spacing, node):
    coefficients = np.full(lattice_shape(shape, spacing, node), 2.5)
    field = interpolate_lattice(coefficients, shape, spacing, node)
    assert field.shape == shape and field.dtype == np.float32
    np.testing.assert_allclose(field, 2.5, rtol=1e-5)


def test_random_field_is_smooth_normalised_and_seeded():
    field = random_field((30, 30, 30), 2.0, 16.0, np.random.default_rng(0))
    assert abs(field.mean()) < 1e-4 and abs(field.std() - 1.0) < 1e-4
    assert np.abs(np.diff(field, axis=0)).max() < 0.5  # neighbours differ little: smooth
    np.testing.assert_array_equal(field, random_field((30, 30, 30), 2.0, 16.0, np.random.default_rng(0)))


def test_wrong_lattice_shape_raises():
    with pytest.raises(ValueError, match="lattice"):
        interpolate_lattice(np.zeros((2, 2, 2)), (10, 10, 10), 2.0, 8.0)
