"""Nested, patient-level training subsets for label-efficiency studies (a target's ``train_sizes``).

For each fold of a target, the fold's training cases (nnU-Net's ``splits_final.json``; every
training case for fold ``all``) are grouped by patient (the converter's ``patients.json``; one
case is one patient where there is none), the patients are put in one seeded random order, and
the subset of size ``n`` is every case of the first ``n`` patients. So the subsets are nested (the
4 include the 2), patient-level (all time points of a patient together), reproducible (seed and
fold fix them) and the same for every source, strategy and scratch (they do not depend on the
initialisation). No image is copied: a subset is a list of case ids that the trainer reads from
the plans' ``training_schedule.train_subset`` (see :class:`nnunet_transfer.plans_blocks.TrainingSchedule`).
The subsets of a study are recorded in ``<study folder>/subsets/<target>.json``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json, write_json_atomic
from nnunet_transfer.layout import DATASET_JSON, PATIENTS_FILE, SPLITS_FILE, preprocessed_dir, raw_dir

NNUNET_SPLIT_SEED = 12345  # nnU-Net's own seed for the 5-fold split it makes when there is none
NNUNET_N_SPLITS = 5


def training_identifiers(dataset: str) -> list[str]:
    """Case ids of the raw dataset's imagesTr, sorted (nnU-Net's identifiers of the dataset)."""
    from nnunetv2.utilities.utils import get_identifiers_from_splitted_dataset_folder

    ending = read_json(raw_dir(dataset) / DATASET_JSON)["file_ending"]
    return sorted(get_identifiers_from_splitted_dataset_folder(str(raw_dir(dataset) / "imagesTr"), ending))


def ensure_splits(dataset: str) -> list[dict[str, list[str]]]:
    """The dataset's ``splits_final.json`` (preprocessed folder), written first when missing exactly
    as nnU-Net writes it at its first training (its function, its seed, 5 folds)."""
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    path = preprocessed_dir(dataset) / SPLITS_FILE
    if not path.is_file():
        write_json_atomic(generate_crossval_split(training_identifiers(dataset), seed=NNUNET_SPLIT_SEED,
                                                  n_splits=NNUNET_N_SPLITS), path)
    return read_json(path)


def fold_training_cases(dataset: str, fold: int | str) -> list[str]:
    """The cases fold ``fold`` trains on in nnU-Net (every case for ``all``)."""
    if fold == "all":
        return training_identifiers(dataset)
    splits = ensure_splits(dataset)
    if not 0 <= int(fold) < len(splits):
        raise NnunetTransferError(f"{dataset}: fold {fold} is not in {preprocessed_dir(dataset) / SPLITS_FILE} "
                                  f"({len(splits)} folds); training subsets need the fold's training cases")
    return sorted(splits[int(fold)]["train"])


def patients_of(dataset: str) -> dict[str, str]:
    """Case id -> patient id from the raw dataset's ``patients.json`` ({} when every case is its own patient)."""
    path = raw_dir(dataset) / PATIENTS_FILE
    return read_json(path) if path.is_file() else {}


def draw_subsets(cases: Sequence[str], patients: dict[str, str], sizes: Sequence[int], seed: int,
                 fold: int | str) -> dict[int, list[str]]:
    """Size -> sorted case ids: the cases of the first ``size`` patients in one random order fixed by
    ``seed`` and ``fold``. Raises NnunetTransferError when a size exceeds the number of patients."""
    patient = {case: patients.get(case, case) for case in cases}
    groups = sorted(set(patient.values()))
    too_large = [n for n in sizes if n > len(groups)]
    if too_large:
        raise NnunetTransferError(f"train_sizes {too_large} exceed the {len(groups)} training patients of fold "
                                  f"{fold}; use sizes up to {len(groups)}")
    fold_entropy = 0 if fold == "all" else int(fold) + 1
    order = [groups[i] for i in np.random.default_rng([seed, fold_entropy]).permutation(len(groups))]
    return {n: sorted(case for case in cases if patient[case] in set(order[:n])) for n in sizes}


def target_subsets(dataset: str, folds: Sequence[int | str], sizes: Sequence[int], seed: int
                   ) -> dict[str, dict[str, list[str]]]:
    """``{fold: {size: cases}}`` (strings as keys, as JSON writes them) for every fold of a target."""
    patients = patients_of(dataset)
    out = {}
    for fold in folds:
        drawn = draw_subsets(fold_training_cases(dataset, fold), patients, sizes, seed, fold)
        out[str(fold)] = {str(n): cases for n, cases in drawn.items()}
    return out
