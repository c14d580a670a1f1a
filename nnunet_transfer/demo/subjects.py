"""Demo subjects: the MNI template deformed into a new head, with contrast, bias, noise, atrophy.

Everything random about a subject is drawn by ``sample_subject_params`` from one generator;
``render_subject`` applies those parameters deterministically. The same parameters rendered with
``atrophy_grade`` 0, 1 and 2 give the same head at three stages of atrophy, which is what the
atrophy classification source and its test rely on. All of it is SYNTHETIC apart from the
template anatomy itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from nnunet_transfer.demo.fields import interpolate_lattice, lattice_shape
from nnunet_transfer.demo.mni import Atlas, tissue_labels
from nnunet_transfer.errors import NnunetTransferError

ATROPHY_GRADES = (0, 1, 2)
# Distance between deformation lattice nodes: larger than a gyrus, so the warp moves lobes and
# ventricles without tearing the cortical ribbon.
WARP_NODE_MM = 28.0
BIAS_NODE_MM = 60.0
# Centre of the rotation and scaling (MNI mm, roughly the centre of the cerebrum).
BRAIN_CENTRE_MM = np.array([0.0, -18.0, 12.0])
# Ventricles never grow into the outer cortex: keep this much tissue under the brain surface.
VENTRICLE_GROWTH_MIN_DEPTH_MM = 10.0
# Cortical shell in which atrophy widens sulci (GM partly replaced by CSF).
SULCAL_SHELL_MM = 12.0
SULCAL_GM_LOSS_PER_GRADE = 0.12


@dataclass(frozen=True)
class SubjectParams:
    """All random choices of one subject (angles in degrees, lengths in mm)."""

    rotation_deg: np.ndarray
    scale: np.ndarray
    translation_mm: np.ndarray
    warp_amplitude_mm: float
    warp_coefficients: np.ndarray
    gamma: float
    tissue_gain: np.ndarray
    bias_strength: float
    bias_coefficients: np.ndarray
    noise_sigma: float
    noise_seed: int
    atrophy_jitter: float


@dataclass(frozen=True, eq=False)
class Subject:
    """One rendered subject on the atlas grid (arrays indexed x, y, z; RAS ``affine``).

    ``t1`` is the final float32 image; ``t1_clean`` the same before bias field and noise (lesion
    simulation edits it, then calls ``acquire``); ``labels`` uint8 0 background, 1 CSF, 2 GM,
    3 WM; ``mni_mm`` (3, X, Y, Z) the template position each voxel was sampled from;
    ``depth_mm`` the distance to the brain surface; ``pure_intensities`` the ``t1_clean`` value of
    pure CSF, GM and WM in this subject's contrast.
    """

    t1: np.ndarray
    t1_clean: np.ndarray
    labels: np.ndarray
    brain_mask: np.ndarray
    ventricles: np.ndarray
    depth_mm: np.ndarray
    mni_mm: np.ndarray
    bias: np.ndarray
    affine: np.ndarray
    spacing_mm: float
    atrophy_grade: int
    pure_intensities: tuple[float, float, float]
    params: SubjectParams = field(repr=False)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return self.spacing_mm**3 / 1000.0

    @property
    def ventricle_volume_ml(self) -> float:
        """Volume of the (possibly enlarged) lateral and third ventricles in ml."""
        return float(self.ventricles.sum()) * self.voxel_volume_ml

    def acquire(self, clean: np.ndarray) -> np.ndarray:
        """Apply this subject's bias field and Rician noise to a clean image (float32 out).

        The noise is regenerated from the stored seed, so acquiring an edited ``t1_clean`` (with
        lesions) gives the same noise as the lesion-free ``t1``.
        """
        return acquire_image(clean, self.bias, self.params.noise_sigma, self.params.noise_seed)


def acquire_image(clean: np.ndarray, bias: np.ndarray, noise_sigma: float, noise_seed: int) -> np.ndarray:
    """Multiply by the bias field and add Rician noise (magnitude of complex Gaussian noise)."""
    noise = np.random.default_rng(noise_seed).standard_normal((2,) + clean.shape, dtype=np.float32)
    noise *= np.float32(noise_sigma)
    real = clean * bias + noise[0]
    return np.sqrt(real * real + noise[1] * noise[1]).astype(np.float32)


def sample_subject_params(atlas: Atlas, rng: np.random.Generator) -> SubjectParams:
    """Draw every random parameter of one subject from ``rng`` (always the same draws, in order)."""
    shape = atlas.shape
    return SubjectParams(
        rotation_deg=rng.uniform(-7.0, 7.0, 3),
        scale=rng.uniform(0.92, 1.08, 3),
        translation_mm=rng.uniform(-4.0, 4.0, 3),
        warp_amplitude_mm=float(rng.uniform(1.5, 3.5)),
        warp_coefficients=rng.standard_normal((3,) + lattice_shape(shape, atlas.spacing_mm, WARP_NODE_MM)),
        gamma=float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))),
        tissue_gain=rng.uniform(-0.06, 0.06, 3),
        bias_strength=float(rng.uniform(0.03, 0.15)),
        bias_coefficients=rng.standard_normal(lattice_shape(shape, atlas.spacing_mm, BIAS_NODE_MM)),
        noise_sigma=float(rng.uniform(0.01, 0.04)),
        noise_seed=int(rng.integers(0, 2**63 - 1)),
        atrophy_jitter=float(rng.uniform(0.0, 0.25)),
    )


def _rotation(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrix from x, y, z Euler angles in degrees."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _unit_field(coefficients: np.ndarray, shape: tuple[int, int, int], spacing: float, node_mm: float) -> np.ndarray:
    """Interpolate lattice coefficients and normalise the field to unit standard deviation."""
    values = interpolate_lattice(coefficients, shape, spacing, node_mm)
    return values / max(float(values.std()), 1e-6)


def _source_positions(atlas: Atlas, params: SubjectParams) -> np.ndarray:
    """MNI position (3, X, Y, Z) float32 that each subject voxel samples: affine + smooth warp."""
    shape, spacing = atlas.shape, atlas.spacing_mm
    matrix = (_rotation(params.rotation_deg) * params.scale[None, :]).astype(np.float32)
    grid = [atlas.affine[a, 3] + atlas.affine[a, a] * np.arange(shape[a], dtype=np.float32) for a in range(3)]
    centred = [g - np.float32(c) for g, c in zip(grid, BRAIN_CENTRE_MM)]
    offset = (BRAIN_CENTRE_MM + params.translation_mm).astype(np.float32)
    positions = np.empty((3,) + shape, np.float32)
    for row in range(3):
        # Broadcasting the three axis vectors avoids building a full meshgrid first.
        positions[row] = (matrix[row, 0] * centred[0][:, None, None] + matrix[row, 1] * centred[1][None, :, None]
                          + matrix[row, 2] * centred[2][None, None, :] + offset[row])
        positions[row] += np.float32(params.warp_amplitude_mm) * _unit_field(
            params.warp_coefficients[row], shape, spacing, WARP_NODE_MM)
    return positions


def _warp(volume: np.ndarray, voxel_coords: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``volume`` at ``voxel_coords``; zero outside the grid."""
    return ndimage.map_coordinates(volume, voxel_coords, order=1, mode="constant", cval=0.0,
                                   prefilter=False).astype(np.float32, copy=False)


