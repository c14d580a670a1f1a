"""What the demo offers, by name: its datasets, its sources (task x domain) and its targets.

Light on purpose (no data generation imported), so the command line can offer these choices.
Tasks are the study file's names (:data:`nnunet_transfer.names.PRETRAINING_TASKS`).
"""
from __future__ import annotations

from nnunet_transfer.names import SSL_PREFIX

# demo dataset key -> dataset id offset (the dataset id is FIRST_ID + offset)
DATASET_OFFSETS = {"mri_seg_source": 1, "mri_cls_source": 2, "mri_unlabeled": 3, "natural_cls_source": 4,
                   "natural_seg_source": 5, "natural_unlabeled": 6, "stroke": 11, "ms": 12, "anatomy": 13}
FIRST_ID = 900
SSL_PRETEXT = "models_genesis"  # the demo's self-supervised sources
# source key -> (demo dataset, study task, domain): the reference study's task x domain grid
SOURCES = {
    "mri_seg": ("mri_seg_source", "segmentation", "mri"),
    "mri_cls": ("mri_cls_source", "classification", "mri"),
    "mri_ssl": ("mri_unlabeled", SSL_PREFIX + SSL_PRETEXT, "mri"),
    "natural_seg": ("natural_seg_source", "segmentation", "natural"),
    "natural_cls": ("natural_cls_source", "classification", "natural"),
    "natural_ssl": ("natural_unlabeled", SSL_PREFIX + SSL_PRETEXT, "natural"),
}
# target key -> (column label, lesion detection rate?)
TARGETS = {"stroke": ("stroke", True), "ms": ("MS", True), "anatomy": ("anatomy", False)}
