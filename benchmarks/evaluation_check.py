"""Check our metrics against the reference scorers on random lesion masks.

Nothing here is downloaded: the reference scorers are used where the user has them.

- ``--atlas-scoring PATH``: the ATLAS R2.0 scorer, ``isles/scoring.py`` of a clone of
  github.com/npnl/atlas2_grand_challenge. Its ``lesion_f1_score``, ``simple_lesion_count_difference``
  and ``volume_difference`` (batchwise, as the challenge called them) against our ``atlas2``
  profile. (Its ``dice_coef`` calls ``float`` on a 1x1 array, which numpy >= 2 refuses; the Dice is
  the textbook formula, checked by the unit tests.)
- ``--panoptica-python PATH``: a Python interpreter with panoptica installed (panoptica pins
  numpy < 2.3, so it usually lives in its own virtual environment). Its PQ, SQ, RQ and sq_dsc
  (cc3d components, ``NaiveThresholdMatching`` defaults) against ours at 26-connectivity.
- MONAI, when importable here: HD95, ASSD and NSD against ours (float32 on its side).

Prints the largest differences and the number of cases that differ; saves them to
benchmarks/results/evaluation_check.json. Exit status 1 when a check fails.
Run: python benchmarks/evaluation_check.py --atlas-scoring .../isles/scoring.py --panoptica-python .../bin/python
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402

PANOPTICA_SCRIPT = """
import json, sys, time
import numpy as np
from panoptica import (ConnectedComponentsInstanceApproximator, InputType, NaiveThresholdMatching,
                       Panoptica_Evaluator)
from panoptica.metrics import Metric
from panoptica.utils.citation_reminder import disable_citation_reminder
disable_citation_reminder()
evaluator = Panoptica_Evaluator(expected_input=InputType.SEMANTIC,
                                instance_approximator=ConnectedComponentsInstanceApproximator(),
                                instance_matcher=NaiveThresholdMatching(),
                                instance_metrics=[Metric.DSC, Metric.IOU], global_metrics=[Metric.DSC])
