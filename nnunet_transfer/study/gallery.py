"""Per target, a gallery of segmentations: the best, median and worst test cases of the scratch baseline.

For each target the cases are ranked by scratch's primary metric (mean over its seeds and folds,
at the target's largest training size); the best, the median and the worst are shown. Per case one
slice through the largest reference structure (the largest connected component of the reference
foreground; for lesion targets the largest lesion), as panels: the image, the reference, and each
arm's prediction (its first seed and fold) over the reference's outline, with the arm's metrics
under the panel. On lesion targets missed reference lesions and false-positive predicted lesions
(:mod:`nnunet_transfer.evaluation.lesions`, with the target's evaluation settings) are ringed.

Files are read with the evaluation's own readers (:func:`read_segmentation`, the checks of
:mod:`nnunet_transfer.nifti`). 3D volumes are shown in the **radiological convention**: each volume
is turned to LPS index order (the nearest axes of its direction matrix), so an axial slice has the
patient's right on the left of the panel and anterior at the top. 2D images (a 2D file, or one
slice deep) are shown as stored. Intensities are windowed between the 1st and 99th percentile of
the image's foreground. Panels are PNG bytes (matplotlib), embedded by :mod:`report_html`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.evaluation.evaluate import read_segmentation
from nnunet_transfer.evaluation.lesions import label_lesions, min_size_in_voxels
from nnunet_transfer.io import read_json
from nnunet_transfer.layout import DATASET_JSON, raw_dir
from nnunet_transfer.names import SCRATCH
from nnunet_transfer.nifti import FileProblem, check_complete
from nnunet_transfer.study.architectures import architecture_label
from nnunet_transfer.study.evaluation import evaluation_settings
from nnunet_transfer.study.grid import Run, row_label, runs
from nnunet_transfer.study.paths import dataset_name, prediction_folder, run_folder
from nnunet_transfer.study.spec import Study, Target
from nnunet_transfer.study.table import ALL, ARCHITECTURE_COLUMN, SIZE_COLUMN, arms, sizes_of

ORIENTATION = ("Radiological convention: axial slices seen from the feet, the patient's right (R) on the left of "
               "each panel, anterior at the top; 2D images as stored.")
PANEL_PIXELS = 168  # the longer side of a panel, in pixels
FILL_ALPHA = 0.45
# label colours (fill), reference outline, and the rings of missed / false-positive lesions
CLASS_COLOURS = ("#e41a1c", "#377eb8", "#4daf4a", "#ff7f00", "#984ea3", "#a65628", "#f781bf", "#999999")
REFERENCE_OUTLINE = "#ffe000"
MISSED_RING = "#00e5ff"
FALSE_POSITIVE_RING = "#ff00ff"
# the figures' colours: matplotlib's default cycle, as CSS hex (another module may have set it as RGB tuples)
ARM_COLOURS = tuple(matplotlib.colors.to_hex(c)
                    for c in matplotlib.rcParamsDefault["axes.prop_cycle"].by_key()["color"])
RANKS = ("best", "median", "worst")


@dataclass(frozen=True)
class Panel:
    """One picture of a case: ``title`` (the arm, ``image`` or ``reference``), PNG bytes (None when
    the file is missing: ``lines`` say why), ``alt`` text, ``lines`` under it, the arm's colour."""

    title: str
    png: bytes | None
    alt: str
    lines: tuple[str, ...] = ()
    colour: str | None = None


@dataclass(frozen=True)
class GalleryCase:
    rank: str  # best | median | worst
    case: str
    value: float  # scratch's primary metric
    where: str  # which slice
    panels: tuple[Panel, ...]
    two_d: bool


@dataclass
class Gallery:
    """A target's gallery: the cases, and how they were chosen (``note``)."""

    target: str
    note: str
    cases: list[GalleryCase] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)


def arm_colours(per_case: pd.DataFrame) -> dict[tuple[str, str], str]:
    """A fixed colour per (architecture, initialisation): matplotlib's default cycle in the table's
    order, scratch included, as in ``comparison.png`` and ``data_efficiency.png``."""
    return {arm: ARM_COLOURS[i % len(ARM_COLOURS)] for i, arm in enumerate(arms(per_case))}


