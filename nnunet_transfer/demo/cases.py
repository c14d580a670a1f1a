"""One demo case: its random generator, its arrays, and its files in an nnU-Net raw dataset.

Each case draws from its own generator, seeded from (seed, dataset offset, split, index) with
numpy's SeedSequence, so a case is the same whatever order or process it is made in, and source
subjects never coincide with target subjects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel
import numpy as np
from PIL import Image

from nnunet_transfer.demo.lesions import add_ms_lesions, add_stroke_lesions
from nnunet_transfer.demo.menu import DATASET_OFFSETS
from nnunet_transfer.demo.mni import load_atlas
from nnunet_transfer.demo.natural import CLASS_IMAGES, TEXTURE_IMAGES, classification_crop, horse_scene, unlabeled_crop
from nnunet_transfer.demo.subjects import make_subject
from nnunet_transfer.errors import NnunetTransferError

TISSUE_LABELS = {"background": 0, "CSF": 1, "GM": 2, "WM": 3}
LESION_LABELS = {"background": 0, "lesion": 1}
PLACEHOLDER_LABELS = {"background": 0, "foreground": 1}
ATROPHY_CLASSES = ("no_atrophy", "mild_atrophy", "severe_atrophy")
# Atrophy grades of subjects that are not in the atrophy classification source: mostly none,
# so that anatomy and lesion tasks see a realistic mix of ages.
BACKGROUND_ATROPHY_P = (0.6, 0.3, 0.1)
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What one demo dataset is: name, domain, task, labels, case-id prefix (its key's id offset is in
    :data:`nnunet_transfer.demo.menu.DATASET_OFFSETS`)."""

    key: str
    name: str
    domain: str  # "mri" | "natural"
    task: str  # "segmentation" | "classification" | "unlabeled"
    labels: dict[str, int]
    prefix: str
    is_target: bool
    class_names: tuple[str, ...] | None = None

    @property
    def offset(self) -> int:
        return DATASET_OFFSETS[self.key]

    @property
    def placeholder_labels(self) -> bool:
        """True when labelsTr holds all-background maps only because nnU-Net needs a label file."""
        return self.task != "segmentation"


SPECS: dict[str, DatasetSpec] = {spec.key: spec for spec in (
    DatasetSpec("mri_seg_source", "DemoMRISegSource", "mri", "segmentation", TISSUE_LABELS, "mrianat", False),
    DatasetSpec("mri_cls_source", "DemoMRIClsSource", "mri", "classification", PLACEHOLDER_LABELS, "atrophy",
                False, ATROPHY_CLASSES),
    DatasetSpec("mri_unlabeled", "DemoMRIUnlabeled", "mri", "unlabeled", PLACEHOLDER_LABELS, "mri", False),
    DatasetSpec("natural_cls_source", "DemoNaturalClsSource", "natural", "classification", PLACEHOLDER_LABELS,
                "photo", False, CLASS_IMAGES),
    DatasetSpec("natural_seg_source", "DemoNaturalSegSource", "natural", "segmentation",
                {"background": 0, "horse": 1}, "horse", False),
    DatasetSpec("natural_unlabeled", "DemoNaturalUnlabeled", "natural", "unlabeled", PLACEHOLDER_LABELS, "crop",
                False),
    DatasetSpec("stroke", "DemoStroke", "mri", "segmentation", LESION_LABELS, "stroke", True),
    DatasetSpec("ms", "DemoMS", "mri", "segmentation", LESION_LABELS, "ms", True),
    DatasetSpec("anatomy", "DemoAnatomy", "mri", "segmentation", TISSUE_LABELS, "anatomy", True),
)}
# Pictures each natural dataset is made of (their origins go into dataset.json).
NATURAL_PICTURES = {
    "natural_cls_source": CLASS_IMAGES,
    "natural_seg_source": CLASS_IMAGES + TEXTURE_IMAGES + ("horse",),
    "natural_unlabeled": CLASS_IMAGES + TEXTURE_IMAGES,
}


@dataclass
class DemoCase:
    """One generated case: image (MRI float32 (X, Y, Z); natural uint8 (H, W, 3)), label uint8,
    class index (classification sources) and a JSON-able record of what was simulated."""

    image: np.ndarray
    label: np.ndarray
    class_label: int | None = None
    record: dict = field(default_factory=dict)


