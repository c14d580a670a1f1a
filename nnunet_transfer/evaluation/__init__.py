"""Voxel and lesion-wise evaluation of segmentations and the ``nnunet_transfer evaluate`` command.

``metrics``: Dice, IoU, volumes (pure numpy); ``lesions``: connected-component matching and the
ATLAS R2.0 lesion-wise metrics (pure); ``evaluate``: folders -> per-case table + summary;
``cli``: the sub-command.
"""
from nnunet_transfer.evaluation.evaluate import EvaluationResult, EvaluationSettings, evaluate_folders
from nnunet_transfer.evaluation.lesions import LesionMatch, label_lesions, match_lesions
from nnunet_transfer.evaluation.metrics import dice, iou, voxel_counts

__all__ = ["EvaluationResult", "EvaluationSettings", "evaluate_folders", "LesionMatch", "label_lesions",
           "match_lesions", "dice", "iou", "voxel_counts"]
