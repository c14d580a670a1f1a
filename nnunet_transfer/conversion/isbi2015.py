"""ISBI 2015 longitudinal multiple sclerosis lesion segmentation challenge: MPRAGE / FLAIR / PD / T2 with two raters.

Layout of the training and test downloads after extraction::

    training/training01/preprocessed/training01_01_{flair,mprage,pd,t2}_pp.nii
    training/training01/masks/training01_01_mask1.nii, training01_01_mask2.nii      (rater 1, rater 2)
    training/training01/orig/...                       (not co-registered, unlabelled: never used)
    testdata_website/test01/preprocessed/test01_01_*_pp.nii                           (no masks: imagesTs)

5 training patients with 4-5 time points each (21 scans). Each time point is one case
(``training01_02``, patient ``training01``); the patient-level split keeps a patient's time
points in one fold. The preprocessed images are co-registered, so any subset of the four
contrasts can be channels (``--modalities``; default the MPRAGE only).

The challenge scored every submission against each rater separately; there is no consensus
mask. The default target is rater 1's mask: a segmentation one person actually drew, with one
consistent idea of lesion borders across cases. ``union`` (either rater) enlarges lesions,
``majority`` of two raters is their intersection and shrinks them.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, check_modalities, child,
                                               find_nifti, nifti_pattern, require_cases, require_child, walk_files)
from nnunet_transfer.conversion.validate import combine_raters
from nnunet_transfer.errors import NnunetTransferError

CHANNELS = {"mprage": "T1", "flair": "FLAIR", "pd": "PD", "t2": "T2"}  # file name part -> channel name
RATERS = ("1", "2", "union", "majority")
PP_PATTERN = re.compile(nifti_pattern(r"((?:training|test)\d+)_(\d+)_(flair|mprage|pd|t2)_pp"), re.IGNORECASE)

PROVENANCE = Provenance(
    title="ISBI 2015 Longitudinal MS Lesion Segmentation Challenge", release="training + test data",
    url="https://smart-stats-tools.org/lesion-challenge",
    licence="obtained by registering on the challenge site; use is governed by the terms stated there",
    citation="Carass A et al. Longitudinal multiple sclerosis lesion segmentation: Resource and challenge. "
             "NeuroImage 148, 77-102 (2017). doi:10.1016/j.neuroimage.2016.12.064")


def _time_points(split_folder: Path) -> dict[str, tuple[str, Path]]:
    """``case id -> (patient, preprocessed folder)`` for every ``preprocessed/*_pp`` file below ``split_folder``."""
    found: dict[str, tuple[str, Path]] = {}
    for path in walk_files(split_folder, PP_PATTERN):
        if path.parent.name.lower() != "preprocessed":  # orig/ holds images that are not co-registered
            continue
        patient, time_point, _ = PP_PATTERN.fullmatch(path.name).groups()
        found.setdefault(f"{patient.lower()}_{time_point}", (patient.lower(), path.parent))
    return dict(sorted(found.items()))


def _cases(split_folder: Path, split: str, modalities: Sequence[str]) -> list[Case]:
    cases = []
    for case_id, (patient, folder) in _time_points(split_folder).items():
        problems: list[str] = []
        images = []
        for modality in modalities:
            image = find_nifti(folder, f"{case_id}_{modality}_pp")
            if image is None:
                image = folder / f"{case_id}_{modality}_pp.nii"
                problems.append(f"no {modality} image {image}")
            images.append(image)
        masks: list[Path] = []
        if split == "train":
            mask_folder = folder.parent / "masks"
            for rater in (1, 2):
                mask = find_nifti(mask_folder, f"{case_id}_mask{rater}")
                if mask is None:
                    problems.append(f"no rater {rater} mask {mask_folder / f'{case_id}_mask{rater}.nii'}")
                else:
                    masks.append(mask)
        cases.append(Case(case_id, tuple(images), tuple(masks), split, patient=patient, problems=tuple(problems)))
    return cases


def _check_options(modalities: Sequence[str], rater: str) -> list[str]:
    modalities = check_modalities([m.lower() for m in modalities], CHANNELS)
    if rater not in RATERS:
        raise NnunetTransferError(f"--rater {rater}: choose one of {', '.join(RATERS)}")
    return modalities


class Isbi2015Converter(Converter):
    key = "isbi2015"
    title = "ISBI 2015 longitudinal MS lesions (MPRAGE, FLAIR, PD, T2)"
    default_name = "ISBI2015"
    help = ("training/trainingNN/preprocessed/*_pp.nii with masks/*_mask1.nii and *_mask2.nii; "
            "testdata_website/testNN/preprocessed (no masks) goes to imagesTs")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--modalities", nargs="+", choices=list(CHANNELS), default=["mprage"], metavar="MODALITY",
                            help="contrasts to use as channels, in this order: mprage (T1), flair, pd, t2 "
                                 "(default: mprage)")
        parser.add_argument("--rater", choices=RATERS, default="1",
                            help="lesion target: rater 1's or rater 2's mask, their union or their majority "
                                 "(= intersection of two) (default: 1)")
        parser.add_argument("--no-test", action="store_true", help="leave out testdata_website/ (no masks)")

    def discover(self, source: Path, modalities: Sequence[str] = ("mprage",), rater: str = "1",
                 no_test: bool = False) -> Conversion:
        """One case per time point of ``source/training`` (and ``source/testdata_website`` unless ``no_test``).

        Raises NnunetTransferError for an unknown or repeated modality, an unknown rater, or a
        ``source`` without ``training/``.
        """
        rater = str(rater)
        modalities = _check_options(modalities, rater)
        training = require_child(source, "training", what="the extracted training data: trainingNN/preprocessed "
                                                          "and trainingNN/masks")
        cases = require_cases(_cases(training, "train", modalities), training,
                              "trainingNN/preprocessed/trainingNN_MM_mprage_pp.nii with "
                              "trainingNN/masks/trainingNN_MM_mask1.nii")
        testing = child(source, "testdata_website")
        if testing is not None and not no_test:
            cases += _cases(testing, "test", modalities)
        return Conversion(
            name=self.default_name, channel_names={str(i): CHANNELS[m] for i, m in enumerate(modalities)},
            labels={"background": 0, "lesion": 1}, cases=cases, provenance=PROVENANCE,
            combine_masks=functools.partial(combine_raters, mode=rater),
            description=f"ISBI 2015 longitudinal MS lesion segmentation: preprocessed (co-registered) "
                        f"{', '.join(modalities)}; target: rater {rater} mask(s); one case per time point",
            patient_split=True, options={"modalities": modalities, "rater": rater, "no_test": no_test},
            notes=[f"lesion target: {'rater ' + rater if rater in ('1', '2') else rater + ' of raters 1 and 2'}"])
