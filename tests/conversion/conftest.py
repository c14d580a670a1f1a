"""Shared helpers for converter tests: run a conversion, read back what was written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.conversion.registry import converters
from nnunet_transfer.conversion.run import convert
from nnunet_transfer.io import read_json


@pytest.fixture
def raw(tmp_path) -> Path:
    folder = tmp_path / "nnUNet_raw"
    folder.mkdir()
    return folder


def run_convert(key: str, source: Path, raw: Path, dataset_id: int = 501, **kwargs):
    """``convert`` with one worker; converter options go in ``options``."""
    return convert(converters()[key], source, dataset_id, raw, workers=1, **kwargs)


def dataset_json(folder: Path) -> dict:
    return read_json(folder / "dataset.json")


def array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def tree(folder: Path) -> list[str]:
    """Relative paths of every file below ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file below ``folder``: compare before / after to prove it was only read."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}
