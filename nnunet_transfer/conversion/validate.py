"""Read and check one case: readable files, matching geometry, expected label values, no NaN.

Every check returns problems as sentences instead of raising, so a conversion can list all bad
cases at once. Mask helpers (``binarise``, ``combine_raters``, ``remap_labels``) turn the mask
files of one case into one label map and raise :class:`CaseProblem` for unexpected values.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

from nnunet_transfer.conversion.common import CaseProblem
from nnunet_transfer.names import HEADER_TRANSFORMS
from nnunet_transfer.nifti import (FileProblem, check_complete, count_non_finite, geometry_from_affine,
                                   header_transforms, transform_disagreement)


@dataclass(frozen=True)
class GeometryPolicy:
    """How file headers are read and how mask / channel headers must agree with the first image channel.

    Sizes must be equal. Spacing, origin and direction may differ by ``tolerance`` (mm for
    spacing / origin, cosine units for direction); within it the first channel's header is
    copied onto the other file (tiny header drift, e.g. float32 rounding in a re-saved mask).
    Beyond it the case is bad, unless ``resample`` is set: then the file is resampled onto the
    first channel's grid (nearest neighbour for masks, linear for images).

    ``header_transform``: which NIfTI transform places a file whose qform and sform disagree by
    more than ``tolerance``: ``None`` (such a file makes its case bad), ``"sform"`` or ``"qform"``.
    """

    tolerance: float = 1e-3
    resample: bool = False
    header_transform: str | None = None

    def __post_init__(self) -> None:
        if self.header_transform not in (None, *HEADER_TRANSFORMS):
            raise ValueError(f"header_transform must be None, 'sform' or 'qform', got {self.header_transform!r}")


def read_volume(path: Path, policy: GeometryPolicy | None = None) -> sitk.Image:
    """Read a NIfTI / Analyze volume; a trailing singleton 4th dimension is dropped.

    The whole file is checked first (a cut or corrupt download, which SimpleITK would read as
    zeros). When the header's qform and sform disagree, ``policy.header_transform`` says which
    places the volume. Raises CaseProblem naming the file and the reason when it is empty,
    truncated, corrupt or unreadable, or when its transforms disagree and no rule was chosen.
    """
    policy = policy or GeometryPolicy()
    try:
        check_complete(path)
        transforms = header_transforms(path)
        disagreement = transform_disagreement(path, transforms, policy.tolerance)
        chosen = geometry_from_affine(transforms[policy.header_transform]) if disagreement and \
            policy.header_transform else None
    except FileProblem as e:
        raise CaseProblem(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
    if disagreement and chosen is None:
        raise CaseProblem(disagreement)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else "unknown reason"
        raise CaseProblem(f"cannot read {path}: {reason[:200]}") from None
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise CaseProblem(f"{path} has {image.GetDimension()} dimensions {image.GetSize()}; expected a 3D volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise CaseProblem(f"{path} has {image.GetNumberOfComponentsPerPixel()} components per voxel; expected one")
    if chosen is not None:
        spacing, origin, direction = chosen
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(direction)
    return image


def non_finite_problem(path: Path) -> str | None:
    """A sentence when a floating-point file holds NaN / inf voxels (SimpleITK reads them as 0, so
    nnU-Net would train on zeros there), else None."""
    try:
        n = count_non_finite(path)
    except FileProblem as e:
        return str(e)
    return f"{path} contains {n} NaN / inf voxels" if n else None


def geometry_difference(reference: sitk.Image, other: sitk.Image) -> tuple[str, float]:
    """('', 0) when sizes match and the largest header difference is reported as a number; a sentence
    naming the first size mismatch otherwise."""
    if reference.GetSize() != other.GetSize():
        return f"size {other.GetSize()} != {reference.GetSize()}", float("inf")
    diffs = [np.abs(np.subtract(getattr(reference, f"Get{k}")(), getattr(other, f"Get{k}")())).max()
             for k in ("Spacing", "Origin", "Direction")]
    worst = int(np.argmax(diffs))
    if diffs[worst] == 0:
        return "", 0.0
    key = ("spacing", "origin", "direction")[worst]
    ref_value = np.round(getattr(reference, f"Get{key.capitalize()}")(), 4).tolist()
    other_value = np.round(getattr(other, f"Get{key.capitalize()}")(), 4).tolist()
    return f"{key} {other_value} != {ref_value}", float(diffs[worst])


def align(reference: sitk.Image, other: sitk.Image, policy: GeometryPolicy, what: str, is_mask: bool
          ) -> tuple[sitk.Image, str | None]:
    """``other`` on ``reference``'s grid per ``policy``; (image, problem sentence or None)."""
    message, difference = geometry_difference(reference, other)
    if difference <= policy.tolerance:
        if difference:
            other = sitk.Image(other)
            other.CopyInformation(reference)
        return other, None
    if policy.resample:
        interpolator = sitk.sitkNearestNeighbor if is_mask else sitk.sitkLinear
        return sitk.Resample(other, reference, sitk.Transform(), interpolator, 0.0, other.GetPixelID()), None
    return other, (f"{what} geometry differs from the image beyond the tolerance {policy.tolerance}: {message}; "
                   f"fix the header, or pass --resample-to-image to resample it onto the image grid")


