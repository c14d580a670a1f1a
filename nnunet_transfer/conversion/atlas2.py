"""ATLAS R2.0 (Anatomical Tracings of Lesions After Stroke): T1w MRI with manual stroke lesion masks.

Layout of the published (BIDS) release after decryption and extraction::

    ATLAS_2/Training/R001/dataset_description.json
    ATLAS_2/Training/R001/sub-r001s001/ses-1/anat/sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz
    ATLAS_2/Training/R001/sub-r001s001/ses-1/anat/sub-r001s001_ses-1_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz
    ATLAS_2/Testing/R0xx/sub-.../ses-1/anat/..._T1w.nii.gz        (no masks: imagesTs only)

655 labelled training cases (cohorts R001-R052), 197x233x189 at 1 mm in MNI space. Case id:
``r001s001`` (cohort and subject). Masks are binarised with ``> 0``.
"""
from __future__ import annotations

import re
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, child, nifti_pattern,
                                               require_cases, require_child, walk_files)
from nnunet_transfer.conversion.validate import binarise

T1_PATTERN = re.compile(nifti_pattern(r"sub-(r\d+s\d+)_ses-(\d+)_space-[A-Za-z0-9]+_T1w"), re.IGNORECASE)
MASK_SUFFIX = "_label-L_desc-T1lesion_mask"

PROVENANCE = Provenance(
    title="ATLAS R2.0 (Anatomical Tracings of Lesions After Stroke)", release="R2.0",
    url="https://fcon_1000.projects.nitrc.org/indi/retro/atlas.html",
    licence="ATLAS R2.0 data use agreement (ICPSR / NITRC): research use, no redistribution, no re-identification",
    citation="Liew S-L et al. A large, curated, open-source stroke neuroimaging dataset to improve lesion "
             "segmentation algorithms. Scientific Data 9, 320 (2022). doi:10.1038/s41597-022-01401-7")


def _cases(split_folder: Path, split: str) -> list[Case]:
    cases = []
    for t1 in walk_files(split_folder, T1_PATTERN):
        subject, session = T1_PATTERN.fullmatch(t1.name).groups()
        case_id = subject.lower() if session == "1" else f"{subject.lower()}_ses{session}"
        stem = t1.name[: t1.name.lower().rindex("_t1w")]
        mask = next(walk_files(t1.parent, nifti_pattern(re.escape(stem) + MASK_SUFFIX)), None)
        problems: tuple[str, ...] = ()
        if split == "train" and mask is None:
            problems = (f"no lesion mask next to {t1} (expected {stem}{MASK_SUFFIX}.nii.gz)",)
        cases.append(Case(case_id, (t1,), (mask,) if mask else (), split, patient=subject.lower(), problems=problems))
    return cases


class Atlas2Converter(Converter):
    key = "atlas2"
    title = "ATLAS R2.0 stroke lesions (T1w)"
    default_name = "ATLAS2"
    help = "ATLAS R2.0 BIDS release: Training/R0xx/sub-*/ses-*/anat (Testing/ without masks goes to imagesTs)"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-test", action="store_true", help="leave out Testing/ (T1w without masks)")

    def discover(self, source: Path, no_test: bool = False) -> Conversion:
        root = child(source, "ATLAS_2") or source
        training = require_child(root, "Training", what="the ATLAS R2.0 training cohorts R001-R052; decrypt and "
                                                         "extract the .tar.gz.enc release first")
        cases = require_cases(_cases(training, "train"), training,
                              "R0xx/sub-r0xxs0xx/ses-1/anat/*_T1w.nii.gz with its *_desc-T1lesion_mask.nii.gz")
        testing = child(root, "Testing", "test")
        if testing is not None and not no_test:
            cases += _cases(testing, "test")
        return Conversion(
            name=self.default_name, channel_names={"0": "T1"}, labels={"background": 0, "lesion": 1},
            cases=cases, provenance=PROVENANCE, combine_masks=binarise,
            description="ATLAS R2.0 stroke lesion segmentation: T1w in MNI152NLin2009aSym space, manual lesion masks "
                        "(binarised with > 0)",
            options={"no_test": no_test})

