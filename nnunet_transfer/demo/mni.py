"""The MNI ICBM 2009a template shipped inside nilearn, resampled once to a demo spacing.

The template (T1, grey- and white-matter probability maps, brain mask) is the real anatomy that
every demo subject is deformed from. It is read from nilearn's package data, so nothing is
downloaded. References: Fonov et al., NeuroImage 54(1), 2011; Fonov et al., NeuroImage 47(S1),
2009; Collins et al., IPMI 1999 (see ``nnunet_transfer.demo.provenance``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from nilearn import datasets as nilearn_datasets
from scipy import ndimage

from nnunet_transfer.errors import NnunetTransferError

# Millimetres of empty space kept around the brain when the template grid is cropped: enough
# room for the random affine (+-8 % scale, a few mm shift) plus the smooth warp of a subject.
CROP_MARGIN_MM = 16.0
# Depth (mm from the brain surface) below which CSF counts as ventricular rather than sulcal.
VENTRICLE_MIN_DEPTH_MM = 12.0
# Box (MNI mm) that holds the lateral and third ventricles; CSF outside it (cisterns, the fourth
# ventricle, sulci) is not enlarged by simulated atrophy.
VENTRICLE_BOX_MM = ((-35.0, 35.0), (-50.0, 35.0), (-8.0, 35.0))


@dataclass(frozen=True, eq=False)
class Atlas:
    """The template at one isotropic spacing (arrays indexed x, y, z in RAS voxel order).

    ``t1`` is float32 in about [0, 1] (skull-stripped, background 0); ``gm``, ``wm``, ``csf``
    are float32 probabilities with ``csf = clip(mask - gm - wm, 0, 1)``; ``brain_mask`` and
    ``ventricles`` are bool; ``affine`` maps voxel indices to RAS millimetres (MNI space);
    ``pure_intensities`` is the ``t1`` of pure CSF, GM and WM (free of partial volume).
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain_mask: np.ndarray
    ventricles: np.ndarray
    affine: np.ndarray
    spacing_mm: float
    pure_intensities: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (x, y, z)."""
        return tuple(int(s) for s in self.t1.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return self.spacing_mm**3 / 1000.0


def _validate_spacing(spacing_mm: float) -> float:
    """Return ``spacing_mm`` as float; raise NnunetTransferError outside [1, 8] mm."""
    try:
        spacing = float(spacing_mm)
    except (TypeError, ValueError) as exc:
        raise NnunetTransferError(f"demo spacing must be a number of millimetres, got {spacing_mm!r}") from exc
    if not math.isfinite(spacing) or not 1.0 <= spacing <= 8.0:
        raise NnunetTransferError(
            f"demo spacing must be between 1 and 8 mm (the template is 1 mm), got {spacing_mm!r}"
        )
    return spacing


@functools.lru_cache(maxsize=1)
def _template_1mm() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the 1 mm template arrays (t1, gm, wm, mask) and their affine from nilearn's data."""
    t1_img = nilearn_datasets.load_mni152_template(resolution=1)
    gm = np.asarray(nilearn_datasets.load_mni152_gm_template(resolution=1).get_fdata(), np.float32)
    wm = np.asarray(nilearn_datasets.load_mni152_wm_template(resolution=1).get_fdata(), np.float32)
    mask = np.asarray(nilearn_datasets.load_mni152_brain_mask(resolution=1).get_fdata(), np.float32)
    t1 = np.asarray(t1_img.get_fdata(), np.float32)
    return t1, gm, wm, mask, np.asarray(t1_img.affine, np.float64)


@functools.lru_cache(maxsize=1)
def _pure_intensities() -> tuple[float, float, float]:
    """T1 of pure CSF, GM and WM: medians where the 1 mm probability is high.

    Taken at 1 mm because coarser grids mix tissues in most voxels; pure-tissue intensity does
    not depend on the grid, so every spacing uses these values.
    """
    t1, gm, wm, mask, _ = _template_1mm()
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    return (float(np.median(t1[csf > 0.9])), float(np.median(t1[gm > 0.8])), float(np.median(t1[wm > 0.9])))


def _resample(volume: np.ndarray, spacing: float, shape: tuple[int, ...], start: np.ndarray) -> np.ndarray:
    """Sample ``volume`` (1 mm grid) on a grid with ``spacing`` mm starting at voxel ``start``.

    A Gaussian pre-filter whose width matches the new voxel size avoids aliasing when
    downsampling; the grid is separable, so 1D coordinates per axis are enough.
    """
    sigma = math.sqrt(max(spacing**2 - 1.0, 0.0)) / 2.355
    smooth = ndimage.gaussian_filter(volume, sigma) if sigma > 0.1 else volume
    axes = [start[a] + spacing * np.arange(shape[a], dtype=np.float32) for a in range(3)]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    return ndimage.map_coordinates(smooth, coords, order=1, mode="constant", cval=0.0).astype(np.float32)