def choose_cases(per_case: pd.DataFrame, target: Target) -> tuple[str, list[tuple[str, str, float]]]:
    """The training size shown (the largest) and the (rank, case, scratch value) of the best, median
    and worst test case by scratch's primary metric (mean over seeds and folds; scratch of the first
    architecture). Fewer than three cases give fewer ranks; ties are broken by case id."""
    part = per_case[per_case["target"] == target.label]
    if not len(part):
        return "", []
    size = sizes_of(part)[-1]
    first_arch = part[ARCHITECTURE_COLUMN].iloc[0]
    scratch = part[(part[SIZE_COLUMN] == size) & (part["initialisation"] == SCRATCH)
                   & (part[ARCHITECTURE_COLUMN] == first_arch)]
    metric = target.table_metrics[0]
    values = scratch.groupby("case")[metric.column].mean().dropna()
    if not len(values):
        return size, []
    order = sorted(values.items(), key=lambda cv: (cv[1] if metric.lower_is_better else -cv[1], cv[0]))
    picks = {"best": 0, "median": (len(order) - 1) // 2, "worst": len(order) - 1}
    chosen, seen = [], set()
    for rank in RANKS:
        case, value = order[picks[rank]]
        if case not in seen:
            seen.add(case)
            chosen.append((rank, case, float(value)))
    return size, chosen


# ---------------------------------------------------------------------------- reading and orienting

def to_lps(array: np.ndarray, direction: tuple[float, ...], spacing: tuple[float, ...]) \
        -> tuple[np.ndarray, tuple[float, ...]]:
    """A (z, y, x) array of a 3D image with ITK ``direction`` (row-major 3x3) and ``spacing`` (x, y, z)
    turned so that its index axes run toward patient Left, Posterior, Superior (the nearest axes of
    the direction): returns the array (numpy axes S, P, L) and its spacing in numpy order."""
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    physical = [int(np.argmax(np.abs(matrix[:, a]))) for a in range(3)]  # index axis a runs along physical axis
    if sorted(physical) != [0, 1, 2]:
        physical = [0, 1, 2]  # an oblique volume with no clear nearest axes: shown in its index order
    order = [0, 0, 0]
    for a, p in enumerate(physical):
        order[2 - p] = 2 - a
    out = np.transpose(array, order)
    for a, p in enumerate(physical):
        if matrix[p, a] < 0:
            out = np.flip(out, axis=2 - p)
    spacing_numpy = [0.0, 0.0, 0.0]
    for a, p in enumerate(physical):
        spacing_numpy[2 - p] = float(spacing[a])
    return out, tuple(spacing_numpy)


def _nifti(path: Path) -> bool:
    return path.name.endswith((".nii.gz", ".nii"))


def read_image(path: Path) -> tuple[np.ndarray, dict]:
    """An image as float32 (numpy order; the mean of its components, e.g. RGB) and its geometry; a
    NIfTI file is checked as the evaluation checks it (complete, readable)."""
    try:
        if _nifti(path):
            check_complete(path)
        image = sitk.ReadImage(str(path))
    except (FileProblem, RuntimeError) as e:
        raise NnunetTransferError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    if image.GetNumberOfComponentsPerPixel() > 1:
        array = array.mean(axis=-1)
    return array, {"spacing": image.GetSpacing(), "direction": image.GetDirection()}


def read_labels(path: Path) -> np.ndarray:
    """A label map (numpy order) through the evaluation's reader (NIfTI), or SimpleITK (other formats)."""
    if _nifti(path):
        return read_segmentation(path)[0]
    try:
        return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.int32)
    except RuntimeError as e:
        raise NnunetTransferError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None


