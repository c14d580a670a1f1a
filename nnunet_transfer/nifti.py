"""What SimpleITK does not check when it reads a NIfTI file, checked here.

- **Complete data.** SimpleITK reads a cut ``.nii.gz`` without raising and fills the missing voxels
  with zeros; a truncated download of a lesion mask becomes an empty mask. :func:`check_complete`
  decompresses the whole stream (gzip checks its CRC and length) and compares the data with the
  size the header declares.
- **NaN / inf.** SimpleITK (2.5) reads them as 0; :func:`count_non_finite` counts them with nibabel.
- **qform vs sform.** A NIfTI header holds two transforms. When both are set and disagree,
  SimpleITK uses one of them and nibabel, FSL and most viewers the other, so the same file lands
  in two places. :func:`header_transforms` reads both; :func:`transform_disagreement` describes a
  disagreement; :func:`geometry_from_affine` turns the chosen one into SimpleITK's geometry.

Each check raises :class:`FileProblem` with a sentence naming the file; callers turn it into a
bad case (conversion) or an error (evaluation).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel
import numpy as np

from nnunet_transfer.names import HEADER_TRANSFORMS

CHUNK = 1 << 22


class FileProblem(ValueError):
    """A file that cannot be used as it is; the message names it and says why."""


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _decompressed_size(path: Path) -> int:
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while block := stream.read(CHUNK):
                total += len(block)
    except EOFError:
        raise FileProblem(f"{path} is truncated: its compressed stream ends early (an interrupted download or "
                          f"copy?); download it again") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise FileProblem(f"{path} is corrupt: {e}; download it again") from None
    return total


def _load_header(path: Path):
    try:
        return nibabel.load(str(path))
    except Exception as e:  # noqa: BLE001 - nibabel raises many types for a bad header; all mean "unreadable"
        raise FileProblem(f"cannot read {path}: {str(e).strip()[:200] or type(e).__name__}") from None


def check_complete(path: str | Path) -> None:
    """Raise FileProblem when ``path`` is empty, a truncated or corrupt gzip stream, or holds less
    image data than its header declares (NIfTI-1 / -2, ``.nii`` or ``.nii.gz``; Analyze ``.hdr``
    checks its ``.img``)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise FileProblem(f"{path} is an empty file (0 bytes)")
    size = _decompressed_size(path) if _is_gzip(path) else None  # before the header: a cut stream may lack one
    image = _load_header(path)
    header = image.header
    expected = int(np.prod(header.get_data_shape(), dtype=np.int64)) * header.get_data_dtype().itemsize
    data_file = Path(image.file_map["image"].filename)
    offset = int(getattr(image.dataobj, "offset", 0))
    if data_file != path:  # Analyze / NIfTI pair: the data are in the .img
        size = _decompressed_size(data_file) if _is_gzip(data_file) else data_file.stat().st_size
    elif size is None:
        size = path.stat().st_size
    if size - offset < expected:
        raise FileProblem(f"{data_file} is truncated: it holds {max(0, size - offset)} bytes of image data but its "
                          f"header declares {expected}; download it again")


def count_non_finite(path: str | Path) -> int:
    """NaN / inf voxels of a floating-point file (0 for integer files, which cannot hold them)."""
    image = _load_header(Path(path))
    if not np.issubdtype(image.get_data_dtype(), np.floating):
        return 0
    try:
        return int((~np.isfinite(np.asanyarray(image.dataobj))).sum())
    except Exception as e:  # noqa: BLE001 - a data block nibabel cannot read
        raise FileProblem(f"cannot read the data of {path}: {str(e)[:200]}") from None


def header_transforms(path: str | Path) -> dict[str, np.ndarray]:
    """The transforms a NIfTI header sets (code > 0): ``{"qform": 4x4, "sform": 4x4}`` in RAS+ mm,
    either or both missing; empty for Analyze files."""
    image = _load_header(Path(path))
    out = {}
    for name in HEADER_TRANSFORMS:
        getter = getattr(image, f"get_{name}", None)
        if getter is not None:
            affine, code = getter(coded=True)
            if affine is not None and int(code) > 0:
                out[name] = np.asarray(affine, dtype=float)
    return out


def transform_disagreement(path: str | Path, transforms: dict[str, np.ndarray], tolerance_mm: float) -> str | None:
    """A sentence when ``qform`` and ``sform`` are both set and place a voxel more than
    ``tolerance_mm`` apart (compared over the corners of the image), else None."""
    if len(transforms) < 2:
        return None
    shape = _load_header(Path(path)).header.get_data_shape()[:3]
    corners = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                        for k in (0, shape[2] - 1)], dtype=float).T
    q, s = transforms["qform"] @ corners, transforms["sform"] @ corners
    worst = float(np.linalg.norm((q - s)[:3], axis=0).max())  # the largest distance between the two placements
    if worst <= tolerance_mm:
        return None

    def origin(a: np.ndarray) -> str:
        return "(" + ", ".join(f"{v:.1f}" for v in a[:3, 3]) + ")"

    return (f"{path}: its qform and sform disagree by up to {worst:.1f} mm "
            f"(qform origin {origin(transforms['qform'])}, sform origin {origin(transforms['sform'])}, RAS mm). "
            f"Viewers, FSL and nibabel use the sform, SimpleITK and nnU-Net may use the qform; choose one with "
            f"--header-transform sform|qform, or fix the header")


def geometry_from_affine(affine: np.ndarray, tolerance: float = 1e-4) -> tuple[tuple, tuple, tuple]:
    """SimpleITK's (spacing, origin, direction) of a RAS+ voxel-to-mm affine (ITK uses LPS+).

    Raises FileProblem when the affine shears or has a zero-length axis (ITK needs an orthonormal
    direction)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=float)
    matrix = lps[:3, :3]
    spacing = np.linalg.norm(matrix, axis=0)
    if np.any(spacing <= 0):
        raise FileProblem(f"the transform has a zero-length axis: {np.round(affine, 4).tolist()}")
    direction = matrix / spacing
    if np.abs(direction.T @ direction - np.eye(3)).max() > tolerance:
        raise FileProblem("the transform shears (its axes are not orthogonal), which SimpleITK and nnU-Net cannot "
                          "represent; resample the file in a tool that can")
    return tuple(spacing.tolist()), tuple(lps[:3, 3].tolist()), tuple(direction.ravel().tolist())