def _atrophy(csf: np.ndarray, gm: np.ndarray, wm: np.ndarray, ventricles: np.ndarray, depth: np.ndarray,
             grade: int, jitter: float, spacing: float) -> tuple[np.ndarray, ...]:
    """Enlarge the ventricles and widen the sulci; return new (csf, gm, wm, ventricles).

    Ventricles grow by ``grade * max(3 mm, spacing) * (1 + jitter)``; the growth step is at
    least one voxel, so each grade changes the label map even at coarse spacing. The growth is
    a partial-volume ramp, so the image changes smoothly while labels take the >= 0.5 part.
    """
    if grade == 0:
        return csf, gm, wm, ventricles
    radius = grade * max(3.0, spacing) * (1.0 + jitter)
    distance = ndimage.distance_transform_edt(~ventricles, sampling=spacing).astype(np.float32)
    growth = np.clip((radius - distance) / spacing + 0.5, 0.0, 1.0).astype(np.float32)
    growth *= depth > VENTRICLE_GROWTH_MIN_DEPTH_MM
    shell = np.clip(1.0 - depth / SULCAL_SHELL_MM, 0.0, 1.0) * (depth > 0)
    sulcal_loss = (SULCAL_GM_LOSS_PER_GRADE * grade * shell).astype(np.float32)
    tissue_kept = 1.0 - growth
    gm_new = gm * tissue_kept * (1.0 - sulcal_loss)
    wm_new = wm * tissue_kept
    csf_new = csf + (gm - gm_new) + (wm - wm_new)
    return csf_new, gm_new, wm_new, ventricles | (growth >= 0.5)


