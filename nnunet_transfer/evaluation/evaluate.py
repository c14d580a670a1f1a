"""Evaluate a prediction folder against a reference folder: per-case table and summary.

Folders hold one segmentation per case, ``<case><file ending>`` (NIfTI by default), matched by
the name without the ending; anything else (nnU-Net's dataset.json, plans.json,
predict_from_raw_data_args.json, .npz / .pkl files) is ignored. Voxel metrics come from
``metrics.py``, lesion metrics from ``lesions.py``; the summary uses nnU-Net's summary.json
names where they overlap. Column and key definitions: documentation/reference/evaluation.md.
"""
from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.evaluation.boundary import boundary_metrics
from nnunet_transfer.evaluation.instances import instance_metrics
from nnunet_transfer.evaluation.lesions import CONNECTIVITIES, detected_by_coverage, lesion_overlap, min_size_in_voxels
from nnunet_transfer.evaluation.metrics import voxel_counts, voxel_metrics, voxel_volume_ml
from nnunet_transfer.evaluation.profiles import PROFILES, isbi2015_summary
from nnunet_transfer.io import plain_data, read_json, require_writable_folder, write_csv_atomic, write_json_atomic
from nnunet_transfer.names import NSD_TOLERANCE_MM
from nnunet_transfer.processes import die_with_parent
from nnunet_transfer.nifti import (FileProblem, check_complete, count_non_finite, header_transforms,
                                   transform_disagreement)

if TYPE_CHECKING:  # pandas is imported where tables are built: worker processes do not need it
    import pandas as pd

NIFTI_ENDINGS = (".nii.gz", ".nii")
PER_CASE_CSV = "evaluation_per_case.csv"
SUMMARY_JSON = "evaluation_summary.json"
MAX_LISTED = 10
# spawn, as nnU-Net's own evaluation: no state of the parent (threads, open files) is inherited
START_METHOD = "spawn"


@dataclass(frozen=True)
class EvaluationSettings:
    """What to evaluate and how lesions are matched.

    ``labels``: foreground label values to evaluate (None: every non-zero value found in the
    reference or prediction of any case); ``lesion_labels``: labels that also get lesion and
    instance metrics (None: all evaluated labels; () : none); ``connectivity`` 6 / 18 / 26;
    ``overlap``: fraction of a reference lesion that must be covered to detect it (0: any voxel);
    ``min_lesion_volume_ml``: smaller components are dropped from both sides before lesion
    matching (0: none) -- these three define the ``lesion_*`` and instance columns;
    ``profiles``: challenge profiles (``profiles.PROFILES``) whose columns are added for the
    lesion labels; ``boundary``: NSD / HD95 / ASSD for every label, NSD at ``nsd_tolerance_mm``;
    ``instances``: PQ / SQ / RQ / lesion-wise Dice; ``geometry_tolerance``: largest difference
    of spacing / origin (mm) and direction cosines between prediction and reference.
    """

    labels: tuple[int, ...] | None = None
    lesion_labels: tuple[int, ...] | None = None
    connectivity: int = 26
    overlap: float = 0.0
    min_lesion_volume_ml: float = 0.0
    profiles: tuple[str, ...] = ()
    boundary: bool = True
    instances: bool = True
    nsd_tolerance_mm: float = NSD_TOLERANCE_MM
    geometry_tolerance: float = 1e-3
    label_names: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.connectivity not in CONNECTIVITIES:
            raise NnunetTransferError(f"--connectivity must be one of {CONNECTIVITIES}, got {self.connectivity}")
        if not 0.0 <= self.overlap <= 1.0:
            raise NnunetTransferError(f"--overlap must be a fraction in [0, 1], got {self.overlap}")
        if self.min_lesion_volume_ml < 0:
            raise NnunetTransferError(f"--min-lesion-volume must be >= 0 ml, got {self.min_lesion_volume_ml}")
        unknown = [p for p in self.profiles if p not in PROFILES]
        if unknown:
            raise NnunetTransferError(f"unknown evaluation profile {', '.join(unknown)}; the profiles are "
                                      f"{', '.join(PROFILES)}")
        if not self.nsd_tolerance_mm >= 0:
            raise NnunetTransferError(f"--nsd-tolerance must be >= 0 mm, got {self.nsd_tolerance_mm}")


