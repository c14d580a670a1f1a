"""Instance metrics of one label: panoptic quality (PQ = SQ x RQ) and lesion-wise Dice.

As panoptica defines them (BrainLesion/panoptica 2.1, ``NaiveThresholdMatching`` with its
defaults; Kirillov et al., "Panoptic Segmentation", CVPR 2019):

- instances are the lesions (connected components) of ``lesions.lesion_overlap``, so the
  connectivity and minimum size are those of the lesion matching;
- a reference and a predicted lesion are matched when their IoU is >= 0.5, greedily from the
  highest IoU down, each lesion at most once (above 0.5 at most one partner exists anyway; the
  order only matters for pairs at exactly 0.5);
- RQ = TP / (TP + (FP + FN) / 2) over matched pairs (TP), unmatched predictions (FP) and
  unmatched references (FN); SQ = mean IoU of the matched pairs; PQ = SQ x RQ;
- lesion-wise Dice = mean Dice of the matched pairs (panoptica's ``sq_dsc``).

Empty cases: no lesion on either side gives 1 for all (this project's rule; panoptica gives NaN
there); no matched pair otherwise gives 0 for all (as panoptica). Pure, no I/O.
"""
from __future__ import annotations

import numpy as np

from nnunet_transfer.evaluation.lesions import LesionOverlap

MATCH_IOU = 0.5


def matched_pairs(overlap: LesionOverlap, threshold: float = MATCH_IOU) -> np.ndarray:
    """Indices into the overlap's pair arrays of the one-to-one matches with IoU >= ``threshold``,
    chosen greedily by decreasing IoU (ties in pair order: reference id, then predicted id)."""
    inter = overlap.pair_voxels.astype(float)
    iou = inter / (overlap.ref_sizes[overlap.pair_ref] + overlap.pred_sizes[overlap.pair_pred] - inter)
    candidates = np.flatnonzero(iou >= threshold)
    candidates = candidates[np.argsort(-iou[candidates], kind="stable")]
    used_ref, used_pred, chosen = set(), set(), []
    for index in candidates:
        r, p = int(overlap.pair_ref[index]), int(overlap.pair_pred[index])
        if r not in used_ref and p not in used_pred:
            used_ref.add(r)
            used_pred.add(p)
            chosen.append(index)
    return np.asarray(chosen, dtype=np.int64)


def instance_metrics(overlap: LesionOverlap, threshold: float = MATCH_IOU) -> dict[str, float | int]:
    """PQ, SQ, RQ, lesion-wise Dice and the match counts of one label (see the module docstring)."""
    if overlap.n_ref == 0 and overlap.n_pred == 0:
        return {"PQ": 1.0, "SQ": 1.0, "RQ": 1.0, "lesion_Dice": 1.0,
                "instance_TP": 0, "instance_FP": 0, "instance_FN": 0}
    chosen = matched_pairs(overlap, threshold)
    tp = int(chosen.size)
    fp, fn = overlap.n_pred - tp, overlap.n_ref - tp
    if tp == 0:
        sq = lesion_dice = rq = 0.0
    else:
        inter = overlap.pair_voxels[chosen].astype(float)
        total = overlap.ref_sizes[overlap.pair_ref[chosen]] + overlap.pred_sizes[overlap.pair_pred[chosen]]
        sq = float(np.mean(inter / (total - inter)))
        lesion_dice = float(np.mean(2 * inter / total))
        rq = tp / (tp + (fp + fn) / 2)
    return {"PQ": sq * rq, "SQ": sq, "RQ": rq, "lesion_Dice": lesion_dice,
            "instance_TP": tp, "instance_FP": fp, "instance_FN": fn}
