"""Time the evaluation of one case on a 1 mm MNI-sized volume (197x233x189) with ~50 lesions.

Ours (``nnunet_transfer.evaluation``: cc3d components, overlap by ``np.bincount``) against a
straightforward scipy.ndimage implementation in the same run (``ndimage.label`` and one
full-volume mask per lesion, as the ATLAS R2.0 reference code loops). Both compute Dice, IoU,
volumes and the lesion counts (26-connectivity, any-voxel overlap); the script checks that the
lesion counts are identical and prints the time ratio. Also times a whole case from NIfTI files
(reading included) and a 4-case folder with ``--workers 2`` (spawned processes).
Run: python benchmarks/evaluation_time.py
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402

SHAPE = (189, 233, 197)  # numpy z, y, x of a 197x233x189 (x, y, z) 1 mm MNI volume
N_LESIONS = 50


def _ellipsoid(mask: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> None:
    lo = np.maximum(centre - radii - 1, 0).astype(int)
    hi = np.minimum(centre + radii + 2, SHAPE).astype(int)
    grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0
    mask[tuple(slice(a, b) for a, b in zip(lo, hi))] |= inside


def synthetic_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reference with ~50 ellipsoid lesions (1-8 mm radii) inside a brain-sized ellipsoid; a
    prediction that misses some, grows / shrinks / shifts others and adds false positives."""
    rng = np.random.default_rng(seed)
    centre, half = np.array(SHAPE) / 2, np.array(SHAPE) * 0.38
    reference, prediction = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    for _ in range(N_LESIONS):
        direction = rng.normal(size=3)
        c = centre + half * direction / np.linalg.norm(direction) * rng.uniform(0, 1) ** (1 / 3)
        radii = rng.uniform(1.0, 8.0, size=3)
        _ellipsoid(reference, c, radii)
        outcome = rng.uniform()
        if outcome < 0.85:  # detected, with an imperfect outline
            _ellipsoid(prediction, c + rng.normal(0, 1.0, 3), np.maximum(radii * rng.uniform(0.6, 1.3, 3), 0.8))
    for _ in range(10):  # false positives
        c = centre + half * rng.uniform(-0.8, 0.8, size=3)
        _ellipsoid(prediction, c, rng.uniform(1.0, 3.0, size=3))
    return reference.astype(np.uint8), prediction.astype(np.uint8)


def ours(reference: np.ndarray, prediction: np.ndarray, voxel_ml: float) -> dict:
    from nnunet_transfer.evaluation.lesions import match_lesions
    from nnunet_transfer.evaluation.metrics import voxel_counts, voxel_metrics
    ref, pred = reference == 1, prediction == 1
    metrics = voxel_metrics(voxel_counts(ref, pred), voxel_ml)
    metrics.update(match_lesions(ref, pred, connectivity=26).as_dict())
    return metrics


def scipy_loops(reference: np.ndarray, prediction: np.ndarray, voxel_ml: float) -> dict:
    """The straightforward way: scipy labels, then one full-volume comparison per lesion."""
    ref, pred = reference == 1, prediction == 1
    tp, fp, fn = np.sum(ref & pred), np.sum(~ref & pred), np.sum(ref & ~pred)
    structure = np.ones((3, 3, 3), bool)
    ref_labels, n_ref = ndimage.label(ref, structure)
    pred_labels, n_pred = ndimage.label(pred, structure)
    detected = sum(bool(np.any((ref_labels == i) & pred)) for i in range(1, n_ref + 1))
    false_positives = sum(not np.any((pred_labels == j) & ref) for j in range(1, n_pred + 1))
    return {"Dice": 2 * tp / (2 * tp + fp + fn), "IoU": tp / (tp + fp + fn),
            "abs_volume_difference_ml": abs(int(np.sum(pred)) - int(np.sum(ref))) * voxel_ml,
            "lesions_ref": n_ref, "lesions_pred": n_pred, "lesion_TP": detected, "lesion_FN": n_ref - detected,
            "lesion_FP": false_positives, "lesion_F1": detected / (detected + (false_positives + n_ref - detected) / 2)}


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _write_folders(root: Path, n_cases: int) -> tuple[Path, Path]:
    import SimpleITK as sitk
    for i in range(n_cases):
        for folder, array in zip(("labelsTs", "predicted"), synthetic_case(i)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.GetImageFromArray(array), str(root / folder / f"case_{i:03d}.nii.gz"))
    return root / "labelsTs", root / "predicted"


def main(repeats: int = 5) -> dict:
    from nnunet_transfer.evaluation.evaluate import EvaluationSettings, evaluate_case, evaluate_folders
    reference, prediction = synthetic_case(0)
    voxel_ml = 0.001
    a, b = ours(reference, prediction, voxel_ml), scipy_loops(reference, prediction, voxel_ml)
    counts = ("lesions_ref", "lesions_pred", "lesion_TP", "lesion_FN", "lesion_FP")
    identical = all(a[k] == b[k] for k in counts) and all(
        abs(a[k] - b[k]) < 1e-12 for k in ("Dice", "IoU", "abs_volume_difference_ml", "lesion_F1"))
    if not identical:
        raise SystemExit(f"results differ: ours {a}, scipy {b}")
    t_ours = _median_time(lambda: ours(reference, prediction, voxel_ml), repeats)
    t_scipy = _median_time(lambda: scipy_loops(reference, prediction, voxel_ml), max(1, repeats // 2))
    results = {"volume_xyz": list(SHAPE[::-1]), "lesion_counts": {k: int(a[k]) for k in counts},
               "identical_counts": identical, "ours_s_per_case": round(t_ours, 3),
               "scipy_loops_s_per_case": round(t_scipy, 3), "ratio_scipy_over_ours": round(t_scipy / t_ours, 1)}
    with tempfile.TemporaryDirectory(prefix="nnunet_transfer_eval_bench_") as tmp:
        ref_dir, pred_dir = _write_folders(Path(tmp), 4)
        settings = EvaluationSettings(labels=(1,))
        case = ("case_000", ref_dir / "case_000.nii.gz", pred_dir / "case_000.nii.gz")
        results["ours_with_nifti_reading_s_per_case"] = round(
            _median_time(lambda: evaluate_case(*case, settings), repeats), 3)
        for workers in (1, 2):
            start = time.perf_counter()
            evaluate_folders(ref_dir, pred_dir, settings=settings, workers=workers, progress=False)
            results[f"folder_4_cases_workers_{workers}_s"] = round(time.perf_counter() - start, 2)
    print(f"ours {t_ours:.3f} s/case, scipy loops {t_scipy:.3f} s/case: {t_scipy / t_ours:.1f}x faster; "
          f"identical lesion counts: {identical}")
    save_results("evaluation_time", results)
    return results


if __name__ == "__main__":
    main()
