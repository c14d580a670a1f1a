"""SYNTHETIC stroke-like and MS-like lesions painted into a demo subject.

Stroke: one (sometimes two) large irregular cortical-subcortical lesions inside one arterial
territory, T1-hypointense like a chronic infarct (ATLAS-style, Liew et al., Sci Data 2018).
MS: 3-30 small ovoid white-matter lesions, periventricular or juxtacortical, T1-hypointense
"black holes" of varying contrast (locations as in the McDonald criteria, Thompson et al.,
Lancet Neurol 2018). Lesions are separate 26-connected components, and each function returns a
record of what it made so tests and evaluations can check the masks against it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from nnunet_transfer.demo.fields import random_field
from nnunet_transfer.demo.subjects import Subject
from nnunet_transfer.demo.territories import TERRITORIES, cerebrum_mask, territory_mask

CONNECTIVITY_26 = np.ones((3, 3, 3), bool)
STROKE_VOLUME_ML = (5.0, 150.0)
SECOND_STROKE_VOLUME_ML = (5.0, 40.0)
STROKE_SECOND_LESION_P = 0.25
STROKE_TERRITORY_P = {"MCA": 0.6, "ACA": 0.2, "PCA": 0.2}
MS_COUNT = (3, 30)
MS_MAX_VOLUME_ML = 1.0
MS_MIN_VOXELS = 3
MS_INTENSITY_FACTOR = (0.35, 0.85)
# Voxels of healthy tissue kept between two lesions so that they stay separate components.
LESION_GAP_VOXELS = 1


def periventricular_mm(spacing_mm: float) -> float:
    """Largest distance from the ventricles (mm) at which a WM lesion counts as periventricular."""
    return max(6.0, 1.5 * spacing_mm)


def juxtacortical_mm(spacing_mm: float) -> float:
    """Largest distance from grey matter (mm) at which a WM lesion counts as juxtacortical."""
    return max(3.0, 1.5 * spacing_mm)


@dataclass(frozen=True)
class LesionRecord:
    """One generated lesion: where, how big, what kind (JSON-able through ``as_dict``)."""

    kind: str  # "stroke" or "ms"
    centre_voxel: tuple[int, int, int]
    centre_mni_mm: tuple[float, float, float]
    n_voxels: int
    volume_ml: float
    territory: str | None = None  # stroke: MCA / ACA / PCA
    side: str | None = None  # stroke: left / right
    location: str | None = None  # ms: periventricular / juxtacortical
    intensity_factor: float | None = None  # ms: lesion / local WM intensity

    def as_dict(self) -> dict:
        """Plain-data form for dataset records."""
        return {key: value for key, value in self.__dict__.items() if value is not None}


class LesionSimulation(NamedTuple):
    """Result of a lesion function: the new T1 (bias + noise applied), the uint8 mask, records."""

    t1: np.ndarray
    lesion_mask: np.ndarray
    lesions: list[LesionRecord]


def _box(centre: np.ndarray, radius: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Slices of a cube of half-width ``radius`` voxels around ``centre``, clipped to ``shape``."""
    return tuple(slice(max(int(c) - radius, 0), min(int(c) + radius + 1, n)) for c, n in zip(centre, shape))


def _component_with(mask: np.ndarray, point: tuple[int, ...]) -> np.ndarray:
    """The 26-connected component of ``mask`` that contains ``point`` (empty if not in mask)."""
    components, _ = ndimage.label(mask, structure=CONNECTIVITY_26)
    label = components[point]
    return components == label if label else np.zeros_like(mask)


def _record(subject: Subject, mask: np.ndarray, kind: str, **fields) -> LesionRecord:
    """Describe one lesion mask: centre voxel (the lesion voxel nearest the centroid), size."""
    voxels = np.argwhere(mask)
    centre = voxels[np.argmin(((voxels - voxels.mean(0)) ** 2).sum(1))]
    mni = subject.mni_mm[(slice(None),) + tuple(centre)]
    return LesionRecord(kind=kind, centre_voxel=tuple(int(c) for c in centre),
                        centre_mni_mm=tuple(round(float(v), 2) for v in mni), n_voxels=len(voxels),
                        volume_ml=round(len(voxels) * subject.voxel_volume_ml, 4), **fields)