def display_volume(array: np.ndarray, geometry: dict) -> tuple[np.ndarray, tuple[float, float], bool]:
    """The array to slice (3D: numpy axes S, P, L; 2D: one slice as stored), the in-slice spacing
    (rows, columns) and whether it is 2D."""
    if array.ndim == 2 or (array.ndim == 3 and array.shape[0] == 1):
        plane = array.reshape(array.shape[-2:])
        spacing = geometry["spacing"]
        return plane[None], (float(spacing[1]), float(spacing[0])), True
    volume, spacing = to_lps(array, geometry["direction"], geometry["spacing"])
    return volume, (spacing[1], spacing[2]), False


def window(image: np.ndarray) -> tuple[float, float]:
    """1st and 99th percentile of the foreground (voxels above the minimum when the background is a
    large constant), else of every voxel."""
    finite = image[np.isfinite(image)]
    if not finite.size:
        return 0.0, 1.0
    above = finite[finite > finite.min()]
    sample = above if above.size > 0.05 * finite.size else finite
    low, high = np.percentile(sample, [1, 99])
    return float(low), float(high if high > low else low + 1)


def slice_index(reference: np.ndarray, image: np.ndarray) -> tuple[int, str]:
    """The axial slice (numpy axis 0) with most voxels of the largest reference component; without a
    reference, the middle of the image's foreground."""
    if reference.any():
        labels, n = label_lesions(reference > 0, connectivity=26)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        sizes[0] = 0
        largest = int(np.argmax(sizes))
        per_slice = (labels == largest).reshape(labels.shape[0], -1).sum(axis=1)
        return int(np.argmax(per_slice)), f"through the largest reference structure ({int(sizes[largest])} voxels)"
    rows = np.flatnonzero((image > image.min()).reshape(image.shape[0], -1).any(axis=1))
    return (int(rows[len(rows) // 2]) if rows.size else image.shape[0] // 2), "empty reference: the middle slice"


# ---------------------------------------------------------------------------- drawing

def _rgb(colour: str) -> np.ndarray:
    return np.array(matplotlib.colors.to_rgb(colour), dtype=np.float32)


def _scale(spacing: tuple[float, float], shape: tuple[int, int]) -> tuple[int, int]:
    """Integer upsampling per axis: square mm on screen, the longer side near PANEL_PIXELS."""
    smallest = min(spacing)
    extent = max(shape[0] * spacing[0] / smallest, shape[1] * spacing[1] / smallest)
    k = max(1.0, PANEL_PIXELS / extent)
    return max(1, round(k * spacing[0] / smallest)), max(1, round(k * spacing[1] / smallest))


def _outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def render(image: np.ndarray, spacing: tuple[float, float], limits: tuple[float, float],
           fill: np.ndarray | None = None, outline: np.ndarray | None = None,
           rings: tuple[tuple[np.ndarray, str], ...] = ()) -> bytes:
    """One panel as PNG bytes: the windowed 2D ``image``, label map ``fill`` (translucent, a colour per
    label), the label boundaries of ``outline`` (the reference) and, per (label map, colour) of
    ``rings``, a ring around each of its ids."""
    fr, fc = _scale(spacing, image.shape)

    def up(a: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(a, fr, axis=0), fc, axis=1)

    grey = np.clip((image - limits[0]) / (limits[1] - limits[0]), 0, 1)
    rgb = np.repeat(up(grey)[..., None], 3, axis=2).astype(np.float32)
    if fill is not None:
        big = up(fill)
        for label in np.unique(big[big > 0]):
            where = big == label
            colour = _rgb(CLASS_COLOURS[(int(label) - 1) % len(CLASS_COLOURS)])
            rgb[where] = (1 - FILL_ALPHA) * rgb[where] + FILL_ALPHA * colour
    if outline is not None:
        big = up(outline)
        edges = np.zeros(big.shape, dtype=bool)
        for label in np.unique(big[big > 0]):
            edges |= _outline(big == label)
        rgb[edges] = _rgb(REFERENCE_OUTLINE)
    rr, cc = np.ogrid[:rgb.shape[0], :rgb.shape[1]]
    for label_map, colour in rings:  # one ring around each lesion of the label map
        big = up(label_map)
        for i in np.unique(big[big > 0]):
            rows, cols = np.nonzero(big == i)
            centre = ((rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2)
            radius = max(rows.max() - rows.min(), cols.max() - cols.min()) / 2 + 4
            distance = np.hypot(rr - centre[0], cc - centre[1])
            rgb[(distance >= radius) & (distance < radius + 2)] = _rgb(colour)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, (rgb * 255).astype(np.uint8), format="png")
    return buffer.getvalue()


def lesion_errors(reference: np.ndarray, prediction: np.ndarray, target: Target, voxel_ml: float) \
        -> tuple[np.ndarray, np.ndarray]:
    """The missed reference lesions and the false-positive predicted lesions as label maps (one id per
    lesion, 0 elsewhere), by the evaluation's rule: components per label with the target's
    connectivity, overlap and minimum size; a predicted lesion is a false positive when it overlaps
    no detected reference lesion."""
    settings = evaluation_settings(target)
    minimum = min_size_in_voxels(settings.min_lesion_volume_ml, voxel_ml)
    missed, false_positive = np.zeros(reference.shape, np.int32), np.zeros(reference.shape, np.int32)
    for label in sorted((set(np.unique(reference)) | set(np.unique(prediction))) - {0}):
        ref, n_ref = label_lesions(reference == label, settings.connectivity, minimum)
        pred, n_pred = label_lesions(prediction == label, settings.connectivity, minimum)
        ref, pred = ref.reshape(reference.shape), pred.reshape(reference.shape)
        sizes = np.bincount(ref.ravel(), minlength=n_ref + 1)
        covered = np.bincount(ref[pred > 0], minlength=n_ref + 1)
        detected = (covered > 0) & (covered / np.maximum(sizes, 1) >= settings.overlap)
        detected[0] = False
        for ids, out, lesions in ((np.flatnonzero(~detected)[1:], missed, ref),
                                  (np.setdiff1d(np.arange(1, n_pred + 1), pred[(pred > 0) & detected[ref]]),
                                   false_positive, pred)):
            remap = np.zeros(int(lesions.max()) + 1, np.int32)
            remap[ids] = int(out.max()) + 1 + np.arange(len(ids), dtype=np.int32)
            ids_here = remap[lesions]
            np.copyto(out, ids_here, where=ids_here > 0)
    return missed, false_positive


def count_ids(label_map: np.ndarray) -> int:
    return int(np.unique(label_map[label_map > 0]).size)


# ---------------------------------------------------------------------------- the gallery

def _files(target: Target, run: Run, study: Study, case: str) -> tuple[Path, Path, Path]:
    """(image, reference, prediction) of a case of a run."""
    raw = raw_dir(dataset_name(target.dataset))
    ending = read_json(raw / DATASET_JSON).get("file_ending", ".nii.gz")
    if target.evaluate_on == "validation":
        return (raw / "imagesTr" / f"{case}_0000{ending}", raw / "labelsTr" / f"{case}{ending}",
                run_folder(study, run) / "validation" / f"{case}{ending}")
    return (raw / "imagesTs" / f"{case}_0000{ending}", raw / "labelsTs" / f"{case}{ending}",
            prediction_folder(study, run) / f"{case}{ending}")


def _metric_lines(row: pd.DataFrame, target: Target) -> list[str]:
    if not len(row):
        return ["not evaluated"]
    values = [f"{m.name} {float(row[m.column].iloc[0]):.3f}" for m in target.table_metrics if m.column in row]
    return [" · ".join(values)] if values else []


def target_gallery(study: Study, per_case: pd.DataFrame, target: Target) -> Gallery:
    """The gallery of one target (see the module docstring); a case whose files are missing gets
    panels that say so."""
    size, chosen = choose_cases(per_case, target)
    metric = target.table_metrics[0]
    seed, fold = study.seeds[0], str(study.folds[0])
    size_text = "every training case" if size == ALL else f"{size} training patients"
    note = (f"Cases ranked by scratch's {metric.name} ({'lower' if metric.lower_is_better else 'higher'} is better; "
            f"mean over seeds and folds) at {size_text}; each arm's prediction of seed {seed}, fold {fold}.")
    gallery = Gallery(target.label, note)
    if not chosen:
        gallery.note = "No evaluated scratch run of this target: no case to show."
        return gallery
    shown = [r for r in runs(study) if r.target == target and (ALL if r.size is None else str(r.size)) == size
             and r.seed == seed and str(r.fold) == fold]
    colours = arm_colours(per_case)
    part = per_case[(per_case["target"] == target.label) & (per_case[SIZE_COLUMN] == size)
                    & (per_case["seed"] == seed) & (per_case["fold"] == fold)]
    for rank, case, value in chosen:
        gallery.cases.append(_case(study, target, shown, part, colours, rank, case, value, gallery))
    return gallery


def _case(study, target, shown, part, colours, rank, case, value, gallery) -> GalleryCase:
    image_file, reference_file, _ = _files(target, shown[0], study, case)
    image, geometry = read_image(image_file)
    reference = read_labels(reference_file)
    volume, spacing, two_d = display_volume(image, geometry)
    ref_volume, _, _ = display_volume(reference, geometry)
    if not gallery.labels:
        names = read_json(reference_file.parent.parent / DATASET_JSON).get("labels", {})
        gallery.labels = {int(v): k for k, v in names.items() if isinstance(v, int) and v}
    k, where = slice_index(ref_volume, volume)
    where = "2D image" if two_d else f"axial slice {k + 1} of {volume.shape[0]}, {where}"
    limits, ref_slice = window(volume), ref_volume[k]
    what = f"{target.label}, case {case} ({rank} by scratch's {target.table_metrics[0].name} {value:.3f})"
    panels = [Panel("image", render(volume[k], spacing, limits), f"{what}: the image, {where}"),
              Panel("reference", render(volume[k], spacing, limits, fill=ref_slice, outline=ref_slice),
                    f"{what}: the reference segmentation, filled and outlined")]
    voxel_ml = float(np.prod(geometry["spacing"])) / 1000.0
    for run in shown:
        arm = (architecture_label(study, run.arch), row_label(study, run))
        label = arm[1] if len({a for a, _ in colours}) == 1 else f"{arm[1]} ({arm[0]})"
        row = part[(part[ARCHITECTURE_COLUMN] == arm[0]) & (part["initialisation"] == arm[1]) & (part["case"] == case)]
        prediction_file = _files(target, run, study, case)[2]
        if not prediction_file.is_file():
            panels.append(Panel(label, None, f"{what}: no prediction of {label}",
                                (f"no prediction: {prediction_file.name} missing (the run failed or was not run)",),
                                colours.get(arm)))
            continue
        prediction = read_labels(prediction_file)
        pred_volume, _, _ = display_volume(prediction, geometry)
        rings, lines = (), _metric_lines(row, target)
        if target.lesions:
            missed, false_positive = lesion_errors(ref_volume, pred_volume, target, voxel_ml)
            rings = ((missed[k], MISSED_RING), (false_positive[k], FALSE_POSITIVE_RING))
            lines.append(f"missed {count_ids(missed)} ({count_ids(missed[k])} here) · "
                         f"FP {count_ids(false_positive)} ({count_ids(false_positive[k])} here)")
        panels.append(Panel(label, render(volume[k], spacing, limits, fill=pred_volume[k], outline=ref_slice,
                                          rings=rings),
                            f"{what}: prediction of {label} (filled) over the reference outline", tuple(lines),
                            colours.get(arm)))
    return GalleryCase(rank, case, value, where, tuple(panels), two_d)


def galleries(study: Study, per_case: pd.DataFrame) -> list[Gallery]:
    """One gallery per target, in the study's order; a target whose files cannot be read gets a
    gallery that says why (the report is still written)."""
    out = []
    for target in study.targets:
        try:
            out.append(target_gallery(study, per_case, target))
        except (NnunetTransferError, OSError, ValueError) as e:
            out.append(Gallery(target.label, f"The gallery could not be drawn: {str(e).splitlines()[0]}"))
    return out

