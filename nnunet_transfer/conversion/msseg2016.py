"""MSSEG-2016 (MICCAI 2016 MS lesion segmentation challenge): 5 MRI sequences, 7 raters and their consensus.

Two published layouts, told apart automatically (folder names match in any letter case):

Re-release (Shanoir-NG / OFSEP portal, 15 training and 38 testing patients, masks for both)::

    Training/Center_01/Patient_01/Raw_Data/{3DFLAIR|FLAIR, 3DT1|T1, 3DT1GADO|GADO, DP, T2}.nii.gz
    Training/Center_01/Patient_01/Preprocessed_Data/{FLAIR,T1,T2,DP,GADO}_preprocessed.nii.gz
    Training/Center_01/Patient_01/Masks/{Consensus, ManualSegmentation_1 .. _7, Brain_Mask}.nii.gz
    Testing/Center_03/...                       (same structure: imagesTs and labelsTs)

2016 challenge release: one folder per patient id (``01016SACH``), images and masks side by side,
in an unprocessed and a pre-processed copy (masks possibly in a third, ``ManualSegmentation/``)::

    <any>/01016SACH/{3DFLAIR, 3DT1, 3DT1GADO, DP, T2, Consensus, ManualSegmentation_1 .. _7}.nii.gz
    <any>/01016SACH/{FLAIR,T1,T2,DP,GADO}_preprocessed.nii.gz (+ Consensus.nii.gz ...)

The pre-processed images (denoised, skull stripped, bias corrected, rigidly registered to the
FLAIR like the masks) are the default; ``--images raw`` takes the unprocessed ones, where only the
FLAIR shares the masks' grid. Folders below SOURCE_DIR whose name starts a word with "test"
(``Testing``, ``MSSEG-Testing``) hold test cases.
"""
from __future__ import annotations

import functools
import os
import re
from collections import defaultdict
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, check_modalities, child,
                                               children, find_nifti, is_hidden_or_stray, nifti_pattern, require_cases)
from nnunet_transfer.conversion.validate import binarise, combine_raters
from nnunet_transfer.errors import NnunetTransferError

MODALITIES = ("T1", "FLAIR", "T2", "DP", "GADO")
RAW_NAMES = {"T1": ("3DT1", "T1"), "FLAIR": ("3DFLAIR", "FLAIR"), "T2": ("T2",), "DP": ("DP",),
             "GADO": ("3DT1GADO", "T1GADO", "GADO")}
VARIANTS = {"preprocessed": "Preprocessed_Data", "raw": "Raw_Data"}
N_RATERS = 7
RATERS = ("consensus", *map(str, range(1, N_RATERS + 1)), "union", "majority")
MASK_FILE = re.compile(nifti_pattern(r"(?:Consensus|ManualSegmentation_\d+)"), re.IGNORECASE)
PORTAL_ID = re.compile(r"\d{5}[A-Za-z]+")  # 2-digit center + 3-digit number + initials: unique across centers
TEST_FOLDER = re.compile(r"(?:^|[^a-z])test", re.IGNORECASE)
RE_RELEASE_FOLDERS = {"raw_data", "preprocessed_data", "masks"}

PROVENANCE = Provenance(
    title="MSSEG-2016: MICCAI 2016 multiple sclerosis lesion segmentation challenge",
    url="https://portal.fli-iam.irisa.fr/msseg-challenge/",
    licence="MSSEG-2016 data use agreement (Shanoir-NG / OFSEP portal, account required): research use, no "
            "redistribution, cite the challenge papers",
    citation="Commowick O et al. Objective Evaluation of Multiple Sclerosis Lesion Segmentation using a Data "
             "Management and Processing Infrastructure. Scientific Reports 8, 13650 (2018). "
             "doi:10.1038/s41598-018-31911-7")


def _stems(variant: str, modality: str) -> tuple[str, ...]:
    return (f"{modality}_preprocessed",) if variant == "preprocessed" else RAW_NAMES[modality]


def _find_any(folder: Path, stems: tuple[str, ...]) -> Path | None:
    return next((p for p in (find_nifti(folder, s) for s in stems) if p is not None), None)


def _has_images(folder: Path, variant: str) -> bool:
    return any(_find_any(folder, _stems(variant, m)) for m in MODALITIES)


def _has_masks(folder: Path | None) -> bool:
    return folder is not None and any(MASK_FILE.fullmatch(p.name) for p in children(folder, dirs=False))


def _mask_stems(rater: str) -> list[str]:
    if rater == "consensus":
        return ["Consensus"]
    if rater in ("union", "majority"):
        return [f"ManualSegmentation_{k}" for k in range(1, N_RATERS + 1)]
    return [f"ManualSegmentation_{rater}"]


def _folders(root: Path) -> list[Path]:
    """``root`` and every folder below it (sorted, hidden / stray folders skipped)."""
    out = [root]
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden_or_stray(Path(d)))
        out += [Path(dirpath) / d for d in dirnames]
    return out


def _split(source: Path, folder: Path) -> str:
    """``"test"`` when a folder between SOURCE_DIR and the patient folder is a test folder."""
    above = folder.relative_to(source).parts[:-1]
    return "test" if any(TEST_FOLDER.search(part) for part in above) else "train"


def _case_id(patient: str, center: str | None, split: str) -> str:
    """The patient id when it is unique across centers (``01016SACH``), else center + patient, ``test_`` for tests."""
    if PORTAL_ID.fullmatch(patient):
        return patient
    case_id = re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(p for p in (center, patient) if p))
    return f"test_{case_id}" if split == "test" else case_id


