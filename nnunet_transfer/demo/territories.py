"""Arterial territories of the cerebrum approximated by ellipsoids in MNI coordinates.

A coarse stand-in for a vascular territory atlas (e.g. Tatu et al., Neurology 50(6), 1998):
the anterior cerebral artery (ACA) supplies the medial frontal and parietal lobes, the posterior
cerebral artery (PCA) the occipital lobe, inferior-medial temporal lobe and thalamus, and the
middle cerebral artery (MCA) the lateral hemisphere and the basal ganglia. Precedence PCA, then
ACA, then MCA makes the three disjoint. Good enough to place SYNTHETIC stroke lesions where a
real infarct of that artery could be; not an anatomical reference.
"""
from __future__ import annotations

import numpy as np

from nnunet_transfer.errors import NnunetTransferError

TERRITORIES = ("MCA", "ACA", "PCA")
SIDES = ("left", "right")
# Ellipsoids per territory: ((lateral, y, z) centre, (lateral, y, z) radii) in MNI mm, with
# "lateral" the distance from the midline into the chosen hemisphere. Curved borders, because a
# box would give lesions that reach a border straight, man-made edges.
_ELLIPSOIDS: dict[str, tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...]] = {
    "PCA": (
        ((22.0, -88.0, 14.0), (36.0, 30.0, 26.0)),  # occipital lobe, above the tentorium
        ((30.0, -38.0, -14.0), (16.0, 24.0, 9.0)),  # inferior-medial temporal lobe
        ((11.0, -20.0, 6.0), (10.0, 13.0, 9.0)),  # thalamus
    ),
    "ACA": (
        ((6.0, 5.0, 44.0), (22.0, 70.0, 42.0)),  # medial frontal + parietal, superior strip
        ((9.0, 40.0, -12.0), (12.0, 26.0, 12.0)),  # medial orbitofrontal
    ),
    "MCA": (
        ((46.0, -10.0, 16.0), (34.0, 68.0, 52.0)),  # lateral convexity, insula, lateral temporal
        ((20.0, 0.0, 8.0), (12.0, 22.0, 14.0)),  # lenticulostriate: basal ganglia, internal capsule
    ),
}
# Each hemisphere's territories stop this far (mm) from the midline.
_MIDLINE_MM = 1.0
_PRECEDENCE = ("PCA", "ACA", "MCA")


def _ellipsoids_mask(mni_mm: np.ndarray, name: str, side: str) -> np.ndarray:
    """Union of the ellipsoids of territory ``name`` in hemisphere ``side`` (no precedence)."""
    lateral = mni_mm[0] if side == "right" else -mni_mm[0]
    mask = np.zeros(mni_mm.shape[1:], bool)
    for centre, radii in _ELLIPSOIDS[name]:
        distance = sum(((c - m) / r) ** 2 for c, m, r in zip((lateral, mni_mm[1], mni_mm[2]), centre, radii))
        mask |= distance <= 1.0
    return mask & (lateral >= _MIDLINE_MM)


def territory_mask(mni_mm: np.ndarray, territory: str, side: str) -> np.ndarray:
    """Bool mask of voxels whose MNI position lies in ``territory`` of hemisphere ``side``.

    In: ``mni_mm`` (3, ...) positions in MNI mm (``Subject.mni_mm``), a territory from
    ``TERRITORIES`` and a side from ``SIDES``. Out: bool array of shape ``mni_mm.shape[1:]``.
    Raises NnunetTransferError for an unknown territory or side.
    """
    if territory not in TERRITORIES:
        raise NnunetTransferError(f"unknown arterial territory {territory!r}; use one of {TERRITORIES}")
    if side not in SIDES:
        raise NnunetTransferError(f"unknown hemisphere {side!r}; use one of {SIDES}")
    mask = _ellipsoids_mask(mni_mm, territory, side)
    for earlier in _PRECEDENCE[: _PRECEDENCE.index(territory)]:
        mask &= ~_ellipsoids_mask(mni_mm, earlier, side)
    return mask


def cerebrum_mask(mni_mm: np.ndarray) -> np.ndarray:
    """Voxels in any territory of either hemisphere: the cerebrum without cerebellum and brainstem."""
    mask = np.zeros(mni_mm.shape[1:], bool)
    for side in SIDES:
        for name in TERRITORIES:
            mask |= _ellipsoids_mask(mni_mm, name, side)
    return mask
