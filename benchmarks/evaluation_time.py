"""Time every metric of one 1 mm MNI-sized case (197x233x189, ~50 reference and ~50 predicted lesions)
against the reference implementations our metrics are checked against, in the same run.

- Lesion matching and the ``atlas2`` profile against the ATLAS R2.0 scorer (``--atlas-scoring
  PATH`` to its ``isles/scoring.py``: ``lesion_f1_score``, ``simple_lesion_count_difference``,
  ``volume_difference``, batchwise as the challenge ran them); without it, against a
  straightforward stand-in written here with the scorer's algorithm (``scipy.ndimage.label``,
  6-connectivity, one full-volume mask per lesion). Both must give our numbers; the script stops
  if they do not.
- NSD, HD95 and ASSD against MONAI's ``compute_surface_dice`` / ``compute_hausdorff_distance`` /
  ``compute_average_surface_distance`` (when MONAI is installed).
- PQ / SQ / RQ / lesion-wise Dice against panoptica (``--panoptica-python`` to an interpreter that
  has it; timed inside that process).
- All of ours at once (voxel, boundary, lesion, instance and the three profiles; ISBI 2015 and
  MSSEG-2016 have no runnable reference scorer here), one whole case from NIfTI files, and a
  4-case folder with ``--workers 1`` and ``2``.

Run: python benchmarks/evaluation_time.py [--atlas-scoring PATH] [--panoptica-python PATH]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
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
    """Our voxel metrics and lesion matching (this project's definition, 26-connectivity)."""
    from nnunet_transfer.evaluation.lesions import match_lesions
    from nnunet_transfer.evaluation.metrics import voxel_counts, voxel_metrics
    ref, pred = reference == 1, prediction == 1
    metrics = voxel_metrics(voxel_counts(ref, pred), voxel_ml)
    metrics.update(match_lesions(ref, pred, connectivity=26).as_dict())
    return metrics


def atlas_stand_in(reference: np.ndarray, prediction: np.ndarray) -> dict:
    """The ATLAS R2.0 scorer's algorithm written out (scipy's default 6-connectivity, one
    full-volume comparison per lesion), for runs without the scorer itself."""
    ref, pred = reference == 1, prediction == 1
    ref_labels, n_ref = ndimage.label(ref)
    pred_labels, n_pred = ndimage.label(pred)
    tp = sum(bool(np.any((ref_labels == i) & pred)) for i in range(1, n_ref + 1))
    fp = sum(not np.any((pred_labels == j) & ref) for j in range(1, n_pred + 1))
    denominator = tp + (fp + n_ref - tp) / 2
    return {"lesionwise_F1": 1.0 if denominator == 0 else tp / denominator,
            "simple_lesion_count": float(abs(n_pred - n_ref)),
            "volume_difference": float(abs(int(pred.sum()) - int(ref.sum())))}


def atlas_scorer(path: Path):
    """The ATLAS scorer's three lesion / volume metrics on one case, as a function of the masks."""
    spec = importlib.util.spec_from_file_location("atlas_scoring", path)
    scoring = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scoring)

    def run(reference: np.ndarray, prediction: np.ndarray) -> dict:
        truth = (reference == 1).astype(np.float32)[None, None]
        pred = (prediction == 1).astype(np.float32)[None, None]
        return {"lesionwise_F1": float(scoring.lesion_f1_score(truth, pred, batchwise=True)[0]),
                "simple_lesion_count": float(scoring.simple_lesion_count_difference(truth, pred, batchwise=True)[0]),
                "volume_difference": float(scoring.volume_difference(truth, pred, batchwise=True)[0])}
    return run


def monai_boundary(reference: np.ndarray, prediction: np.ndarray, spacing, tolerance: float) -> dict:
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice
    p, r = (torch.from_numpy(m == 1)[None, None].float() for m in (prediction, reference))
    return {"HD95": float(compute_hausdorff_distance(p, r, include_background=True, percentile=95, spacing=spacing)),
            "ASSD": float(compute_average_surface_distance(p, r, include_background=True, symmetric=True,
                                                           spacing=spacing)),
            "NSD": float(compute_surface_dice(p, r, [tolerance], include_background=True, spacing=spacing))}