def _grow_stroke(allowed: np.ndarray, seed: tuple[int, ...], n_voxels: int, spacing: float,
                 rng: np.random.Generator) -> np.ndarray:
    """An irregular connected region of about ``n_voxels`` in ``allowed`` around ``seed``.

    The shape score is a randomly stretched distance to the seed plus a smooth random field, so
    its level sets are blobs with lobulated, irregular borders; the threshold is found by
    bisection so the component containing the seed has the wanted size.
    """
    radius_mm = (3.0 * n_voxels * spacing**3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    box = _box(np.array(seed), int(np.ceil(2.2 * radius_mm / spacing)) + 2, allowed.shape)
    local_allowed = allowed[box]
    local_seed = tuple(s - b.start for s, b in zip(seed, box))
    stretch = rng.uniform(0.7, 1.4, 3)
    grids = np.meshgrid(*[np.arange(b.stop - b.start, dtype=np.float32) for b in box], indexing="ij")
    distance = np.sqrt(sum(((g - s) * spacing / st) ** 2 for g, s, st in zip(grids, local_seed, stretch)))
    field = random_field(local_allowed.shape, spacing, max(6.0, radius_mm / 2.0), rng)
    score = -distance / radius_mm + 0.45 * field
    low, high = float(score[local_allowed].min()) - 1e-3, float(score[local_seed])
    region = np.zeros_like(local_allowed)
    for _ in range(18):
        middle = 0.5 * (low + high)
        candidate = _component_with(local_allowed & (score >= middle), local_seed)
        if candidate.sum() > n_voxels:
            low = middle
        else:
            high, region = middle, candidate
    out = np.zeros_like(allowed)
    out[box] = region if region.any() else _component_with(local_allowed & (score >= low), local_seed)
    return out


def add_stroke_lesions(subject: Subject, rng: np.random.Generator) -> LesionSimulation:
    """Paint one (probability 0.75) or two chronic stroke lesions into ``subject``.

    Each lesion lies in the grey and white matter of one arterial territory (MCA 60 %, ACA 20 %,
    PCA 20 %; left or right), starts at the grey/white boundary so it is cortical-subcortical,
    has a volume drawn log-uniformly from 5-150 ml (second lesion 5-40 ml) and CSF-like T1
    intensity with some texture. Out: ``LesionSimulation`` (t1 float32, mask uint8 0/1, one
    record per lesion). Raises RuntimeError if no territory has room (never for a normal subject).
    """
    labels, spacing = subject.labels, subject.spacing_mm
    parenchyma = (labels == 2) | (labels == 3)
    boundary = (labels == 2) & ndimage.binary_dilation(labels == 3, structure=CONNECTIVITY_26)
    lesion_mask = np.zeros(labels.shape, bool)
    records: list[LesionRecord] = []
    count = 2 if rng.random() < STROKE_SECOND_LESION_P else 1
    for index in range(count):
        volume_range = STROKE_VOLUME_ML if index == 0 else SECOND_STROKE_VOLUME_ML
        forbidden = ndimage.binary_dilation(lesion_mask, CONNECTIVITY_26, iterations=LESION_GAP_VOXELS + 1)
        for _attempt in range(20):
            territory = str(rng.choice(TERRITORIES, p=[STROKE_TERRITORY_P[t] for t in TERRITORIES]))
            side = str(rng.choice(["left", "right"]))
            volume_ml = float(np.exp(rng.uniform(*np.log(volume_range))))
            region_mask = territory_mask(subject.mni_mm, territory, side)
            allowed = parenchyma & region_mask & ~forbidden
            if not (boundary & allowed).any():
                continue
            n_voxels = max(round(volume_ml / subject.voxel_volume_ml), 8)
            # Seeds deep inside the territory give lesions room to grow before they meet its border.
            inside_mm = ndimage.distance_transform_edt(region_mask, sampling=spacing)
            candidates = boundary & allowed
            radius_mm = (3.0 * volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
            wanted_mm = min(radius_mm, 0.6 * inside_mm[candidates].max())
            seeds = np.argwhere(candidates & (inside_mm >= wanted_mm))
            seed = tuple(int(v) for v in seeds[rng.integers(len(seeds))])
            region = _grow_stroke(allowed, seed, n_voxels, spacing, rng)
            tissue = labels[region]
            low_ml = volume_range[0] * 0.5
            # A lesion that stayed in the cortex or came out far too small is redrawn.
            if (tissue == 2).any() and (tissue == 3).any() and region.sum() * subject.voxel_volume_ml >= low_ml:
                lesion_mask |= region
                records.append(_record(subject, region, "stroke", territory=territory, side=side))
                break
        else:
            if index == 0:
                raise RuntimeError("could not place a stroke lesion in any arterial territory")
    clean = subject.t1_clean.copy()
    csf_value = subject.pure_intensities[0]
    # Chronic infarcts are near-CSF cavities with gliotic, slightly brighter, uneven tissue.
    lesion_value = csf_value * rng.uniform(1.0, 1.6) * (1.0 + 0.12 * random_field(labels.shape, spacing, 8.0, rng))
    weight = np.maximum(lesion_mask, ndimage.gaussian_filter(lesion_mask.astype(np.float32), 0.6))
    clean = clean * (1.0 - weight) + lesion_value * weight
    return LesionSimulation(subject.acquire(clean.astype(np.float32)), lesion_mask.astype(np.uint8), records)


def _ellipsoid_distance(shape: tuple[int, ...], centre: tuple[int, ...], spacing: float, axes_mm: np.ndarray,
                        rotation: np.ndarray) -> np.ndarray:
    """Normalised distance (1 on the surface) of each voxel in a box to a rotated ellipsoid."""
    grids = np.meshgrid(*[(np.arange(n, dtype=np.float32) - c) * spacing for n, c in zip(shape, centre)],
                        indexing="ij")
    offsets = np.stack(grids)
    local = np.einsum("ij,j...->i...", rotation.T.astype(np.float32), offsets)
    return np.sqrt(sum((local[i] / axes_mm[i]) ** 2 for i in range(3)))


def _place_ms_lesion(candidates: np.ndarray, allowed: np.ndarray, spacing: float, voxel_ml: float,
                     rng: np.random.Generator) -> np.ndarray | None:
    """One ovoid lesion centred on a random candidate voxel, restricted to ``allowed``; or None."""
    points = np.argwhere(candidates)
    if len(points) == 0:
        return None
    centre = tuple(int(v) for v in points[rng.integers(len(points))])
    min_ml = MS_MIN_VOXELS * voxel_ml
    max_ml = max(MS_MAX_VOLUME_ML, min_ml)
    volume_ml = float(np.exp(rng.uniform(np.log(min_ml), np.log(max_ml))))
    n_voxels = int(np.clip(round(volume_ml / voxel_ml), MS_MIN_VOXELS, max(max_ml / voxel_ml, MS_MIN_VOXELS)))
    ratios = np.array([1.0, rng.uniform(0.5, 1.0), rng.uniform(0.35, 0.8)])
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    radius_mm = (3.0 * n_voxels * spacing**3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    box = _box(np.array(centre), int(np.ceil(3.0 * radius_mm / spacing)) + 2, allowed.shape)
    local_allowed = allowed[box]
    local_centre = tuple(c - b.start for c, b in zip(centre, box))
    distance = _ellipsoid_distance(local_allowed.shape, local_centre, spacing, ratios, rotation)
    distance[~local_allowed] = np.inf
    # The n nearest voxels by ellipsoidal distance: an ovoid with exactly the drawn voxel count,
    # even when the lesion is only a few voxels at coarse spacing.
    order = np.argsort(distance, axis=None, kind="stable")[:n_voxels]
    order = order[np.isfinite(distance.ravel()[order])]
    local = np.zeros(local_allowed.shape, bool)
    local.flat[order] = True
    local = _component_with(local, local_centre)
    if local.sum() < MS_MIN_VOXELS:
        return None
    out = np.zeros(allowed.shape, bool)
    out[box] = local
    return out


def add_ms_lesions(subject: Subject, rng: np.random.Generator) -> LesionSimulation:
    """Paint 3-30 MS-like white-matter lesions into ``subject``.

    Each lesion is periventricular (WM within ``periventricular_mm`` of the ventricles) or
    juxtacortical (WM within ``juxtacortical_mm`` of grey matter), an ovoid of at least 3
    voxels and at most ~1 ml, in the cerebral WM only, separated from the others by at least one
    voxel, and darkened to 0.35-0.85 of the local WM intensity (its own factor). Out:
    ``LesionSimulation`` (t1 float32, mask uint8 0/1, one record per lesion; the number of
    records equals the number of 26-connected components of the mask).
    """
    labels, spacing = subject.labels, subject.spacing_mm
    wm = (labels == 3) & cerebrum_mask(subject.mni_mm)
    to_ventricles = ndimage.distance_transform_edt(~subject.ventricles, sampling=spacing)
    to_gm = ndimage.distance_transform_edt(labels != 2, sampling=spacing)
    near_ventricles = wm & (to_ventricles <= periventricular_mm(spacing))
    pools = {"periventricular": near_ventricles,
             "juxtacortical": wm & (to_gm <= juxtacortical_mm(spacing)) & ~near_ventricles}
    wanted = int(rng.integers(MS_COUNT[0], MS_COUNT[1] + 1))
    lesion_mask = np.zeros(labels.shape, bool)
    forbidden = np.zeros(labels.shape, bool)
    clean = subject.t1_clean.copy()
    records: list[LesionRecord] = []
    for _attempt in range(wanted * 10):
        if len(records) == wanted:
            break
        location = str(rng.choice(list(pools)))
        allowed = wm & ~forbidden
        lesion = _place_ms_lesion(pools[location] & allowed, allowed, spacing, subject.voxel_volume_ml, rng)
        if lesion is None:
            continue
        factor = float(rng.uniform(*MS_INTENSITY_FACTOR))
        lesion_mask |= lesion
        forbidden |= ndimage.binary_dilation(lesion, CONNECTIVITY_26, iterations=LESION_GAP_VOXELS + 1)
        clean[lesion] *= factor
        records.append(_record(subject, lesion, "ms", location=location, intensity_factor=round(factor, 4)))
    return LesionSimulation(subject.acquire(clean), lesion_mask.astype(np.uint8), records)
