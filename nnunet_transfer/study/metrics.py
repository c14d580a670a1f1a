"""The metrics a study table can show: per-case columns of the evaluation, direction and range."""
from __future__ import annotations

from dataclasses import dataclass

from nnunet_transfer.evaluation.profiles import PROFILES


@dataclass(frozen=True)
class StudyMetric:
    """A metric a study table can show: its per-case ``column`` (the mean over the labels that have
    ``<column>_<label>``; ``mDice`` / ``mIoU`` as evaluated), whether it needs the target's lesion
    metrics, the profile it belongs to, and its direction and range (for captions and axes)."""

    name: str
    column: str
    lesions: bool = False
    profile: str | None = None
    lower_is_better: bool = False
    fraction: bool = True  # values in [0, 1]


# profile metrics that are not fractions in [0, 1] (volumes, counts, relative differences)
UNBOUNDED_PROFILE_METRICS = ("volume_difference", "simple_lesion_count", "VD", "volume_ref_ml", "volume_pred_ml",
                             "RelativeVolumeError")


def _study_metrics() -> dict[str, StudyMetric]:
    metrics = [StudyMetric("dice", "mDice"), StudyMetric("miou", "mIoU"), StudyMetric("nsd", "NSD"),
               StudyMetric("hd95", "HD95", lower_is_better=True, fraction=False),
               StudyMetric("assd", "ASSD", lower_is_better=True, fraction=False)]
    metrics += [StudyMetric(column.lower(), column, lesions=True) for column in
                ("lesion_TPR", "lesion_precision", "lesion_F1", "PQ", "SQ", "RQ", "lesion_Dice")]
    metrics.append(StudyMetric("lesion_count_difference", "lesion_count_difference", lesions=True,
                               lower_is_better=True, fraction=False))
    for profile in PROFILES.values():
        for name in profile.metrics:
            lower = name in profile.lower_is_better
            bounded = name not in UNBOUNDED_PROFILE_METRICS
            metrics.append(StudyMetric(profile.column(name).lower(), profile.column(name), lesions=True,
                                       profile=profile.name, lower_is_better=lower, fraction=bounded))
    return {m.name: m for m in metrics}


STUDY_METRICS: dict[str, StudyMetric] = _study_metrics()
