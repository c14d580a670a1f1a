"""The ``nnunet_transfer evaluate`` sub-command: ``add_parser(subparsers)`` and its handler."""
from __future__ import annotations

import argparse
import os
import sys

from nnunet_transfer.evaluation.lesions import CONNECTIVITIES
from nnunet_transfer.evaluation.profiles import PROFILES
from nnunet_transfer.names import NSD_TOLERANCE_MM

SHOWN = ("Dice", "IoU", "NSD", "HD95", "abs_volume_difference_ml", "lesion_TPR", "lesion_precision", "lesion_F1", "PQ")


def _lesion_labels(values: list[str] | None) -> tuple[int, ...] | None:
    if values is None:
        return None
    if values == ["none"]:
        return ()
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        from nnunet_transfer.errors import NnunetTransferError
        raise NnunetTransferError(f"--lesion-labels takes label values or 'none', got {' '.join(values)}") from None


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Run ``evaluate_folders`` with the parsed options and print the summary and file paths."""
    from nnunet_transfer.evaluation.evaluate import EvaluationSettings, evaluate_folders
    settings = EvaluationSettings(lesion_labels=_lesion_labels(args.lesion_labels), connectivity=args.connectivity,
                                  overlap=args.overlap, min_lesion_volume_ml=args.min_lesion_volume,
                                  profiles=tuple(dict.fromkeys(args.profile or ())), boundary=not args.no_boundary,
                                  instances=not args.no_instances, nsd_tolerance_mm=args.nsd_tolerance,
                                  geometry_tolerance=args.geometry_tolerance)
    result = evaluate_folders(args.reference, args.prediction, args.output or args.prediction, settings,
                              dataset_json=args.dataset_json, workers=args.workers, progress=True)
    if result.unmatched_predictions:
        print(f"warning: {len(result.unmatched_predictions)} prediction(s) without a reference, not evaluated: "
              + ", ".join(result.unmatched_predictions), file=sys.stderr)
    summary = result.summary
    print(f"{summary['n_cases']} cases; mDice {_number(summary['mDice']['mean'])}, "
          f"mIoU {_number(summary['mIoU']['mean'])}")
    for label, means in summary["mean"].items():
        shown = [k for k in SHOWN if k in means]
        shown += [PROFILES[p].column(PROFILES[p].primary) for p in settings.profiles
                  if PROFILES[p].column(PROFILES[p].primary) in means]
        print(f"  label {label} ({summary['label_names'][label]}): "
              + ", ".join(f"{k} {_number(means[k])}" for k in shown))
    for name, path in result.files.items():
        print(f"{name}: {path}")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to an argparse sub-parsers object; returns its parser."""
    p = subparsers.add_parser(
        "evaluate", help="voxel, boundary, lesion-wise and instance metrics of a prediction folder, and challenge "
                         "profiles (" + ", ".join(PROFILES) + ")",
        description="Evaluate predictions (e.g. an nnUNetv2_predict output folder) against reference "
                    "segmentations matched by case id; writes evaluation_per_case.csv and evaluation_summary.json. "
                    "Every label: Dice, IoU, volumes, NSD, HD95, ASSD. Lesion labels: lesion_* detection metrics "
                    "(this project's definition, set by --connectivity / --overlap / --min-lesion-volume), PQ, SQ, "
                    "RQ, lesion_Dice, and with --profile the metrics of a challenge as its scorer computes them: "
                    + "; ".join(f"{p.name}: {', '.join(p.metrics + p.summary_metrics)}" for p in PROFILES.values())
                    + ". Definitions: documentation/reference/evaluation.md.")
    p.add_argument("reference", metavar="REF_DIR", help="reference segmentations, <case>.nii.gz (e.g. labelsTs)")
    p.add_argument("prediction", metavar="PRED_DIR", help="predicted segmentations, <case>.nii.gz; other files "
                                                          "(dataset.json, plans.json, ...) are ignored")
    p.add_argument("-o", "--output", help="folder for the CSV and JSON (default PRED_DIR)")
    p.add_argument("-dj", "--dataset-json", help="dataset.json giving the labels, their names and the file ending "
                                                 "(default: every non-zero value found, .nii.gz / .nii)")
    p.add_argument("--lesion-labels", nargs="+", metavar="LABEL",
                   help="labels that get lesion metrics (default: every evaluated label); 'none' for no lesion "
                        "metrics")
    p.add_argument("--profile", nargs="+", choices=tuple(PROFILES), metavar="PROFILE",
                   help="add a challenge's lesion metrics, computed as its scorer does, as <profile>_<metric> "
                        "columns: " + ", ".join(f"{p.name} ({p.title})" for p in PROFILES.values()))
    p.add_argument("--connectivity", type=int, default=26, choices=CONNECTIVITIES,
                   help="connectivity of the lesion_* and instance metrics in 3D: 6, 18 or 26 (default 26; "
                        "profiles fix their own)")
    p.add_argument("--overlap", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of a reference lesion's voxels the prediction must cover to detect it in the "
                        "lesion_* metrics (default 0: any voxel)")
    p.add_argument("--min-lesion-volume", type=float, default=0.0, metavar="ML",
                   help="drop lesions smaller than this many ml from reference and prediction before the lesion_* "
                        "and instance metrics (default 0: keep all)")
    p.add_argument("--nsd-tolerance", type=float, default=NSD_TOLERANCE_MM, metavar="MM",
                   help=f"tolerance of the normalised surface Dice in mm (default {NSD_TOLERANCE_MM:g})")
    p.add_argument("--no-boundary", action="store_true", help="skip NSD, HD95 and ASSD")
    p.add_argument("--no-instances", action="store_true", help="skip PQ, SQ, RQ and lesion_Dice")
    p.add_argument("--geometry-tolerance", type=float, default=1e-3,
                   help="largest spacing / origin (mm) and direction difference accepted (default 1e-3)")
    p.add_argument("--workers", type=int, default=int(os.environ.get("nnUNet_def_n_proc", 1)),
                   help="parallel processes over cases (default nnUNet_def_n_proc or 1)")
    p.set_defaults(func=cmd_evaluate)
    return p