def panoptica_time(reference: np.ndarray, prediction: np.ndarray, python: str, repeats: int) -> tuple[float, dict]:
    """Median seconds of panoptica's evaluate on the case, inside an interpreter that has it, and its result."""
    from evaluation_check import PANOPTICA_SCRIPT
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "cases.npz", **{f"{side}{i}": mask for i in range(repeats)
                                              for side, mask in (("ref", reference), ("pred", prediction))})
        (Path(tmp) / "run.py").write_text(PANOPTICA_SCRIPT)
        done = subprocess.run([python, str(Path(tmp) / "run.py"), str(Path(tmp) / "cases.npz")], check=True,
                              capture_output=True, text=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(out["seconds"]), out["results"][0]


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


def _same(ours: dict, theirs: dict, what: str, tolerance: float = 1e-9) -> None:
    gaps = {k: abs(ours[k] - theirs[k]) for k in theirs}
    if max(gaps.values()) > tolerance * max(1.0, *(abs(v) for v in theirs.values())):
        raise SystemExit(f"{what}: results differ: ours {ours}, theirs {theirs}")


def main(argv: list[str] | None = None) -> dict:
    from nnunet_transfer.evaluation.boundary import boundary_metrics
    from nnunet_transfer.evaluation.evaluate import EvaluationSettings, evaluate_case, evaluate_folders, label_metrics
    from nnunet_transfer.evaluation.instances import instance_metrics
    from nnunet_transfer.evaluation.lesions import lesion_overlap, match_lesions
    from nnunet_transfer.evaluation.profiles import PROFILES, atlas2_metrics
    parser = argparse.ArgumentParser(description="time every metric against the reference implementations")
    parser.add_argument("--atlas-scoring", type=Path, help="isles/scoring.py of the ATLAS R2.0 challenge repository")
    parser.add_argument("--panoptica-python", help="a Python interpreter with panoptica installed")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    repeats = args.repeats
    reference, prediction = synthetic_case(0)
    ref, pred = reference == 1, prediction == 1
    spacing, tolerance = (1.0, 1.0, 1.0), 2.0
    results = {"volume_xyz": list(SHAPE[::-1])}
    counts = ours(reference, prediction, 0.001)
    results["lesions"] = {k: int(counts[k]) for k in ("lesions_ref", "lesions_pred", "lesion_TP", "lesion_FP")}

    # lesion matching and the atlas2 profile against the ATLAS scorer (or its stand-in)
    reference_name = "atlas_scorer" if args.atlas_scoring else "atlas_stand_in"
    scorer = atlas_scorer(args.atlas_scoring) if args.atlas_scoring else atlas_stand_in
    mine = atlas2_metrics(ref, pred, spacing)
    _same(mine, scorer(reference, prediction), reference_name)
    t_scorer = _median_time(lambda: scorer(reference, prediction), max(1, repeats // 2))
    t_atlas2 = _median_time(lambda: atlas2_metrics(ref, pred, spacing), repeats)
    t_matching = _median_time(lambda: ours(reference, prediction, 0.001), repeats)
    t_match_only = _median_time(lambda: match_lesions(ref, pred, connectivity=26), repeats)
    results["lesion_matching"] = {"reference": reference_name, "reference_s": round(t_scorer, 3),
                                  "ours_atlas2_profile_s": round(t_atlas2, 4),
                                  "ours_default_matching_s": round(t_match_only, 4),
                                  "ours_default_matching_with_voxel_metrics_s": round(t_matching, 4),
                                  "ratio_reference_over_atlas2": round(t_scorer / t_atlas2, 1),
                                  "ratio_reference_over_default_matching": round(t_scorer / t_match_only, 1)}
    reference_total, ours_total = t_scorer, t_atlas2

    t_boundary = _median_time(lambda: boundary_metrics(ref, pred, spacing, tolerance), repeats)
    results["boundary"] = {"ours_s": round(t_boundary, 4)}
    if importlib.util.find_spec("monai") is not None:
        _same(boundary_metrics(ref, pred, spacing, tolerance), monai_boundary(reference, prediction, spacing,
                                                                               tolerance), "MONAI", 1e-5)
        t_monai = _median_time(lambda: monai_boundary(reference, prediction, spacing, tolerance), repeats)
        results["boundary"].update(reference="MONAI", reference_s=round(t_monai, 4),
                                   ratio_reference_over_ours=round(t_monai / t_boundary, 1))
        reference_total, ours_total = reference_total + t_monai, ours_total + t_boundary

    t_instances = _median_time(lambda: instance_metrics(lesion_overlap(ref, pred, 26)), repeats)
    results["instances"] = {"ours_s": round(t_instances, 4)}
    if args.panoptica_python:
        t_panoptica, theirs = panoptica_time(reference, prediction, args.panoptica_python, repeats)
        mine = instance_metrics(lesion_overlap(ref, pred, 26))
        _same({"pq": mine["PQ"], "sq": mine["SQ"], "rq": mine["RQ"], "sq_dsc": mine["lesion_Dice"]},
              {k: theirs[k] for k in ("pq", "sq", "rq", "sq_dsc")}, "panoptica")
        results["instances"].update(reference="panoptica", reference_s=round(t_panoptica, 4),
                                    ratio_reference_over_ours=round(t_panoptica / t_instances, 1))
        reference_total, ours_total = reference_total + t_panoptica, ours_total + t_instances

    everything = EvaluationSettings(labels=(1,), profiles=tuple(PROFILES))
    t_all = _median_time(lambda: label_metrics(ref, pred, spacing, everything, True), repeats)
    results["all_metrics_of_one_label_s"] = round(t_all, 3)
    results["reference_implementations_s"] = round(reference_total, 3)
    results["ratio_references_over_ours_for_what_both_compute"] = round(reference_total / ours_total, 1)
    with tempfile.TemporaryDirectory(prefix="nnunet_transfer_eval_bench_") as tmp:
        ref_dir, pred_dir = _write_folders(Path(tmp), 4)
        case = ("case_000", ref_dir / "case_000.nii.gz", pred_dir / "case_000.nii.gz")
        results["all_metrics_with_nifti_reading_s_per_case"] = round(
            _median_time(lambda: evaluate_case(*case, everything), repeats), 3)
        for workers in (1, 2):
            start = time.perf_counter()
            evaluate_folders(ref_dir, pred_dir, settings=everything, workers=workers, progress=False)
            results[f"folder_4_cases_workers_{workers}_s"] = round(time.perf_counter() - start, 2)
    print(json.dumps(results, indent=2))
    save_results("evaluation_time", results)
    return results


if __name__ == "__main__":
    main()