def _ventricle_mask(csf: np.ndarray, mask: np.ndarray, affine: np.ndarray, spacing: float) -> np.ndarray:
    """Lateral + third ventricles: deep CSF inside a central MNI box, largest components kept."""
    depth = ndimage.distance_transform_edt(mask, sampling=spacing)
    mni = _voxel_to_mni(affine, csf.shape)
    box = np.ones(csf.shape, bool)
    for axis, (low, high) in enumerate(VENTRICLE_BOX_MM):
        box &= (mni[axis] >= low) & (mni[axis] <= high)
    candidate = (csf > 0.5) & (depth > VENTRICLE_MIN_DEPTH_MM) & box
    components, count = ndimage.label(candidate, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return candidate
    sizes = np.bincount(components.ravel())[1:]
    # Small deep CSF specks are partial-volume noise, not ventricles.
    keep = np.flatnonzero(sizes >= max(0.1 * sizes.max(), 1)) + 1
    return np.isin(components, keep)


def _voxel_to_mni(affine: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Per-axis MNI coordinate arrays (broadcastable to ``shape``) for an axis-aligned affine."""
    out = []
    for axis in range(3):
        view = [1, 1, 1]
        view[axis] = shape[axis]
        out.append((affine[axis, 3] + affine[axis, axis] * np.arange(shape[axis])).reshape(view))
    return out


def load_atlas(spacing_mm: float) -> Atlas:
    """Return the MNI template resampled to ``spacing_mm`` (cached: built once per spacing).

    In: isotropic spacing in mm, 1 to 8. Out: an ``Atlas`` cropped to the brain plus a
    ``CROP_MARGIN_MM`` border, with RAS affine in MNI mm. Raises NnunetTransferError for a
    spacing outside that range. The arrays are shared between callers: do not modify them.
    """
    # Normalised to float first so that 2 and 2.0 share one cache entry.
    return _build_atlas(_validate_spacing(spacing_mm))


@functools.lru_cache(maxsize=4)
def _build_atlas(spacing: float) -> Atlas:
    """Build the atlas at a validated spacing (see ``load_atlas``)."""
    t1, gm, wm, mask, affine_1mm = _template_1mm()
    inside = np.argwhere(mask > 0.5)
    low = np.maximum(inside.min(0) - CROP_MARGIN_MM, 0.0)
    high = np.minimum(inside.max(0) + CROP_MARGIN_MM, np.array(mask.shape) - 1.0)
    shape = tuple(int(n) for n in np.floor((high - low) / spacing).astype(int) + 1)
    # The template is skull-stripped but carries faint values outside its mask: zero them.
    t1_r = _resample(t1 * (mask > 0.5), spacing, shape, low)
    gm_r, wm_r, mask_r = (_resample(v, spacing, shape, low) for v in (gm, wm, mask))
    np.clip(t1_r, 0.0, 1.0, out=t1_r)
    brain = mask_r > 0.5
    gm_r = np.clip(gm_r, 0.0, 1.0) * brain
    wm_r = np.clip(wm_r, 0.0, 1.0) * brain
    csf_r = np.clip(brain - gm_r - wm_r, 0.0, 1.0).astype(np.float32)
    affine = affine_1mm.copy()
    affine[:3, :3] = affine_1mm[:3, :3] * spacing
    affine[:3, 3] = affine_1mm[:3, :3] @ low + affine_1mm[:3, 3]
    ventricles = _ventricle_mask(csf_r, brain, affine, spacing)
    arrays = [t1_r, gm_r.astype(np.float32), wm_r.astype(np.float32), csf_r, brain, ventricles]
    for array in arrays:
        array.setflags(write=False)
    return Atlas(*arrays, affine=affine, spacing_mm=spacing, pure_intensities=_pure_intensities())


def tissue_labels(csf: np.ndarray, gm: np.ndarray, wm: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Hard tissue labels uint8 (0 background, 1 CSF, 2 GM, 3 WM): argmax inside ``brain``."""
    stacked = np.stack([csf, gm, wm])
    labels = (np.argmax(stacked, axis=0) + 1).astype(np.uint8)
    labels[~brain] = 0
    return labels