@dataclass
class EvaluationResult:
    """The per-case table, the summary dict and the files written (if any)."""

    per_case: pd.DataFrame
    summary: dict
    unmatched_predictions: list[str]
    files: dict[str, Path] = field(default_factory=dict)


def labels_from_dataset_json(path: str | os.PathLike) -> tuple[dict[int, str], str]:
    """Foreground labels {value: name} and the file ending of an nnU-Net dataset.json.

    Raises NnunetTransferError for a missing file, region-based labels or an ignore label.
    """
    try:
        dataset = read_json(path)
    except (OSError, ValueError) as e:
        raise NnunetTransferError(f"cannot read dataset.json {path}: {e}") from e
    labels = {}
    for name, value in dataset.get("labels", {}).items():
        if not isinstance(value, int) or name == "ignore":
            raise NnunetTransferError(f"{path}: label {name!r} = {value!r}: region-based labels and the ignore "
                                      "label are not supported by evaluate; use nnUNetv2_evaluate_folder")
        if value != 0:
            labels[value] = name
    if not labels:
        raise NnunetTransferError(f"{path} names no foreground label under 'labels'")
    return dict(sorted(labels.items())), dataset.get("file_ending", ".nii.gz")


def _case_id(name: str, endings: tuple[str, ...]) -> str | None:
    return next((name[: -len(e)] for e in endings if name.endswith(e)), None)


