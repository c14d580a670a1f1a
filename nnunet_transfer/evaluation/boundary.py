"""Boundary metrics of one label: normalised surface Dice (NSD) at a tolerance, HD95 and ASSD, in mm.

Definitions (the conventions of MONAI's ``compute_surface_dice`` / ``compute_hausdorff_distance`` /
``compute_average_surface_distance`` without sub-voxel areas, and of Metrics Reloaded):

- the surface S(M) of a mask M is the set of its voxels with at least one face neighbour outside M
  (M minus its binary erosion with the 6-connected cross; voxels beyond the image border count as
  outside); axes of size 1 are dropped first, so a 2D image stored as one slice has 2D outlines;
- d(a, S) is the Euclidean distance in mm from voxel centre a to the nearest voxel centre of S,
  with the image spacing (anisotropic spacing honoured);
- HD95 = max(P95 of d(a, S_ref) over a in S_pred, P95 of d(b, S_pred) over b in S_ref), with
  numpy's linear percentile interpolation;
- ASSD = (sum of d(a, S_ref) over S_pred + sum of d(b, S_pred) over S_ref) / (|S_pred| + |S_ref|);
- NSD(tau) = (|{a in S_pred : d(a, S_ref) <= tau}| + |{b in S_ref : d(b, S_pred) <= tau}|)
  / (|S_pred| + |S_ref|).

Empty masks: both empty gives NSD 1, HD95 0, ASSD 0 (nothing to disagree about, as Dice 1); exactly
one empty gives NSD 0 and HD95 / ASSD undefined (NaN), left out of means and counted by the
summary's ``n``.

Distances come from scipy's KD-tree over the surface voxels' coordinates in mm (exact, float64);
only the surfaces are touched, so the cost grows with the outline, not with the volume.
``benchmarks/evaluation_time.py`` compares it with a dense distance transform. Pure, no I/O.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.spatial import KDTree

PERCENTILE = 95.0
KD_LEAF_SIZE = 32


def _squeeze(mask: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, tuple[float, ...]]:
    """Drop axes of size 1 (a 2D slice stored as 3D) with their spacing."""
    keep = [axis for axis, size in enumerate(mask.shape) if size > 1]
    if len(keep) == mask.ndim:
        return mask, spacing
    return mask.reshape([mask.shape[a] for a in keep]), tuple(spacing[a] for a in keep)


def surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of a boolean mask with a face neighbour outside it (outside the image counts)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_points(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Surface voxel centres of a boolean mask as an (n, ndim) array in mm."""
    return np.argwhere(surface(mask)) * np.asarray(spacing, dtype=float)


def surface_distances(reference: np.ndarray, prediction: np.ndarray,
                      spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from every predicted surface voxel to the reference surface, and from
    every reference surface voxel to the predicted surface (both masks non-empty).

    In: two boolean masks of one shape (any dimensionality) and the spacing in the masks' axis
    order. Out: (d(S_pred -> S_ref), d(S_ref -> S_pred)).
    """
    union = reference | prediction
    box = ndimage.find_objects(union.astype(np.uint8))[0]
    # one voxel of margin: erosion treats the border of the crop as outside, as the image border
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    ref_points = surface_points(reference[box], spacing)
    pred_points = surface_points(prediction[box], spacing)
    to_ref = KDTree(ref_points, leafsize=KD_LEAF_SIZE).query(pred_points, k=1)[0]
    to_pred = KDTree(pred_points, leafsize=KD_LEAF_SIZE).query(ref_points, k=1)[0]
    return np.asarray(to_ref, dtype=float), np.asarray(to_pred, dtype=float)


def boundary_metrics(reference: np.ndarray, prediction: np.ndarray, spacing: tuple[float, ...],
                     tolerance_mm: float) -> dict[str, float]:
    """NSD at ``tolerance_mm``, HD95 and ASSD (mm) of two boolean masks; see the module docstring.

    In: masks of one shape, ``spacing`` in mm in the masks' axis order (numpy z, y, x for a
    SimpleITK array: the reverse of ``GetSpacing()``). Raises ValueError for shapes or spacing
    that do not fit, or a negative tolerance.
    """
    reference, prediction = np.asarray(reference, dtype=bool), np.asarray(prediction, dtype=bool)
    if reference.shape != prediction.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, prediction {prediction.shape}")
    if len(spacing) != reference.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not fit a {reference.ndim}D mask")
    if not tolerance_mm >= 0:
        raise ValueError(f"the NSD tolerance must be >= 0 mm, got {tolerance_mm}")
    has_ref, has_pred = bool(reference.any()), bool(prediction.any())
    if not has_ref and not has_pred:
        return {"NSD": 1.0, "HD95": 0.0, "ASSD": 0.0}
    if not has_ref or not has_pred:
        return {"NSD": 0.0, "HD95": math.nan, "ASSD": math.nan}
    reference, squeezed = _squeeze(reference, tuple(spacing))
    prediction, _ = _squeeze(prediction, tuple(spacing))
    to_ref, to_pred = surface_distances(reference, prediction, squeezed)
    n = to_ref.size + to_pred.size
    return {"NSD": float((np.count_nonzero(to_ref <= tolerance_mm) + np.count_nonzero(to_pred <= tolerance_mm)) / n),
            "HD95": float(max(np.percentile(to_ref, PERCENTILE), np.percentile(to_pred, PERCENTILE))),
            "ASSD": float((to_ref.sum() + to_pred.sum()) / n)}
