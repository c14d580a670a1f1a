"""Smooth random fields on a voxel grid: deformations, bias fields and lesion shapes.

A field is a few random coefficients on a coarse lattice of nodes, interpolated with Gaussian
radial weights along each axis separately. Separable weights make a full-grid field three small
matrix products instead of a cubic spline evaluation per voxel, which keeps a 2 mm subject fast.
"""
from __future__ import annotations

import numpy as np


def _axis_weights(n: int, spacing_mm: float, node_mm: float) -> np.ndarray:
    """Return the (n, nodes) interpolation matrix of one axis; rows sum to 1.

    Nodes are ``node_mm`` apart and cover the axis with one node beyond each end, so the field
    has no flat border. The Gaussian width equals the node distance: smooth, but each node still
    has a local effect.
    """
    extent = (n - 1) * spacing_mm
    count = int(np.ceil(extent / node_mm)) + 3
    nodes = (np.arange(count) - 1.0) * node_mm - 0.5 * ((count - 3) * node_mm - extent)
    positions = np.arange(n) * spacing_mm
    weights = np.exp(-0.5 * ((positions[:, None] - nodes[None, :]) / node_mm) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


def lattice_shape(shape: tuple[int, ...], spacing_mm: float, node_mm: float) -> tuple[int, ...]:
    """Number of lattice nodes per axis for a grid of ``shape`` voxels (used to draw coefficients)."""
    return tuple(_axis_weights(n, spacing_mm, node_mm).shape[1] for n in shape)


def interpolate_lattice(coefficients: np.ndarray, shape: tuple[int, int, int], spacing_mm: float,
                        node_mm: float) -> np.ndarray:
    """Interpolate lattice ``coefficients`` (nodes_x, nodes_y, nodes_z) to a float32 field of ``shape``.

    The coefficients must have ``lattice_shape(shape, spacing_mm, node_mm)``; raises ValueError
    otherwise.
    """
    wx, wy, wz = (_axis_weights(n, spacing_mm, node_mm) for n in shape)
    if coefficients.shape != (wx.shape[1], wy.shape[1], wz.shape[1]):
        raise ValueError(f"lattice coefficients have shape {coefficients.shape}, expected "
                         f"{(wx.shape[1], wy.shape[1], wz.shape[1])}")
    field = np.tensordot(wx, coefficients.astype(np.float32), axes=(1, 0))  # (X, ny, nz)
    field = np.tensordot(field, wy, axes=(1, 1))  # (X, nz, Y)
    field = np.tensordot(field, wz, axes=(1, 1))  # (X, Y, Z)
    return np.ascontiguousarray(field, dtype=np.float32)


def random_field(shape: tuple[int, int, int], spacing_mm: float, node_mm: float,
                 rng: np.random.Generator) -> np.ndarray:
    """A smooth random float32 field of ``shape`` with zero mean and unit standard deviation."""
    coefficients = rng.standard_normal(lattice_shape(shape, spacing_mm, node_mm))
    field = interpolate_lattice(coefficients, shape, spacing_mm, node_mm)
    field -= field.mean()
    field /= max(float(field.std()), 1e-6)
    return field
