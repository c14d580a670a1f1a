"""ATLAS R1.1 and R1.2 (Anatomical Tracings of Lesions After Stroke): T1w MRI with manual stroke lesion masks.

The two older releases, told apart by their file names (the release is detected, not chosen)::

    R1.2:  ATLAS_R1.2/c0003/c0003s0043t01/c0003s0043t01_t1w_stx.nii.gz
           ATLAS_R1.2/c0003/c0003s0043t01/c0003s0043t01_LesionSmooth_stx.nii.gz
    R1.1:  ATLAS_R1.1/Site1/031768/t01/031768_t1w_deface_stx.nii.gz
           ATLAS_R1.1/Site1/031768/t01/031768_LesionSmooth_stx.nii.gz    (+ _LesionSmooth_1_stx, _2_stx, ...)

Images are in MNI space (``_stx``). A scan with several lesion files (one per traced lesion)
gets their union; masks are float with values such as 1, 254 or 255 and are binarised with
``> 0``. Some patients have a second time point (``t02``): each time point is one case whose
id keeps the patient (``c0003s0043t02``, ``site1_031768_t02``), and the patient-level split
keeps all time points of a patient in one fold.
"""
from __future__ import annotations

import re
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, children, nifti_pattern,
                                               require_cases, walk_files)
from nnunet_transfer.conversion.validate import binarise
from nnunet_transfer.errors import NnunetTransferError

# R1.2: cohort c0003, subject s0043, time point t01, all in the file name.
R12_T1 = re.compile(nifti_pattern(r"(c\d+s\d+)(t\d+)_t1w_stx"), re.IGNORECASE)
# R1.1: only the subject is in the file name; site and time point are the folders above it.
R11_T1 = re.compile(nifti_pattern(r"([A-Za-z0-9]+)_t1w_deface_stx"), re.IGNORECASE)
LESION = r"_LesionSmooth(?:_\d+)?_stx"


def _provenance(release: str) -> Provenance:
    """Where ATLAS R1.x comes from; ``release`` (``R1.1`` / ``R1.2``) is the one detected."""
    return Provenance(
        title="ATLAS (Anatomical Tracings of Lesions After Stroke)", release=release,
        url="https://fcon_1000.projects.nitrc.org/indi/retro/atlas.html",
        licence="ATLAS data use agreement (requested through the ATLAS page at NITRC): research use, no "
                "redistribution, no attempt to identify participants",
        citation="Liew S-L et al. A large, open source dataset of stroke anatomical brain images and manual lesion "
                 "segmentations. Scientific Data 5, 180011 (2018). doi:10.1038/sdata.2018.11")


def _token(name: str) -> str:
    """A folder name as a case-id part: ``Site1`` -> ``site1`` (letters and digits only)."""
    return re.sub(r"[^A-Za-z0-9]+", "", name).lower() or "x"


def _lesion_files(t1: Path, stem: str) -> tuple[Path, ...]:
    """Every ``<stem>_LesionSmooth[_N]_stx`` file directly beside ``t1`` (sorted by name)."""
    regex = re.compile(nifti_pattern(re.escape(stem) + LESION), re.IGNORECASE)
    return tuple(p for p in children(t1.parent, dirs=False) if regex.fullmatch(p.name))


def _case(t1: Path, stem: str, case_id: str, patient: str) -> Case:
    masks = _lesion_files(t1, stem)
    problems = () if masks else (f"no lesion mask next to {t1} (expected {stem}_LesionSmooth_stx.nii.gz)",)
    return Case(case_id, (t1,), masks, "train", patient=patient, problems=problems)


def _r12_cases(source: Path) -> list[Case]:
    cases = []
    for t1 in walk_files(source, R12_T1):
        subject, time_point = (g.lower() for g in R12_T1.fullmatch(t1.name).groups())
        stem = t1.name[: t1.name.lower().rindex("_t1w_stx")]
        cases.append(_case(t1, stem, subject + time_point, subject))
    return cases


def _r11_cases(source: Path) -> list[Case]:
    cases = []
    for t1 in walk_files(source, R11_T1):
        subject = R11_T1.fullmatch(t1.name).group(1)
        # Site1/031768/t01/031768_t1w_deface_stx.nii.gz: the site keeps subject ids of different sites apart.
        site = _token(t1.parents[2].name) if len(t1.parents) > 2 else "site"
        patient = f"{site}_{subject.lower()}"
        cases.append(_case(t1, subject, f"{patient}_{_token(t1.parent.name)}", patient))
    return cases


class Atlas1Converter(Converter):
    key = "atlas1"
    title = "ATLAS R1.1 / R1.2 stroke lesions (T1w)"
    default_name = "ATLAS1"
    help = ("ATLAS R1.2 (c0xxx/c0xxxs0xxxt0x/*_t1w_stx) or R1.1 (SiteN/<subject>/t0x/*_t1w_deface_stx), detected "
            "from the file names; several LesionSmooth files of a scan are OR-ed")

    def discover(self, source: Path) -> Conversion:
        """Cases of the release found below ``source`` (one per time point).

        Raises NnunetTransferError when ``source`` holds no ATLAS R1.x T1 files, or files of both releases.
        """
        r12, r11 = _r12_cases(source), _r11_cases(source)
        if r12 and r11:
            raise NnunetTransferError(
                f"{source} holds both ATLAS R1.2 files ({r12[0].images[0]}) and R1.1 files ({r11[0].images[0]}); "
                f"point SOURCE_DIR at one release folder (ATLAS_R1.2 or ATLAS_R1.1)")
        release = "R1.2" if r12 else "R1.1"
        cases = require_cases(r12 or r11, source, "ATLAS R1.2 c0xxx/c0xxxs0xxxt01/c0xxxs0xxxt01_t1w_stx.nii.gz or "
                                                  "R1.1 SiteN/<subject>/t01/<subject>_t1w_deface_stx.nii.gz, each "
                                                  "with its *_LesionSmooth_stx.nii.gz")
        return Conversion(
            name=self.default_name, channel_names={"0": "T1"}, labels={"background": 0, "lesion": 1},
            cases=cases, provenance=_provenance(release), combine_masks=binarise,
            description=f"ATLAS {release} stroke lesion segmentation: T1w in MNI space, manual lesion masks (several "
                        f"lesion files of a scan OR-ed, binarised with > 0); one case per time point",
            patient_split=True, notes=[f"release {release} detected from the file names"])
