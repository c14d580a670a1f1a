"""Run a converter: read and check every case (in parallel), then write the nnU-Net raw dataset atomically.

The dataset folder appears only when every case passed (or the bad ones were skipped with
``skip_bad``): files go to a hidden temporary sibling that is renamed at the end, so an
interrupted conversion leaves nothing that looks like a dataset. The source folder is only read.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import SimpleITK as sitk
from PIL import Image
from tqdm import tqdm

from nnunet_transfer import __version__
from nnunet_transfer.conversion.common import Case, CaseProblem, Conversion, Converter
from nnunet_transfer.conversion.validate import (GeometryPolicy, align, check_intensities, head_placeholder,
                                                 non_finite_problem, read_picture, read_volume, resize_shorter)
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import atomic_directory, require_writable_folder, write_json_atomic
from nnunet_transfer.layout import PATIENTS_FILE, SPLITS_FILE
from nnunet_transfer.processes import die_with_parent
from nnunet_transfer.raw_dataset import new_dataset_folder, write_dataset_files

DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")



@dataclass(frozen=True)
class _Reader:
    """The picklable part of a Conversion that a worker needs to read, check and write one case."""

    kind: str
    combine_masks: Callable[[list[np.ndarray]], np.ndarray] | None
    placeholder: str | None
    label_values: frozenset[int]
    resize_shorter: int | None
    policy: GeometryPolicy


@dataclass
class CaseResult:
    case: Case
    files: list[str]
    problems: list[str]
    foreground_voxels: int | None = None


@dataclass
class ConversionResult:
    """What a conversion wrote (or would write, for a dry run) and which cases were bad."""

    folder: Path
    dry_run: bool
    results: list[CaseResult]
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # Conversion.notes (left-out cases, ...), printed by summary()

    @property
    def good(self) -> list[CaseResult]:
        return [r for r in self.results if not r.problems]

    @property
    def bad(self) -> list[CaseResult]:
        return [r for r in self.results if r.problems]

    def summary(self) -> str:
        n = Counter(r.case.split for r in self.good)
        verb = "would write" if self.dry_run else "wrote"
        text = f"{verb} {self.folder}: {n['train']} training case(s), {n['test']} test case(s)"
        if self.bad:
            text += f"; {len(self.bad)} bad case(s) {'would be ' if self.dry_run else ''}skipped"
        return text + "".join(f"\nnote: {n}" for n in self.notes)


def _check_labels(label: np.ndarray, allowed: frozenset[int]) -> str | None:
    values = set(np.unique(label).tolist())
    if not values <= allowed:
        return f"label map holds values {sorted(values - allowed)} that dataset.json does not define"
    return None


def _read_nifti_case(case: Case, reader: _Reader) -> tuple[list[sitk.Image], np.ndarray | None, list[str]]:
    problems: list[str] = []
    images = [read_volume(p, reader.policy) for p in case.images]
    for path, image in zip(case.images, images):
        problem = non_finite_problem(path) or check_intensities(sitk.GetArrayViewFromImage(image), path)
        if problem:
            problems.append(problem)
    for i in range(1, len(images)):
        images[i], problem = align(images[0], images[i], reader.policy, f"channel {case.images[i].name}", False)
        if problem:
            problems.append(problem)
    if images[0].GetPixelID() == sitk.sitkFloat64:
        images = [sitk.Cast(im, sitk.sitkFloat32) for im in images]
    label = None
    if case.masks:
        arrays = []
        for path in case.masks:
            mask, problem = align(images[0], read_volume(path, reader.policy), reader.policy, f"mask {path.name}", True)
            if problem:
                problems.append(problem)
            arrays.append(sitk.GetArrayFromImage(mask))
        if not problems:
            label = reader.combine_masks(arrays)
    elif reader.placeholder == "head":
        label = head_placeholder(sitk.GetArrayViewFromImage(images[0]))
    return images, label, problems


def _read_natural_case(case: Case, reader: _Reader) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    picture = read_picture(case.images[0])
    label = None
    if case.masks:
        arrays = [read_picture(p, mask=True) for p in case.masks]
        if any(a.shape != picture.shape[:2] for a in arrays):
            return picture, None, [f"mask size {[a.shape for a in arrays]} != picture size {picture.shape[:2]}"]
        label = reader.combine_masks(arrays)
    elif reader.placeholder == "picture":
        label = np.ones(picture.shape[:2], dtype=np.uint8)
    if reader.resize_shorter:
        picture = resize_shorter(picture, reader.resize_shorter, mask=False)
        label = None if label is None else resize_shorter(label, reader.resize_shorter, mask=True)
    problem = check_intensities(picture, case.images[0])
    return picture, label, [problem] if problem else []


def _target_files(case: Case, kind: str, has_label: bool) -> list[str]:
    suffix = "Tr" if case.split == "train" else "Ts"
    ending = ".png" if kind == "natural" else ".nii.gz"
    files = [f"images{suffix}/{case.case_id}_{c:04d}{ending}" for c in range(len(case.images))]
    if has_label and (case.split == "train" or case.masks):
        files.append(f"labels{suffix}/{case.case_id}{ending}")
    return files


def process_case(case: Case, reader: _Reader, out: Path | None) -> CaseResult:
    """Read and check one case; write its files under ``out`` when it is good (None: dry run)."""
    has_label = bool(case.masks) or reader.placeholder is not None
    files = _target_files(case, reader.kind, has_label)
    if case.problems:
        return CaseResult(case, files, list(case.problems))
    try:
        if reader.kind == "natural":
            images, label, problems = _read_natural_case(case, reader)
        else:
            images, label, problems = _read_nifti_case(case, reader)
        if label is not None and not problems:
            problem = _check_labels(label, reader.label_values)
            problems += [problem] if problem else []
    except CaseProblem as e:
        return CaseResult(case, files, [str(e)])
    except (OSError, EOFError, zlib.error) as e:  # a reader that failed in a way no check foresaw: still this case's
        return CaseResult(case, files, [f"cannot read the files of case {case.case_id}: {type(e).__name__}: {e}"])
    foreground = None if label is None else int(np.count_nonzero(label))
    if problems or out is None:
        return CaseResult(case, files, problems, foreground)
    for relative in files:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
    if reader.kind == "natural":
        Image.fromarray(np.ascontiguousarray(images, dtype=np.uint8)).save(out / files[0])
        if label is not None and len(files) > 1:
            Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8)).save(out / files[-1])
    else:
        for relative, image in zip(files, images):
            sitk.WriteImage(image, str(out / relative), useCompression=True)
        if label is not None and len(files) > len(images):
            dtype = np.uint8 if max(reader.label_values) < 256 else np.uint16
            label_image = sitk.GetImageFromArray(label.astype(dtype))
            label_image.CopyInformation(images[0])
            sitk.WriteImage(label_image, str(out / files[-1]), useCompression=True)
    return CaseResult(case, files, [], foreground)


def _worker_init(parent: int) -> None:
    die_with_parent(parent)  # a conversion killed with SIGKILL / SIGTERM leaves no worker behind
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # parallelism comes from the processes


def _process_all(cases: list[Case], reader: _Reader, out: Path | None, workers: int, desc: str) -> list[CaseResult]:
    bar = tqdm(total=len(cases), desc=desc, unit="case", dynamic_ncols=True)
    results: list[CaseResult] = []
    try:
        if workers <= 1:
            for case in cases:
                results.append(process_case(case, reader, out))
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                     initializer=_worker_init, initargs=(os.getpid(),)) as pool:
                futures = [pool.submit(process_case, case, reader, out) for case in cases]
                for future in futures:
                    results.append(future.result())
                    bar.update()
    finally:
        bar.close()
    return results


def patient_splits(cases: list[Case], n_folds: int = 5) -> list[dict[str, list[str]]]:
    """nnU-Net ``splits_final.json`` content where all time points of one patient share a fold.

    Folds come from scikit-learn's GroupKFold over the patients (cases sorted by id, so the
    result is deterministic); ``min(n_folds, number of patients)`` folds. Raises
    NnunetTransferError with fewer than two patients.
    """
    from sklearn.model_selection import GroupKFold

    cases = sorted(cases, key=lambda c: c.case_id)
    groups = [c.patient or c.case_id for c in cases]
    n = min(n_folds, len(set(groups)))
    if n < 2:
        raise NnunetTransferError(f"a patient-level split needs at least two patients, found {len(set(groups))}")
    ids = np.array([c.case_id for c in cases])
    return [{"train": ids[tr].tolist(), "val": ids[va].tolist()}
            for tr, va in GroupKFold(n_splits=n).split(ids, groups=groups)]


PLACEHOLDER_NOTE = ("cases without a mask carry a PLACEHOLDER label map ('head': Otsu threshold of the image; "
                    "'picture': every pixel) because nnU-Net's fingerprint needs foreground voxels; it is not a "
                    "segmentation task to train on.")


def _write_dataset_files(conversion: Conversion, converter: Converter, good: list[CaseResult],
                         bad: list[CaseResult], name: str, folder: Path) -> list[str]:
    """dataset.json (and class_labels.json) through the shared raw-dataset writer."""
    train = [r for r in good if r.case.split == "train"]
    p = conversion.provenance
    class_labels = None
    if conversion.class_names is not None:
        index = {c: i for i, c in enumerate(conversion.class_names)}
        class_labels = {r.case.case_id: index[r.case.class_name] for r in train if r.case.class_name is not None}
    return write_dataset_files(
        folder, channel_names=conversion.channel_names, labels=conversion.labels, num_training=len(train),
        num_test=len(good) - len(train), file_ending=conversion.file_ending, name=name,
        description=conversion.description,
        provenance={"source": p.title + (f" ({p.release})" if p.release else ""), "reference": p.url,
                    "licence": p.licence, "citation": p.citation},
        placeholder_note=PLACEHOLDER_NOTE if conversion.placeholder else None,
        class_names=conversion.class_names, class_labels=class_labels,
        class_descriptions=conversion.class_descriptions,
        ours={"converter": converter.key, "options": conversion.options, "version": __version__,
              "notes": conversion.notes, "empty_label_maps": sum(r.foreground_voxels == 0 for r in train),
              "skipped_cases": {r.case.case_id: r.problems for r in bad}})


def check_dataset_name(name: str) -> str:
    """``name`` when it is a usable nnU-Net dataset name (``DatasetXXX_<name>``: letters, digits, ``_``
    and ``-``, no path); NnunetTransferError suggesting a cleaned name otherwise."""
    if not isinstance(name, str) or not DATASET_NAME.fullmatch(name):
        suggestion = re.sub(r"[^A-Za-z0-9_\-]+", "_", str(name)).strip("_-") or "MyDataset"
        raise NnunetTransferError(f"--name {name!r}: a dataset name may hold letters, digits, '_' and '-' only (it "
                                  f"becomes the folder DatasetXXX_<name>); for example --name {suggestion}")
    return name


def _target_folder(raw_root: Path, dataset_id: int, name: str, overwrite: bool, source: Path) -> Path:
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int) or not 1 <= dataset_id <= 999:
        raise NnunetTransferError(f"dataset id must be an integer from 1 to 999 (nnU-Net's DatasetXXX), "
                                  f"got {dataset_id!r}")
    folder = new_dataset_folder(raw_root, dataset_id, check_dataset_name(name), overwrite,
                                "--raw-folder / nnUNet_raw", "choose another -d or remove that folder")
    if folder.resolve().is_relative_to(source.resolve()):
        raise NnunetTransferError(f"the output {folder} lies inside SOURCE_DIR {source}; the source is never "
                                  f"modified: set nnUNet_raw (or --raw-folder) outside it")
    return folder


def convert(converter: Converter, source: str | os.PathLike, dataset_id: int, raw_root: str | os.PathLike,
            name: str | None = None, overwrite: bool = False, dry_run: bool = False, skip_bad: bool = False,
            workers: int = 1, policy: GeometryPolicy | None = None, options: dict[str, Any] | None = None
            ) -> ConversionResult:
    """Convert the download in ``source`` into ``raw_root/DatasetXXX_<name>``; returns what was written.

    ``options`` are the converter's own keyword arguments. Raises NnunetTransferError when the
    source is not the dataset, a case id repeats, the target exists (without ``overwrite``), or
    any case is bad (all listed; ``skip_bad`` skips and reports them instead). With ``dry_run``
    every case is read and checked but nothing is written.
    """
    source, policy = Path(source), policy or GeometryPolicy()
    if not source.is_dir():
        raise NnunetTransferError(f"SOURCE_DIR {source} is not a folder; point it at the extracted download")
    conversion = converter.discover(source, **(options or {}))
    name = name or conversion.name
    folder = _target_folder(Path(raw_root), dataset_id, name, overwrite, source)
    duplicates = [k for k, n in Counter(c.case_id for c in conversion.cases).items() if n > 1]
    if duplicates:
        where = {d: [str(c.images[0]) for c in conversion.cases if c.case_id == d] for d in duplicates[:5]}
        raise NnunetTransferError(f"duplicate case id(s) {duplicates[:10]}: {where}; each case must appear once "
                                  f"(remove the extra copy from SOURCE_DIR)")
    reader = _Reader(conversion.kind, conversion.combine_masks, conversion.placeholder,
                     frozenset(conversion.label_values()), conversion.resize_shorter, policy)
    cases = sorted(conversion.cases, key=lambda c: (c.split, c.case_id))
    desc = f"{'check' if dry_run else 'convert'} {converter.key}"
    if dry_run:
        return ConversionResult(folder, True, _process_all(cases, reader, None, workers, desc),
                                notes=list(conversion.notes))
    require_writable_folder(folder.parent, "the nnU-Net raw folder (--raw-folder / nnUNet_raw)")
    with atomic_directory(folder, overwrite=overwrite) as tmp:
        result = ConversionResult(folder, False, _process_all(cases, reader, tmp, workers, desc),
                                  notes=list(conversion.notes))
        _finish(result, conversion, converter, name, skip_bad, tmp)
    return result


def _finish(result: ConversionResult, conversion: Conversion, converter: Converter, name: str, skip_bad: bool,
            tmp: Path) -> None:
    good, bad = result.good, result.bad
    if bad and not skip_bad:
        raise NnunetTransferError(bad_cases_message(bad, len(result.results)))
    train = [r.case for r in good if r.case.split == "train"]
    if not train and not any(r.case.split == "test" for r in good):
        raise NnunetTransferError("no case could be converted:\n" + bad_cases_message(bad, len(result.results)))
    written = [f for r in good for f in r.files]
    written += _write_dataset_files(conversion, converter, good, bad, name, tmp)
    if conversion.patient_split and train:
        write_json_atomic(patient_splits(train), tmp / SPLITS_FILE)
        # which cases are one patient's time points: label-efficiency subsets draw patients, not cases
        write_json_atomic({c.case_id: c.patient or c.case_id for c in sorted(train, key=lambda c: c.case_id)},
                          tmp / PATIENTS_FILE)
        written += [SPLITS_FILE, PATIENTS_FILE]
    result.written = written


def bad_cases_message(bad: list[CaseResult], total: int) -> str:
    """Every bad case with all its problems, and what to do."""
    lines = [f"{len(bad)} of {total} case(s) have problems:"]
    for r in bad:
        lines += [f"  {r.case.case_id}: {p}" for p in r.problems]
    lines.append("Fix them, or pass --skip-bad to convert the other cases and list these in dataset.json.")
    return "\n".join(lines)
