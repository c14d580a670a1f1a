"""Voxel, boundary, lesion-wise and instance evaluation of segmentations, challenge profiles, and the
``nnunet_transfer evaluate`` command.

``metrics``: Dice, IoU, volumes (pure numpy); ``boundary``: NSD, HD95, ASSD; ``lesions``:
connected components, their overlaps and this project's lesion detection metrics; ``instances``:
PQ / SQ / RQ and lesion-wise Dice; ``profiles``: the ATLAS R2.0, ISBI 2015 and MSSEG-2016
definitions as their scorers compute them; ``evaluate``: folders -> per-case table + summary;
``cli``: the sub-command. Names are imported on first use, so building the CLI parser does not
load SimpleITK and scipy.
"""
from importlib import import_module

_EXPORTS = {"EvaluationResult": "evaluate", "EvaluationSettings": "evaluate", "evaluate_folders": "evaluate",
            "boundary_metrics": "boundary", "instance_metrics": "instances", "LesionMatch": "lesions",
            "LesionOverlap": "lesions", "label_lesions": "lesions", "lesion_overlap": "lesions",
            "match_lesions": "lesions", "PROFILES": "profiles", "dice": "metrics", "iou": "metrics",
            "voxel_counts": "metrics"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