def _case(case_id: str, images_in: Path, masks_in: Path | None, split: str, options: dict) -> Case:
    """One case from the folder holding its images and the folder holding its masks (None: none found)."""
    problems, images, masks = [], [], []
    for modality in options["modalities"]:
        stems = _stems(options["images"], modality)
        path = _find_any(images_in, stems)
        if path is None:
            problems.append(f"no {stems[0]}.nii.gz ({modality}) in {images_in}")
        images.append(path)
    if split == "train" or _has_masks(masks_in):  # a test case without any mask is unlabelled: imagesTs only
        for stem in _mask_stems(options["rater"]):
            path = find_nifti(masks_in, stem) if masks_in else None
            if path is None:
                problems.append(f"no {stem}.nii.gz (--rater {options['rater']}) in {masks_in or images_in}")
            masks.append(path)
    if problems:
        images, masks = [p for p in images if p], [p for p in masks if p]
    return Case(case_id, tuple(images), tuple(masks), split, patient=case_id.removeprefix("test_"),
                problems=tuple(problems))


def _re_release_cases(source: Path, patients: list[Path], options: dict) -> list[Case]:
    variant_folder = VARIANTS[options["images"]]
    cases = []
    for patient in patients:
        split = _split(source, patient)
        center = next((a.name for a in patient.relative_to(source).parents if re.fullmatch(r"center_?\d+", a.name,
                                                                                          re.IGNORECASE)), None)
        case_id = _case_id(patient.name, center, split)
        images_in = child(patient, variant_folder)
        if images_in is None:
            cases.append(Case(case_id, (), (), split, problems=(f"no {variant_folder} folder in {patient}",)))
        else:
            cases.append(_case(case_id, images_in, child(patient, "Masks"), split, options))
    return cases


def _portal_cases(source: Path, folders: list[Path], options: dict) -> list[Case]:
    variant, other = options["images"], next(v for v in VARIANTS if v != options["images"])
    groups: dict[str, list[Path]] = defaultdict(list)
    for folder in folders:
        if _has_masks(folder) or _has_images(folder, variant) or _has_images(folder, other):
            groups[folder.name].append(folder)
    cases = []
    for patient, group in sorted(groups.items()):
        with_masks = [f for f in group if _has_masks(f)]
        image_folders = [f for f in group if _has_images(f, variant)]
        for images_in in image_folders:  # normally one; a second copy is reported as a duplicate case id
            masks_in = images_in if images_in in with_masks else next(iter(with_masks), None)
            split = _split(source, images_in)
            cases.append(_case(_case_id(patient, None, split), images_in, masks_in, split, options))
        if not image_folders:
            found = [f for f in group if _has_images(f, other)]
            what = f"only {other} ones in {found[0]}" if found else f"only masks in {group[0]}"
            split = _split(source, group[0])
            cases.append(Case(_case_id(patient, None, split), (), (), split,
                              problems=(f"no {variant} images for patient {patient} ({what})",)))
    return cases


class MSSEG2016Converter(Converter):
    key = "msseg2016"
    title = "MSSEG-2016 multiple sclerosis lesions (T1 / FLAIR / T2 / DP / GADO, 7 raters)"
    default_name = "MSSEG2016"
    help = ("MSSEG-2016, either release: Training|Testing/Center_XX/<patient>/{Raw_Data,Preprocessed_Data,Masks} or "
            "the 2016 <patient id>/ folders; consensus masks and pre-processed T1 by default")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--modalities", nargs="+", choices=MODALITIES, default=["T1"], metavar="MODALITY",
                            help="channels in this order, from T1 FLAIR T2 DP GADO (default: T1)")
        parser.add_argument("--rater", choices=RATERS, default="consensus",
                            help="which mask: the consensus (default), one rater 1-7, the union or the majority "
                                 "(at least 4) of the 7 raters")
        parser.add_argument("--images", choices=list(VARIANTS), default="preprocessed",
                            help="pre-processed images, registered to the FLAIR like the masks (default), or the "
                                 "raw ones (only the FLAIR is on the mask grid)")

    def discover(self, source: Path, modalities: list[str] | tuple[str, ...] = ("T1",), rater: str = "consensus",
                 images: str = "preprocessed") -> Conversion:
        modalities = check_modalities(modalities, MODALITIES)
        if rater not in RATERS or images not in VARIANTS:
            raise NnunetTransferError(f"--rater must be one of {RATERS} and --images one of {list(VARIANTS)}, got "
                                      f"{rater!r} and {images!r}")
        options = {"modalities": modalities, "rater": rater, "images": images}
        folders = _folders(source)
        patients = sorted({f.parent for f in folders if f.name.lower() in RE_RELEASE_FOLDERS})
        if patients:
            cases = _re_release_cases(source, patients, options)
        else:
            cases = _portal_cases(source, folders, options)
        cases = require_cases(cases, source, "Training/Center_XX/<patient>/{Preprocessed_Data,Masks}/ or "
                                             "<patient id>/ folders with *_preprocessed.nii.gz and Consensus.nii.gz")
        if not any(c.images for c in cases):
            other = next(v for v in VARIANTS if v != images)
            raise NnunetTransferError(f"found no {images} images below {source} (expected e.g. "
                                      f"{_stems(images, modalities[0])[0]}.nii.gz); pass --images {other} if only "
                                      f"the {other} data was downloaded (see the how-to)")
        combine = binarise if len(_mask_stems(rater)) == 1 else functools.partial(combine_raters, mode=rater)
        return Conversion(
            name=self.default_name, channel_names={str(i): m for i, m in enumerate(modalities)},
            labels={"background": 0, "lesion": 1}, cases=cases, provenance=PROVENANCE, combine_masks=combine,
            description=f"MSSEG-2016 MS lesion segmentation: {images} {', '.join(modalities)}, mask = {rater} "
                        f"(binarised with > 0)",
            options=options)