def find_cases(reference_dir: str | os.PathLike, prediction_dir: str | os.PathLike,
               endings: tuple[str, ...] = NIFTI_ENDINGS) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pair reference and prediction files by case id (the file name without its ending).

    Out: ([(case, reference file, prediction file)] sorted by case, prediction case ids without
    a reference). Raises NnunetTransferError when a folder is missing, the reference folder has
    no case, or a reference case has no prediction (naming them).
    """
    found = {}
    for role, folder in (("reference", reference_dir), ("prediction", prediction_dir)):
        folder = Path(folder)
        if not folder.is_dir():
            raise NnunetTransferError(f"{role} folder {folder} does not exist")
        found[role] = {c: folder / f.name for f in folder.iterdir() if f.is_file()
                       and not f.name.startswith(".") and (c := _case_id(f.name, endings)) is not None}
    reference, prediction = found["reference"], found["prediction"]
    if not reference:
        raise NnunetTransferError(f"reference folder {reference_dir} has no {' / '.join(endings)} file")
    missing = sorted(set(reference) - set(prediction))
    if missing:
        listed = ", ".join(missing[:MAX_LISTED]) + (f" and {len(missing) - MAX_LISTED} more"
                                                    if len(missing) > MAX_LISTED else "")
        raise NnunetTransferError(f"{len(missing)} of {len(reference)} reference cases have no prediction in "
                                  f"{prediction_dir}: {listed}")
    cases = [(c, reference[c], prediction[c]) for c in sorted(reference)]
    return cases, sorted(set(prediction) - set(reference))


def read_segmentation(path: Path, tolerance: float = 1e-3) -> tuple[np.ndarray, dict]:
    """An integer label map (numpy axis order z, y, x) and its geometry (SimpleITK order x, y, z):
    {"shape", "spacing", "origin", "direction"}.

    Raises NnunetTransferError naming the file for an empty, truncated, corrupt or unreadable file
    (SimpleITK would read a cut file as zeros), NaN / inf voxels (read as 0), non-integer values,
    or a qform and sform that disagree by more than ``tolerance`` mm (which one places the mask?).
    """
    try:
        check_complete(path)
        problem = transform_disagreement(path, header_transforms(path), tolerance)
        non_finite = count_non_finite(path)
    except FileProblem as e:
        raise NnunetTransferError(str(e)) from None
    if problem:
        raise NnunetTransferError(problem.replace("choose one with --header-transform sform|qform, or fix the header",
                                                  "fix the header (e.g. by converting the folder with nnunet_transfer "
                                                  "convert nifti-folder --header-transform sform|qform)"))
    if non_finite:
        raise NnunetTransferError(f"{path} contains {non_finite} NaN / inf voxels: not a segmentation")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise NnunetTransferError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from e
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        rounded = np.rint(array)
        if not np.array_equal(rounded, array):
            raise NnunetTransferError(f"{path} has non-integer values: not a segmentation")
        array = rounded.astype(np.int32)
    geometry = {"shape": tuple(image.GetSize()), "spacing": image.GetSpacing(), "origin": image.GetOrigin(),
                "direction": image.GetDirection()}
    return array, geometry


def check_geometry(case: str, reference: dict, prediction: dict, tolerance: float) -> None:
    """Raise NnunetTransferError naming the case and the first differing property (shape exactly;
    spacing, origin, direction within ``tolerance``)."""
    for key in ("shape", "spacing", "origin", "direction"):
        ref, pred = reference[key], prediction[key]
        same = ref == pred if key == "shape" else (
            len(ref) == len(pred) and np.allclose(ref, pred, rtol=0, atol=tolerance))
        if not same:
            fmt = (lambda v: "x".join(str(int(x)) for x in v)) if key == "shape" else (
                lambda v: "(" + ", ".join(f"{x:g}" for x in v) + ")")
            raise NnunetTransferError(f"case {case}: prediction and reference differ in {key}: prediction "
                                      f"{fmt(pred)}, reference {fmt(ref)} (tolerance {tolerance:g})")


def _values_present(array: np.ndarray) -> set[int]:
    flat = array.ravel()
    if flat.size and flat.min() >= 0 and flat.max() < 65536:
        return {int(v) for v in np.flatnonzero(np.bincount(flat))}
    return {int(v) for v in np.unique(flat)}


def evaluate_case(case: str, reference_file: Path, prediction_file: Path, settings: EvaluationSettings) -> dict:
    """Metrics of one case: {"case", "reference_file", "prediction_file", "n_voxels", "spacing"
    (x, y, z), "metrics": {label: {metric: value}}} for the settings' labels (or every non-zero value found).

    Raises NnunetTransferError for a geometry mismatch or label values not in ``settings.labels``.
    """
    reference, ref_geometry = read_segmentation(reference_file, settings.geometry_tolerance)
    prediction, pred_geometry = read_segmentation(prediction_file, settings.geometry_tolerance)
    check_geometry(case, ref_geometry, pred_geometry, settings.geometry_tolerance)
    found = (_values_present(reference) | _values_present(prediction)) - {0}
    if settings.labels is not None:
        unknown = sorted(found - set(settings.labels))
        if unknown:
            raise NnunetTransferError(f"case {case}: label values {unknown} are not among the labels evaluated "
                                      f"{list(settings.labels)} (from the dataset.json)")
    labels = sorted(found) if settings.labels is None else list(settings.labels)
    metrics = {label: label_metrics(reference == label, prediction == label, ref_geometry["spacing"], settings,
                                    settings.lesion_labels is None or label in settings.lesion_labels)
               for label in labels}
    return {"case": case, "reference_file": str(reference_file), "prediction_file": str(prediction_file),
            "n_voxels": int(reference.size), "spacing": tuple(ref_geometry["spacing"]), "metrics": metrics}


def label_metrics(reference: np.ndarray, prediction: np.ndarray, spacing_xyz: tuple[float, ...],
                  settings: EvaluationSettings, lesions: bool) -> dict[str, float | int]:
    """Every metric of one label of one case, keyed as in the per-case CSV (without ``_<label>``).

    In: boolean masks in numpy order (z, y, x), the spacing in SimpleITK order (x, y, z), the
    settings, and whether the label gets lesion, instance and profile metrics.
    """
    spacing = tuple(float(s) for s in reversed(spacing_xyz))  # numpy axis order
    voxel_ml = voxel_volume_ml(spacing)
    metrics = voxel_metrics(voxel_counts(reference, prediction), voxel_ml)
    if settings.boundary:
        metrics.update(boundary_metrics(reference, prediction, spacing, settings.nsd_tolerance_mm))
    if not lesions:
        return metrics
    overlap = lesion_overlap(reference, prediction, settings.connectivity,
                             min_size_in_voxels(settings.min_lesion_volume_ml, voxel_ml))
    metrics.update(overlap.count(detected_by_coverage(overlap, settings.overlap)).as_dict())
    if settings.instances:
        metrics.update(instance_metrics(overlap))
    for name in settings.profiles:
        profile = PROFILES[name]
        metrics.update({profile.column(k): v for k, v in profile.compute(reference, prediction, spacing).items()})
    return metrics


def _empty_label(n_voxels: int, spacing_xyz: tuple[float, ...], settings: EvaluationSettings, lesions: bool) -> dict:
    """Metrics of a label absent from both reference and prediction of a case (empty vs empty)."""
    empty = np.zeros((1, 1, n_voxels), dtype=bool)
    return label_metrics(empty, empty, (1.0, 1.0, float(np.prod(spacing_xyz))), settings, lesions)


def _stats(values: list[float]) -> dict[str, float | int]:
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    n = int(array.size)
    return {"mean": float(array.mean()) if n else math.nan, "sd": float(array.std(ddof=1)) if n > 1 else math.nan,
            "median": float(np.median(array)) if n else math.nan, "n": n}


def _foreground_mean(means: dict[str, dict[str, float]]) -> dict[str, float]:
    """nnU-Net's foreground_mean: per metric, the mean over labels of the per-label means (labels
    without the metric, e.g. without lesion metrics, left out; NaN label means too)."""
    names = list(dict.fromkeys(name for by_name in means.values() for name in by_name))
    result = {}
    for name in names:
        values = np.asarray([m[name] for m in means.values() if name in m], dtype=float)
        values = values[~np.isnan(values)]
        result[name] = float(values.mean()) if values.size else math.nan
    return result


def summarise(results: list[dict], settings: EvaluationSettings) -> tuple[pd.DataFrame, dict]:
    """Per-case table and summary from ``evaluate_case`` results (labels absent from a case are
    filled in as empty vs empty). Column and key names: documentation/reference/evaluation.md."""
    import pandas as pd
    labels = list(settings.labels) if settings.labels is not None else sorted(
        {label for r in results for label in r["metrics"]})
    lesion_labels = [lab for lab in labels if settings.lesion_labels is None or lab in settings.lesion_labels]
    rows, per_case = [], []
    for r in results:
        metrics = {lab: r["metrics"].get(lab)
                   or _empty_label(r["n_voxels"], r["spacing"], settings, lab in lesion_labels) for lab in labels}
        row = {"case": r["case"], "mDice": np.mean([metrics[lab]["Dice"] for lab in labels]) if labels else math.nan,
               "mIoU": np.mean([metrics[lab]["IoU"] for lab in labels]) if labels else math.nan}
        for label in labels:
            row.update({f"{name}_{label}": value for name, value in metrics[label].items()})
        rows.append(row)
        per_case.append({"case": r["case"], "reference_file": r["reference_file"],
                         "prediction_file": r["prediction_file"],
                         "metrics": {str(lab): metrics[lab] for lab in labels}})
    names = {str(lab): list(per_case[0]["metrics"][str(lab)]) if per_case else [] for lab in labels}
    table = pd.DataFrame(rows, columns=["case", "mDice", "mIoU"] + [f"{n}_{lab}" for lab in names for n in names[lab]])
    stats = {lab: {n: _stats([c["metrics"][lab][n] for c in per_case]) for n in names[lab]} for lab in names}
    summary = {"settings": {**{k: v for k, v in asdict(settings).items() if k != "label_names"},
                            "labels": labels, "lesion_labels": lesion_labels},
               "label_names": {str(lab): settings.label_names.get(lab, str(lab)) for lab in labels},
               "n_cases": len(results), "metric_per_case": per_case}
    for key in ("mean", "sd", "median", "n"):
        summary[key] = {lab: {n: s[key] for n, s in by_name.items()} for lab, by_name in stats.items()}
    summary["foreground_mean"] = _foreground_mean(summary["mean"])
    summary["mDice"] = _stats(table["mDice"].tolist())
    summary["mIoU"] = _stats(table["mIoU"].tolist())
    if "isbi2015" in settings.profiles:  # folder-level values of the challenge: volume correlation, score
        profile = PROFILES["isbi2015"]
        summary["isbi2015"] = {str(lab): isbi2015_summary([{k: c["metrics"][str(lab)][profile.column(k)]
                                                            for k in profile.metrics} for c in per_case])
                               for lab in lesion_labels}
    return table, plain_data(summary, nan_as_none=True)


def _run_cases(cases: list[tuple[str, Path, Path]], settings: EvaluationSettings, workers: int,
               progress: bool) -> list[dict]:
    from tqdm import tqdm
    bar = tqdm(total=len(cases), desc="evaluate", unit="case", disable=not progress)
    try:
        if workers <= 1 or len(cases) <= 1:
            results = []
            for case in cases:
                results.append(evaluate_case(*case, settings))
                bar.update()
            return results
        context = multiprocessing.get_context(START_METHOD)
        with ProcessPoolExecutor(max_workers=min(workers, len(cases)), mp_context=context,
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(evaluate_case, *case, settings): i for i, case in enumerate(cases)}
            results = [None] * len(cases)
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            return results
    finally:
        bar.close()


def evaluate_folders(reference_dir: str | os.PathLike, prediction_dir: str | os.PathLike,
                     output_dir: str | os.PathLike | None = None, settings: EvaluationSettings | None = None,
                     dataset_json: str | os.PathLike | None = None, workers: int = 1,
                     progress: bool = True) -> EvaluationResult:
    """Evaluate every reference case against its prediction.

    In: the two folders; ``output_dir`` (None: write nothing) receives ``evaluation_per_case.csv``
    and ``evaluation_summary.json`` atomically; ``dataset_json`` gives the labels, their names and
    the file ending (its labels override ``settings.labels``); ``workers`` processes.
    Out: EvaluationResult. Raises NnunetTransferError for missing predictions, unreadable files,
    geometry mismatches and unknown label values, naming the case.
    """
    settings = settings or EvaluationSettings()
    if output_dir is not None:  # before the (long) evaluation, not after it
        require_writable_folder(output_dir, "the output folder (-o)")
    endings = NIFTI_ENDINGS
    if dataset_json is not None:
        names, ending = labels_from_dataset_json(dataset_json)
        endings = (ending,)
        settings = EvaluationSettings(**{**asdict(settings), "labels": tuple(names), "label_names": names})
    if settings.lesion_labels and settings.labels is not None:
        unknown = sorted(set(settings.lesion_labels) - set(settings.labels))
        if unknown:
            raise NnunetTransferError(f"--lesion-labels {unknown} are not among the labels {list(settings.labels)}")
    cases, unmatched = find_cases(reference_dir, prediction_dir, endings)
    results = _run_cases(cases, settings, workers, progress)
    table, summary = summarise(results, settings)
    summary["reference_folder"], summary["prediction_folder"] = str(reference_dir), str(prediction_dir)
    summary["unmatched_predictions"] = unmatched
    result = EvaluationResult(table, summary, unmatched)
    if output_dir is not None:
        output_dir = Path(output_dir)
        result.files["per_case"] = write_csv_atomic(table, output_dir / PER_CASE_CSV)
        result.files["summary"] = write_json_atomic(summary, output_dir / SUMMARY_JSON)
    return result