def render_subject(atlas: Atlas, params: SubjectParams, atrophy_grade: int = 0) -> Subject:
    """Render a subject from its parameters (deterministic).

    In: the atlas, parameters from ``sample_subject_params`` (drawn for this atlas's spacing),
    an atrophy grade 0, 1 or 2. Out: a ``Subject``. Raises NnunetTransferError for another grade.
    """
    if atrophy_grade not in ATROPHY_GRADES:
        raise NnunetTransferError(f"atrophy_grade must be one of {ATROPHY_GRADES}, got {atrophy_grade!r}")
    shape, spacing = atlas.shape, atlas.spacing_mm
    mni = _source_positions(atlas, params)
    inverse = np.linalg.inv(atlas.affine).astype(np.float32)
    voxel = np.einsum("ij,j...->i...", inverse[:3, :3], mni) + inverse[:3, 3].reshape(3, 1, 1, 1)
    t1, gm, wm = (_warp(v, voxel) for v in (atlas.t1, atlas.gm, atlas.wm))
    brain = _warp(atlas.brain_mask.astype(np.float32), voxel) > 0.5
    ventricles = (_warp(atlas.ventricles.astype(np.float32), voxel) > 0.5) & brain
    gm *= brain
    wm *= brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0).astype(np.float32)
    depth = ndimage.distance_transform_edt(brain, sampling=spacing).astype(np.float32)
    csf2, gm2, wm2, ventricles = _atrophy(csf, gm, wm, ventricles, depth, atrophy_grade,
                                          params.atrophy_jitter, spacing)
    # Tissue moved between classes shifts the template intensity by the class means' difference.
    mean_csf, mean_gm, mean_wm = atlas.pure_intensities
    t1 = t1 + (csf2 - csf) * mean_csf + (gm2 - gm) * mean_gm + (wm2 - wm) * mean_wm
    clean = np.clip(t1, 0.0, None) ** np.float32(params.gamma)
    gain = params.tissue_gain.astype(np.float32)
    clean *= 1.0 + csf2 * gain[0] + gm2 * gain[1] + wm2 * gain[2]
    clean = clean.astype(np.float32)
    labels = tissue_labels(csf2, gm2, wm2, brain)
    # Interpolated ventricle edges may be mostly tissue; the ventricles are the CSF part only.
    ventricles &= labels == 1
    pure = tuple(float(value**params.gamma * (1.0 + g)) for value, g in zip(atlas.pure_intensities, gain))
    bias = np.exp(np.float32(params.bias_strength)
                  * _unit_field(params.bias_coefficients, shape, spacing, BIAS_NODE_MM)).astype(np.float32)
    return Subject(
        t1=acquire_image(clean, bias, params.noise_sigma, params.noise_seed), t1_clean=clean, labels=labels,
        brain_mask=brain, ventricles=ventricles, depth_mm=depth,
        mni_mm=mni, bias=bias, affine=atlas.affine.copy(), spacing_mm=spacing, atrophy_grade=atrophy_grade,
        pure_intensities=pure, params=params,  # type: ignore[arg-type]
    )


def make_subject(atlas: Atlas, rng: np.random.Generator, atrophy_grade: int = 0) -> Subject:
    """Draw a new subject from ``rng`` and render it with ``atrophy_grade`` (0, 1 or 2).

    Out: a ``Subject`` on the atlas grid. Raises NnunetTransferError for an unknown grade.
    """
    return render_subject(atlas, sample_subject_params(atlas, rng), atrophy_grade)