def check_intensities(array: np.ndarray, path: Path) -> str | None:
    """A problem sentence when an image holds NaN / inf or is constant (empty), else None."""
    if array.size == 0:
        return f"{path} holds no voxels"
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        return f"{path} contains {int((~np.isfinite(array)).sum())} NaN / inf voxels"
    if array.min() == array.max():
        return f"{path} is constant (every voxel {array.flat[0]}): an empty image"
    return None


def read_picture(path: Path, mask: bool = False) -> np.ndarray:
    """A natural picture as an (H, W, 3) uint8 RGB array, or a mask as (H, W) integers.

    Works from the content, not the name (a PNG saved as .JPEG is read as PNG); CMYK, greyscale
    and palette pictures become RGB; palette masks keep their palette indices (PASCAL VOC).
    Raises CaseProblem when the file cannot be read.
    """
    if path.stat().st_size == 0:
        raise CaseProblem(f"{path} is an empty file (0 bytes)")
    try:
        with Image.open(path) as picture:
            picture.load()
            if mask:
                if picture.mode not in ("P", "L", "I", "I;16", "1"):
                    raise CaseProblem(f"{path} is a {picture.mode} picture; expected a single-channel or palette mask")
                return np.asarray(picture).astype(np.int64)
            return np.asarray(picture.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise CaseProblem(f"cannot read {path}: {e}") from None


def resize_shorter(array: np.ndarray, size: int, mask: bool) -> np.ndarray:
    """Resize a picture so that its shorter side is ``size`` pixels (bilinear; nearest for masks)."""
    h, w = array.shape[:2]
    scale = size / min(h, w)
    shape = (max(1, round(w * scale)), max(1, round(h * scale)))
    if mask:
        return np.asarray(Image.fromarray(array.astype(np.int32), mode="I").resize(shape, Image.NEAREST)).astype(
            np.int64)
    return np.asarray(Image.fromarray(array).resize(shape, Image.BILINEAR))


# ---------------------------------------------------------------------------- mask -> label map

def _finite(array: np.ndarray) -> np.ndarray:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise CaseProblem(f"mask contains {int((~np.isfinite(array)).sum())} NaN / inf voxels")
    return array


def binarise(arrays: list[np.ndarray]) -> np.ndarray:
    """Union of ``array > 0`` over all mask files (lesion masks: float, 1 / 254 / 255, several files)."""
    out = np.zeros(arrays[0].shape, dtype=np.uint8)
    for array in arrays:
        out |= (_finite(array) > 0).astype(np.uint8)
    return out


def combine_raters(arrays: list[np.ndarray], mode: str) -> np.ndarray:
    """Binary lesion map from several raters' masks (in rater order).

    ``mode``: ``"1"`` / ``"2"`` / ... one rater; ``"union"`` any rater; ``"majority"`` more than
    half of the raters; ``"consensus"`` expects a single (consensus) mask file.
    """
    masks = [(_finite(a) > 0) for a in arrays]
    if mode == "union":
        return np.any(masks, axis=0).astype(np.uint8)
    if mode == "majority":
        return (np.sum(masks, axis=0) * 2 > len(masks)).astype(np.uint8)
    if mode == "consensus":
        if len(masks) != 1:
            raise CaseProblem(f"consensus expects one mask file, got {len(masks)}")
        return masks[0].astype(np.uint8)
    index = int(mode) - 1
    if not 0 <= index < len(masks):
        raise CaseProblem(f"rater {mode} asked for but the case has {len(masks)} rater mask(s)")
    return masks[index].astype(np.uint8)


def remap_labels(arrays: list[np.ndarray], mapping: dict[int, int]) -> np.ndarray:
    """One mask's values mapped through ``mapping`` (source value -> nnU-Net label).

    Raises CaseProblem naming the values that are not in ``mapping`` (or not integers).
    """
    if len(arrays) != 1:
        raise CaseProblem(f"expected one label file, got {len(arrays)}")
    array = _finite(arrays[0])
    if np.issubdtype(array.dtype, np.floating):
        rounded = np.rint(array)
        if np.abs(array - rounded).max() > 1e-3:
            raise CaseProblem("label map holds non-integer values")
        array = rounded
    array = array.astype(np.int64)
    values = np.unique(array)
    unknown = sorted(set(values.tolist()) - set(mapping))
    if unknown:
        raise CaseProblem(f"label values {unknown[:10]} are not in the expected set {sorted(mapping)[:40]}")
    lookup = np.zeros(int(values.max()) - int(min(values.min(), 0)) + 1, dtype=np.uint8)
    offset = -int(min(values.min(), 0))
    for value in values.tolist():
        lookup[value + offset] = mapping[value]
    return lookup[array + offset]


def head_placeholder(array: np.ndarray) -> np.ndarray:
    """Label 1 where the image is brighter than its Otsu threshold (the head), 0 elsewhere.

    Unlabelled MRI sources need a label file with foreground voxels: nnU-Net's fingerprint samples
    foreground intensities. It is a placeholder, never a target to train on.
    """
    from skimage.filters import threshold_otsu

    return (array > threshold_otsu(array.astype(np.float32))).astype(np.uint8)
