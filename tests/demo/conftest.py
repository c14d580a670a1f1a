"""Fixtures for the demo data tests: a coarse atlas and one small set of written datasets."""
from __future__ import annotations

from pathlib import Path

import pytest

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from nnunet_transfer.demo.mni import Atlas, load_atlas

# Coarse and few: the whole folder must stay fast on two CPU cores.
TINY = DemoDataSize(spacing_mm=6.0, n_train=2, n_test=1, n_natural=4, natural_size=32)
TINY_SEED = 3


@pytest.fixture(scope="session")
def atlas() -> Atlas:
    """The template at 4 mm: coarse, yet with ventricles, cortex and white matter resolved."""
    return load_atlas(4.0)


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> dict[str, Path]:
    """All nine demo datasets written once, at 6 mm with a handful of cases (read-only use)."""
    root = tmp_path_factory.mktemp("demo_raw")
    return write_demo_datasets(root, TINY, seed=TINY_SEED, progress=False)