data = np.load(sys.argv[1])
out, seconds = [], []
for i in range(len(data.files) // 2):
    ref, pred = data[f"ref{i}"].astype(np.uint8), data[f"pred{i}"].astype(np.uint8)
    start = time.perf_counter()
    result = evaluator.evaluate(pred, ref, verbose=False)["ungrouped"]
    seconds.append(time.perf_counter() - start)
    out.append({k: float(getattr(result, k)) for k in ("pq", "sq", "rq", "sq_dsc", "tp", "fp", "fn")})
print(json.dumps({"results": out, "seconds": seconds}))
"""


def random_case(rng: np.random.Generator, shape=(24, 28, 26)) -> tuple[np.ndarray, np.ndarray]:
    """Blob-like reference lesions and a prediction that overlaps, splits, merges and misses them."""
    ref = ndimage.binary_opening(ndimage.gaussian_filter(rng.random(shape), 1.2) > 0.56)
    noise = ndimage.gaussian_filter(rng.random(shape), 1.0) > 0.57
    pred = (ndimage.binary_dilation(ref, iterations=int(rng.integers(0, 2))) & (rng.random(shape) > 0.15)) | noise
    if rng.random() < 0.3:
        pred = ndimage.binary_erosion(pred)
    return ref, pred


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_atlas(cases, path: Path) -> dict:
    from nnunet_transfer.evaluation.profiles import atlas2_metrics
    scoring = load_module(path, "atlas_scoring")
    worst, differing = 0.0, 0
    for ref, pred in cases:
        truth = ref.astype(np.float32)[None, None]
        prediction = pred.astype(np.float32)[None, None]
        theirs = {"lesionwise_F1": scoring.lesion_f1_score(truth, prediction, batchwise=True)[0],
                  "simple_lesion_count": scoring.simple_lesion_count_difference(truth, prediction, batchwise=True)[0],
                  "volume_difference": scoring.volume_difference(truth, prediction, batchwise=True)[0]}
        ours = atlas2_metrics(ref, pred, (1.0, 1.0, 1.0))
        gap = max(abs(float(theirs[k]) - ours[k]) for k in theirs)
        worst, differing = max(worst, gap), differing + (gap > 1e-9)
    return {"cases": len(cases), "max_abs_difference": worst, "cases_differing": differing}


def check_panoptica(cases, python: str) -> dict:
    from nnunet_transfer.evaluation.instances import instance_metrics
    from nnunet_transfer.evaluation.lesions import lesion_overlap
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {f"{side}{i}": mask for i, (ref, pred) in enumerate(cases)
                  for side, mask in (("ref", ref), ("pred", pred))}
        np.savez(Path(tmp) / "cases.npz", **arrays)
        (Path(tmp) / "run.py").write_text(PANOPTICA_SCRIPT)
        done = subprocess.run([python, str(Path(tmp) / "run.py"), str(Path(tmp) / "cases.npz")], check=True,
                              capture_output=True, text=True)
    theirs = json.loads(done.stdout.strip().splitlines()[-1])["results"]
    worst, differing, compared = 0.0, 0, 0
    for (ref, pred), other in zip(cases, theirs):
        ours = instance_metrics(lesion_overlap(ref, pred, 26))
        if ours["instance_TP"] + ours["instance_FP"] + ours["instance_FN"] == 0:
            continue  # both empty: 1 here, NaN in panoptica (documented)
        pairs = (("PQ", "pq"), ("SQ", "sq"), ("RQ", "rq"), ("lesion_Dice", "sq_dsc"), ("instance_TP", "tp"),
                 ("instance_FP", "fp"), ("instance_FN", "fn"))
        gap = max(abs(ours[a] - other[b]) for a, b in pairs)
        worst, differing, compared = max(worst, gap), differing + (gap > 1e-9), compared + 1
    return {"cases": compared, "max_abs_difference": worst, "cases_differing": differing}


def check_monai(cases) -> dict:
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice
    from nnunet_transfer.evaluation.boundary import boundary_metrics
    rng = np.random.default_rng(1)
    worst, compared = 0.0, 0
    for ref, pred in cases:
        if not ref.any() or not pred.any():
            continue
        spacing = tuple(float(s) for s in rng.uniform(0.5, 3.0, 3))
        ours = boundary_metrics(ref, pred, spacing, 2.0)
        p, r = (torch.from_numpy(m)[None, None].float() for m in (pred, ref))
        theirs = {"HD95": compute_hausdorff_distance(p, r, include_background=True, percentile=95, spacing=spacing),
                  "ASSD": compute_average_surface_distance(p, r, include_background=True, symmetric=True,
                                                           spacing=spacing),
                  "NSD": compute_surface_dice(p, r, [2.0], include_background=True, spacing=spacing)}
        worst = max(worst, max(abs(ours[k] - float(v)) / max(1.0, abs(ours[k])) for k, v in theirs.items()))
        compared += 1
    return {"cases": compared, "max_relative_difference": worst}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atlas-scoring", type=Path, help="isles/scoring.py of the ATLAS R2.0 challenge repository")
    parser.add_argument("--panoptica-python", help="a Python interpreter with panoptica installed")
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    cases = [random_case(rng) for _ in range(args.cases)]
    cases += [(np.zeros((8, 8, 8), bool), np.zeros((8, 8, 8), bool)),
              (np.zeros((8, 8, 8), bool), np.pad(np.ones((2, 2, 2), bool), 3)),
              (np.pad(np.ones((2, 2, 2), bool), 3), np.zeros((8, 8, 8), bool))]
    results, failed = {}, False
    if args.atlas_scoring:
        results["atlas2_vs_atlas_scorer"] = check_atlas(cases, args.atlas_scoring)
        failed |= results["atlas2_vs_atlas_scorer"]["cases_differing"] > 0
    if args.panoptica_python:
        results["instances_vs_panoptica"] = check_panoptica(cases, args.panoptica_python)
        failed |= results["instances_vs_panoptica"]["cases_differing"] > 0
    if importlib.util.find_spec("monai") is not None:
        results["boundary_vs_monai"] = check_monai(cases[:60])
        failed |= results["boundary_vs_monai"]["max_relative_difference"] > 1e-5
    for name, result in results.items():
        print(f"{name}: {result}")
    if not results:
        print("nothing to check against: give --atlas-scoring and / or --panoptica-python, or install monai")
    save_results("evaluation_check", results)
    if failed:
        raise SystemExit(1)
    return results


if __name__ == "__main__":
    main()