def case_rng(seed: int, key: str, split: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of ``split`` in dataset ``key`` for a run with ``seed``."""
    spawn_key = (SPECS[key].offset, SPLITS.index(split), index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def make_case(key: str, seed: int, split: str, index: int, spacing_mm: float = 2.0,
              natural_size: int = 128) -> DemoCase:
    """Generate one case of demo dataset ``key`` (deterministic in all arguments).

    Raises NnunetTransferError for an unknown key or split, a bad spacing or natural size.
    """
    if key not in SPECS:
        raise NnunetTransferError(f"unknown demo dataset {key!r}; use one of {sorted(SPECS)}")
    if split not in SPLITS:
        raise NnunetTransferError(f"unknown split {split!r}; use one of {SPLITS}")
    rng = case_rng(seed, key, split, index)
    if key == "natural_cls_source":
        image, label = classification_crop(rng, natural_size)
        return DemoCase(image, np.ones(image.shape[:2], np.uint8), label, {"picture": CLASS_IMAGES[label]})
    if key == "natural_seg_source":
        image, mask = horse_scene(rng, natural_size)
        return DemoCase(image, mask, None, {"horse_pixels": int(mask.sum())})
    if key == "natural_unlabeled":
        image = unlabeled_crop(rng, natural_size)
        return DemoCase(image, np.ones(image.shape[:2], np.uint8))
    atlas = load_atlas(spacing_mm)
    if key == "mri_cls_source":
        grade = index % len(ATROPHY_CLASSES)  # balanced classes even in a tiny dataset
    elif key == "ms":
        grade = 0
    else:
        grade = int(rng.choice(len(BACKGROUND_ATROPHY_P), p=BACKGROUND_ATROPHY_P))
    subject = make_subject(atlas, rng, grade)
    record: dict = {"atrophy_grade": grade, "ventricle_volume_ml": round(subject.ventricle_volume_ml, 3)}
    if key in ("stroke", "ms"):
        simulate = add_stroke_lesions if key == "stroke" else add_ms_lesions
        result = simulate(subject, rng)
        record["lesions"] = [lesion.as_dict() for lesion in result.lesions]
        return DemoCase(result.t1, result.lesion_mask, None, record)
    if key in ("mri_seg_source", "anatomy"):
        return DemoCase(subject.t1, subject.labels, None, record)
    # placeholder "foreground" = the brain: nnU-Net's fingerprint needs foreground voxels to sample
    placeholder = (subject.labels > 0).astype(np.uint8)
    return DemoCase(subject.t1, placeholder, grade if key == "mri_cls_source" else None, record)


def case_id(key: str, index: int, width: int = 3) -> str:
    """Case identifier, e.g. ``stroke_007`` (test cases continue the numbering after training)."""
    return f"{SPECS[key].prefix}_{index:0{width}d}"


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write a NIfTI with identical qform and sform, so every reader sees the same geometry."""
    image = nibabel.Nifti1Image(array, affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    nibabel.save(image, str(path))


def write_case(folder: Path, key: str, split: str, identifier: str, case: DemoCase, spacing_mm: float) -> None:
    """Write ``case`` as ``<identifier>_0000`` image + ``<identifier>`` label into ``folder``."""
    suffix = "Tr" if split == "train" else "Ts"
    images, labels = folder / f"images{suffix}", folder / f"labels{suffix}"
    if SPECS[key].domain == "mri":
        affine = load_atlas(spacing_mm).affine
        _write_nifti(case.image.astype(np.float32), affine, images / f"{identifier}_0000.nii.gz")
        _write_nifti(case.label.astype(np.uint8), affine, labels / f"{identifier}.nii.gz")
    else:
        Image.fromarray(np.ascontiguousarray(case.image, dtype=np.uint8)).save(images / f"{identifier}_0000.png")
        Image.fromarray(np.ascontiguousarray(case.label, dtype=np.uint8)).save(labels / f"{identifier}.png")


def generate_and_write(job: tuple[str, int, str, int, str, float, int, str]) -> tuple[str, str, int | None, dict]:
    """Worker entry: make one case and write its files; return (id, split, class label, record).

    ``job`` is (key, seed, split, index, identifier, spacing_mm, natural_size, folder); a tuple of
    plain values so it pickles cheaply to a worker process.
    """
    key, seed, split, index, identifier, spacing_mm, natural_size, folder = job
    case = make_case(key, seed, split, index, spacing_mm, natural_size)
    write_case(Path(folder), key, split, identifier, case, spacing_mm)
    return identifier, split, case.class_label, case.record
