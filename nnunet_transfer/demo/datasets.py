"""Write the demo datasets as nnU-Net v2 raw datasets, reproducible from one seed.

Nine datasets with fixed names and ids ``first_id + offset``: three MRI sources (anatomy
segmentation, atrophy classification, unlabeled), three natural-image sources (picture
classification, horse segmentation, unlabeled) and three MRI targets (stroke lesions, MS lesions,
anatomy). MRI anatomy is the real MNI ICBM 2009a template; deformations, contrast, noise,
atrophy and lesions are SYNTHETIC, and every dataset.json says so.
"""
from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from nnunet_transfer import __version__
from nnunet_transfer.demo import provenance
from nnunet_transfer.demo.cases import NATURAL_PICTURES, SPECS, DatasetSpec, case_id, generate_and_write
from nnunet_transfer.demo.mni import load_atlas
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import atomic_directory, write_json_atomic
from nnunet_transfer.raw_dataset import new_dataset_folder, write_dataset_files

DEMO_DATASETS: dict[str, int] = {key: spec.offset for key, spec in SPECS.items()}
RECORD_FILE = "demo_record.json"


@dataclass(frozen=True)
class DemoDataSize:
    """How much demo data to make and at which resolution.

    ``spacing_mm``: isotropic MRI spacing (1-8 mm); ``n_train``: training cases per MRI dataset;
    ``n_test``: test cases per target dataset (sources get none); ``n_natural``: cases per
    natural-image dataset; ``natural_size``: edge of natural crops in pixels. Raises
    NnunetTransferError for values nnU-Net could not use.
    """

    spacing_mm: float = 2.0
    n_train: int = 20
    n_test: int = 10
    n_natural: int = 200
    natural_size: int = 128

    def __post_init__(self) -> None:
        for name, minimum in (("n_train", 1), ("n_test", 0), ("n_natural", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise NnunetTransferError(f"DemoDataSize.{name} must be an integer >= {minimum}, got {value!r}")
        if isinstance(self.natural_size, bool) or not isinstance(self.natural_size, int) \
                or not 8 <= self.natural_size <= 512:
            raise NnunetTransferError(f"DemoDataSize.natural_size must be an integer from 8 to 512, "
                                      f"got {self.natural_size!r}")
        if not isinstance(self.spacing_mm, (int, float)) or not math.isfinite(self.spacing_mm) \
                or not 1.0 <= self.spacing_mm <= 8.0:
            raise NnunetTransferError(f"DemoDataSize.spacing_mm must be between 1 and 8 mm, got {self.spacing_mm!r}")


def _case_counts(spec: DatasetSpec, size: DemoDataSize) -> tuple[int, int]:
    """(training, test) case counts of one dataset."""
    if spec.domain == "natural":
        return size.n_natural, 0
    return size.n_train, size.n_test if spec.is_target else 0


def _validate(raw_root: Path, keys: list[str], seed: int, first_id: int, overwrite: bool) -> dict[str, Path]:
    """Refuse bad arguments and existing folders before anything is written; key -> dataset folder."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise NnunetTransferError(f"demo seed must be a non-negative integer, got {seed!r}")
    largest = max(DEMO_DATASETS.values())
    if isinstance(first_id, bool) or not isinstance(first_id, int) or not 0 <= first_id <= 999 - largest:
        raise NnunetTransferError(f"first_id must be an integer from 0 to {999 - largest} so that every demo "
                                  f"dataset id has three digits, got {first_id!r}")
    return {key: new_dataset_folder(raw_root, first_id + SPECS[key].offset, SPECS[key].name, overwrite, "nnUNet_raw",
                                    f"choose another first_id (now {first_id})", "overwrite=True (--overwrite)")
            for key in keys}


PLACEHOLDER_NOTE = ("labelsTr holds PLACEHOLDER maps: nnU-Net needs a label file with foreground voxels (its "
                    "fingerprint samples foreground intensities). 'foreground' is the brain (MRI) or the whole "
                    "picture (natural images); it is not a segmentation task to train on.")


def _write_dataset_files(spec: DatasetSpec, size: DemoDataSize, seed: int, n_train: int, n_test: int,
                         classes: dict[str, int], folder: Path) -> None:
    """dataset.json (and class_labels.json) of one demo dataset, through the shared raw-dataset writer."""
    mri = spec.domain == "mri"
    write_dataset_files(
        folder, channel_names={"0": "T1"} if mri else {"0": "R", "1": "G", "2": "B"}, labels=spec.labels,
        num_training=n_train, num_test=n_test, file_ending=".nii.gz" if mri else ".png", name=spec.name,
        description=provenance.description(spec.key, spec.domain),
        provenance={"reference": provenance.reference(spec.domain),
                    "licence": provenance.licence(spec.domain, NATURAL_PICTURES.get(spec.key, ()))},
        placeholder_note=PLACEHOLDER_NOTE if spec.placeholder_labels else None,
        class_names=spec.class_names, class_labels=classes,
        ours={"generator": "demo", "seed": seed, "spacing_mm": float(size.spacing_mm) if mri else None,
              "domain": spec.domain, "task": spec.task, "role": "target" if spec.is_target else "source",
              "natural_size": None if mri else size.natural_size, "version": __version__})


def _jobs(spec: DatasetSpec, size: DemoDataSize, seed: int, folder: Path) -> list[tuple]:
    """One job per case: training cases first, then test cases continuing the numbering."""
    n_train, n_test = _case_counts(spec, size)
    width = max(3, len(str(n_train + n_test - 1)))
    jobs = []
    for split, count, start in (("train", n_train, 0), ("test", n_test, n_train)):
        for index in range(count):
            identifier = case_id(spec.key, start + index, width)
            jobs.append((spec.key, seed, split, index, identifier, float(size.spacing_mm), size.natural_size,
                         str(folder)))
    return jobs


def _single_threaded() -> None:
    """Worker initializer: one BLAS thread per process (see ``write_demo_datasets``)."""
    threadpool_limits(limits=1)


def _run(jobs: list[tuple], pool: ProcessPoolExecutor | None) -> Iterator[tuple]:
    """Results of ``generate_and_write`` for ``jobs``, in parallel when a pool is given."""
    if pool is None:
        yield from map(generate_and_write, jobs)
    else:
        yield from pool.map(generate_and_write, jobs, chunksize=1)


def _write_one(spec: DatasetSpec, size: DemoDataSize, seed: int, final: Path, overwrite: bool,
               pool: ProcessPoolExecutor | None, bar: tqdm) -> None:
    """Generate one dataset into a temporary folder that becomes ``final`` when complete."""
    n_train, n_test = _case_counts(spec, size)
    with atomic_directory(final, overwrite=overwrite) as tmp:
        for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
            (tmp / sub).mkdir()
        records: dict[str, dict] = {}
        classes: dict[str, int] = {}
        for identifier, split, class_label, record in _run(_jobs(spec, size, seed, tmp), pool):
            records[identifier] = {"split": split, **record}
            if class_label is not None:
                classes[identifier] = class_label
            bar.update(1)
        _write_dataset_files(spec, size, seed, n_train, n_test, classes, tmp)
        write_json_atomic({"generator": "nnunet_transfer demo", "seed": seed, "cases": records}, tmp / RECORD_FILE)


def write_demo_datasets(raw_root: str | Path, size: DemoDataSize, seed: int = 0, first_id: int = 900,
                        which: Sequence[str] | None = None, overwrite: bool = False, num_workers: int = 1,
                        progress: bool = True) -> dict[str, Path]:
    """Write the demo datasets (all, or the keys in ``which``) into ``raw_root``.

    In: the nnU-Net raw folder (created if missing), a ``DemoDataSize``, a non-negative seed, the
    id offset ``first_id`` (dataset ids are ``first_id + DEMO_DATASETS[key]``), the keys to
    write, whether to replace existing demo folders, the number of worker processes, and whether
    to show a tqdm bar over cases. Out: key -> dataset folder. Each folder is written atomically
    (a temporary sibling renamed at the end). Raises NnunetTransferError for an unknown key, a bad
    seed / first_id / size, a dataset folder that exists without ``overwrite`` or a dataset id
    taken by another dataset, all checked before anything is written.
    """
    keys = list(DEMO_DATASETS) if which is None else list(dict.fromkeys(which))
    unknown = [k for k in keys if k not in DEMO_DATASETS]
    if unknown or not keys:
        raise NnunetTransferError(f"unknown demo dataset(s) {unknown or which!r}; choose from {list(DEMO_DATASETS)}")
    if not isinstance(size, DemoDataSize):
        raise NnunetTransferError(f"size must be a DemoDataSize, got {type(size).__name__}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise NnunetTransferError(f"num_workers must be an integer >= 1, got {num_workers!r}")
    raw_root = Path(raw_root)
    folders = _validate(raw_root, keys, seed, first_id, overwrite)
    if any(SPECS[k].domain == "mri" for k in keys):
        load_atlas(size.spacing_mm)  # fail early (and warm the cache) before any folder is made
    raw_root.mkdir(parents=True, exist_ok=True)
    total = sum(sum(_case_counts(SPECS[k], size)) for k in keys)
    pool = None
    if num_workers > 1:
        # spawn: workers must not inherit locks or threads of the parent (e.g. from torch or tqdm).
        pool = ProcessPoolExecutor(num_workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_single_threaded)
    # The field products are small matrix multiplications: BLAS threads only add overhead here
    # (measured 0.33 -> 0.22 s per 2 mm case), and they oversubscribe the cores of parallel workers.
    try:
        with threadpool_limits(limits=1), \
                tqdm(total=total, desc="demo datasets", unit="case", disable=not progress) as bar:
            for key in keys:
                bar.set_postfix_str(folders[key].name, refresh=False)
                _write_one(SPECS[key], size, seed, folders[key], overwrite, pool, bar)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return folders
