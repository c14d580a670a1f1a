"""IBSR18 (Internet Brain Segmentation Repository, 18 subjects): T1 MRI with manual CSF / GM / WM labels.

Layout of the NITRC release ``IBSR_V2.0_nifti_stripped.tgz`` after extraction::

    IBSR_nifti_stripped/IBSR_01/IBSR_01_ana_strip.nii.gz         T1, skull stripped (the default image)
    IBSR_nifti_stripped/IBSR_01/IBSR_01_segTRI_fill_ana.nii.gz   0 background, 1 CSF, 2 GM, 3 WM (filled)
    IBSR_nifti_stripped/IBSR_01/IBSR_01_ana.nii.gz               T1 with skull (``--with-skull``)
    IBSR_nifti_stripped/IBSR_01/IBSR_01_ana_brainmask.nii.gz     brain mask: never the label
    IBSR_nifti_stripped/IBSR_01/IBSR_01_seg_ana.nii.gz           fine-grained structure labels: never the label
    ... IBSR_18/

Volumes are stored as (x, y, z, 1): the trailing singleton dimension is dropped on reading.
Case id: the subject folder (``IBSR_01``).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, child, children, find_nifti,
                                               require_cases)
from nnunet_transfer.conversion.validate import remap_labels
from nnunet_transfer.errors import NnunetTransferError

SUBJECT = re.compile(r"IBSR_\d+", re.IGNORECASE)
LABELS = {"background": 0, "CSF": 1, "grey_matter": 2, "white_matter": 3}

PROVENANCE = Provenance(
    title="IBSR18: Internet Brain Segmentation Repository, 18 T1 volumes with manual CSF / GM / WM labels",
    release="IBSR V2.0 (NIfTI, skull stripped)",
    url="https://www.nitrc.org/projects/ibsr",
    licence="terms of use of the IBSR project at NITRC (see the project page); acknowledge the Center for "
            "Morphometric Analysis at Massachusetts General Hospital",
    citation="The MR brain data sets and their manual segmentations were provided by the Center for Morphometric "
             "Analysis at Massachusetts General Hospital and are available at https://www.nitrc.org/projects/ibsr")


def _case(subject: Path, with_skull: bool) -> Case:
    name = subject.name
    image_stem = f"{name}_ana" if with_skull else f"{name}_ana_strip"
    image = find_nifti(subject, image_stem)
    label = find_nifti(subject, f"{name}_segTRI_fill_ana")
    problems = []
    if image is None:
        problems.append(f"no {image_stem}.nii.gz (the T1 image) in {subject}")
    if label is None:
        problems.append(f"no {name}_segTRI_fill_ana.nii.gz (the CSF / GM / WM labels) in {subject}")
    return Case(name, (image,) if image else (), (label,) if label else (), "train", problems=tuple(problems))


class IBSR18Converter(Converter):
    key = "ibsr18"
    title = "IBSR18 brain tissue (T1, CSF / grey matter / white matter)"
    default_name = "IBSR18"
    help = ("IBSR V2.0 NIfTI release: IBSR_nifti_stripped/IBSR_XX/IBSR_XX_ana_strip.nii.gz with "
            "IBSR_XX_segTRI_fill_ana.nii.gz")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--with-skull", action="store_true",
                            help="use IBSR_XX_ana.nii.gz (T1 with skull) instead of the skull-stripped "
                                 "IBSR_XX_ana_strip.nii.gz")

    def discover(self, source: Path, with_skull: bool = False) -> Conversion:
        root = child(source, "IBSR_nifti_stripped") or source
        subjects = [d for d in children(root, dirs=True) if SUBJECT.fullmatch(d.name)]
        if not subjects:
            raise NnunetTransferError(f"{root} has no IBSR_01 ... IBSR_18 subject folders; point SOURCE_DIR at the "
                                      f"extracted IBSR_V2.0_nifti_stripped.tgz (IBSR_nifti_stripped/, see the how-to)")
        cases = require_cases((_case(d, with_skull) for d in subjects), root,
                              "IBSR_XX/IBSR_XX_ana_strip.nii.gz with IBSR_XX_segTRI_fill_ana.nii.gz")
        return Conversion(
            name=self.default_name, channel_names={"0": "T1"}, labels=dict(LABELS), cases=cases,
            provenance=PROVENANCE, combine_masks=functools.partial(remap_labels, mapping={v: v for v in range(4)}),
            description="IBSR18 brain tissue segmentation: T1 (" + ("with skull" if with_skull else "skull stripped")
                        + "), manual labels 1 CSF, 2 grey matter, 3 white matter (segTRI_fill)",
            options={"with_skull": with_skull})
