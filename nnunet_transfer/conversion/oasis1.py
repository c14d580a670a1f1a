"""OASIS-1 brain anatomy (FreeSurfer / SAMSEG labels) as a segmentation target, in two published layouts.

neurite-oasis (Hoopes & Dalca's preprocessing of 414 OASIS-1 subjects, ``neurite-oasis.v1.0.tar``)::

    seg4_labels.txt  seg35_labels.txt  seg24_labels.txt  subjects.txt     (FreeSurfer colour tables)
    OASIS_OAS1_0001_MR1/aligned_norm.nii.gz   aligned_seg4.nii.gz   aligned_seg35.nii.gz
                        norm.nii.gz  seg4.nii.gz  seg35.nii.gz  orig.nii.gz  aligned_orig.nii.gz
                        slice_norm.nii.gz  slice_seg24.nii.gz ...                (2D slices: ignored)

Case id ``OAS1_0001_MR1``; image ``[aligned_]norm`` (skull-stripped, bias-corrected), label
``[aligned_]seg4`` or ``seg35``; label names come from the colour table.

Learn2Reg OASIS (the same 414 subjects, 35 labels, ``OASIS.zip``)::

    OASIS_dataset.json
    imagesTr/OASIS_0001_0000.nii.gz   labelsTr/OASIS_0001_0000.nii.gz   masksTr/... (brain masks: ignored)
    imagesTs/OASIS_0438_0000.nii.gz   (no public labels: imagesTs only)

Case id ``OASIS_0001``. The release has no colour table: labels are named ``label_<n>`` unless a
``seg35_labels.txt`` lies beside ``OASIS_dataset.json``.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, child, children, find_nifti,
                                               nifti_pattern, require_cases, walk_files)
from nnunet_transfer.conversion.validate import remap_labels
from nnunet_transfer.errors import NnunetTransferError

NEURITE_FOLDER = re.compile(r"OASIS_(OAS1_(\d{4})_MR\d+)", re.IGNORECASE)
L2R_IMAGE = re.compile(nifti_pattern(r"(OASIS_\d{4})_0000"), re.IGNORECASE)
LABEL_SETS = ("seg4", "seg35")
SPACES = ("aligned", "native")
L2R_LABELS = 35  # Learn2Reg OASIS ships the 35-label segmentation only (values 0-35)

OASIS_CITATION = ("Marcus DS, Wang TH, Parker J, Csernansky JG, Morris JC, Buckner RL. Open Access Series of Imaging "
                  "Studies (OASIS): Cross-sectional MRI Data in Young, Middle Aged, Nondemented, and Demented Older "
                  "Adults. Journal of Cognitive Neuroscience 19(9), 1498-1507 (2007). doi:10.1162/jocn.2007.19.9.1498")
OASIS_TERMS = "OASIS data use terms (https://sites.wustl.edu/oasisbrains/): research use, no re-identification"
NEURITE_PROVENANCE = Provenance(
    title="OASIS-1 (neurite-oasis preprocessing)", release="neurite-oasis v1.0",
    url="https://github.com/adalca/medical-datasets/blob/master/neurite-oasis.md", licence=OASIS_TERMS,
    citation=OASIS_CITATION + "; Hoopes A, Hoffmann M, Fischl B, Guttag J, Dalca AV. HyperMorph: Amortized "
                              "Hyperparameter Learning for Image Registration. IPMI 2021 (arXiv:2101.01035)")
L2R_PROVENANCE = Provenance(
    title="OASIS-1 (Learn2Reg OASIS task)", url="https://learn2reg.grand-challenge.org/", licence=OASIS_TERMS,
    citation=OASIS_CITATION + "; Learn2Reg challenge, https://learn2reg.grand-challenge.org/")


def read_colour_table(path: Path) -> dict[int, str]:
    """A FreeSurfer colour table (``value name R G B A`` per line, ``#`` comments) as ``value -> name``.

    Raises NnunetTransferError naming the file and line when a line is not of that form, a value
    repeats, or the table is empty.
    """
    table: dict[int, str] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2 or not re.fullmatch(r"\d+", fields[0]):
            raise NnunetTransferError(f"{path} line {number} {line.strip()!r} is not a FreeSurfer colour table "
                                      f"line ('value name R G B A')")
        value = int(fields[0])
        if value in table:
            raise NnunetTransferError(f"{path} line {number}: label value {value} is listed twice")
        table[value] = fields[1]
    if not table:
        raise NnunetTransferError(f"{path} lists no labels; expected FreeSurfer colour table lines")
    return table


def nnunet_labels(table: dict[int, str]) -> tuple[dict[str, int], dict[int, int]]:
    """nnU-Net ``labels`` block and ``source value -> nnU-Net value`` mapping from a colour table.

    Value 0 is ``background`` whatever the table calls it (``Unknown``). nnU-Net needs consecutive
    values, so a table with gaps is renumbered in sorted order (the neurite-oasis tables have none:
    the mapping is the identity). Names keep letters, digits, ``-`` and ``_``; a name that repeats or
    that nnU-Net reserves (``background``, ``ignore``) gets ``_<value>`` appended.
    """
    values = sorted(set(table) | {0})
    mapping = {v: i for i, v in enumerate(values)}
    labels: dict[str, int] = {"background": 0}
    for value in values[1:]:
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", table[value]).strip("_") or f"label_{value}"
        if name in labels or name.lower() in ("background", "ignore"):
            name = f"{name}_{value}"
        labels[name] = mapping[value]
    return labels, mapping


def neurite_root(source: Path) -> Path | None:
    """``source`` or the child folder of it that holds ``OASIS_OAS1_xxxx_MRy`` subject folders, or None."""
    for folder in (source, *children(source, dirs=True)):
        if any(NEURITE_FOLDER.fullmatch(d.name) for d in children(folder, dirs=True)):
            return folder
    return None


def learn2reg_root(source: Path) -> Path | None:
    """``source`` or its child folder that holds Learn2Reg's ``imagesTr`` of ``OASIS_xxxx_0000`` files, or None."""
    for folder in (source, *children(source, dirs=True)):
        images = child(folder, "imagesTr")
        if images is not None and any(L2R_IMAGE.fullmatch(p.name) for p in children(images, dirs=False)):
            return folder
    return None


def neurite_subjects(root: Path) -> list[tuple[str, str, Path]]:
    """``(case id OAS1_0001_MR1, patient OAS1_0001, folder)`` of every subject folder below ``root``."""
    out = []
    for folder in children(root, dirs=True):
        match = NEURITE_FOLDER.fullmatch(folder.name)
        if match:
            case_id = match.group(1).upper()
            out.append((case_id, case_id.rsplit("_", 1)[0], folder))
    return out


def neurite_file(folder: Path, stem: str) -> tuple[Path, tuple[str, ...]]:
    """``folder/stem.nii.gz`` (any NIfTI ending) and, when it is missing, a problem sentence naming it."""
    found = find_nifti(folder, stem)
    if found is None:
        return folder / f"{stem}.nii.gz", (f"no {stem}.nii.gz in {folder}",)
    return found, ()


def _neurite(root: Path, labels: str, space: str) -> tuple[list[Case], dict[int, str], str]:
    table_file = child(root, f"{labels}_labels.txt")
    if table_file is None:
        raise NnunetTransferError(f"{root} has no {labels}_labels.txt (the FreeSurfer colour table of the {labels} "
                                  f"segmentation that neurite-oasis ships beside the subject folders)")
    prefix = "aligned_" if space == "aligned" else ""
    cases = []
    for case_id, patient, folder in neurite_subjects(root):
        image, image_problem = neurite_file(folder, f"{prefix}norm")
        mask, mask_problem = neurite_file(folder, f"{prefix}{labels}")
        cases.append(Case(case_id, (image,), (mask,), patient=patient, problems=image_problem + mask_problem))
    return cases, read_colour_table(table_file), f"{prefix}norm.nii.gz with {prefix}{labels}.nii.gz"


def _learn2reg(root: Path) -> tuple[list[Case], dict[int, str], str]:
    labels_tr = child(root, "labelsTr")
    cases = []
    for split, folder_name in (("train", "imagesTr"), ("test", "imagesTs")):
        for image in walk_files(child(root, folder_name) or root / folder_name, L2R_IMAGE):
            case_id = L2R_IMAGE.fullmatch(image.name).group(1).upper()
            masks: tuple[Path, ...] = ()
            problems: tuple[str, ...] = ()
            if split == "train":
                # Learn2Reg keeps the channel suffix on label files: labelsTr/OASIS_0001_0000.nii.gz
                label = find_nifti(labels_tr, f"{case_id}_0000") if labels_tr else None
                masks = (label,) if label else ()
                problems = () if label else (f"no label file labelsTr/{case_id}_0000.nii.gz for {image}",)
            cases.append(Case(case_id, (image,), masks, split, patient=case_id, problems=problems))
    table_file = child(root, "seg35_labels.txt")
    table = read_colour_table(table_file) if table_file else {v: f"label_{v}" for v in range(L2R_LABELS + 1)}
    return cases, table, "imagesTr/OASIS_xxxx_0000.nii.gz with labelsTr/OASIS_xxxx_0000.nii.gz"


class Oasis1Converter(Converter):
    key = "oasis1"
    title = "OASIS-1 brain anatomy (neurite-oasis or Learn2Reg OASIS)"
    default_name = "OASIS1"
    help = ("neurite-oasis (OASIS_OAS1_xxxx_MR1/aligned_norm + aligned_seg4 / aligned_seg35, colour tables) or the "
            "Learn2Reg OASIS release (imagesTr / labelsTr, 35 labels); the layout is detected")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--labels", choices=LABEL_SETS, default=None,
                            help="label set: seg4 (tissue classes, the neurite-oasis default) or seg35 (35 "
                                 "structures; the only set of the Learn2Reg release)")
        parser.add_argument("--space", choices=SPACES, default="aligned",
                            help="neurite-oasis only: aligned_* (affinely aligned, 160x192x224, default) or the "
                                 "native scanner-space norm / seg files (256^3)")

    def discover(self, source: Path, labels: str | None = None, space: str = "aligned") -> Conversion:
        if labels not in (None, *LABEL_SETS) or space not in SPACES:
            raise NnunetTransferError(f"--labels must be one of {LABEL_SETS} and --space one of {SPACES}; got "
                                      f"{labels!r} / {space!r}")
        root = neurite_root(source)
        if root is not None:
            labels = labels or "seg4"
            cases, table, expected = _neurite(root, labels, space)
            provenance, layout = NEURITE_PROVENANCE, "neurite-oasis"
        else:
            root = learn2reg_root(source)
            if root is None:
                raise NnunetTransferError(
                    f"{source} is neither neurite-oasis (OASIS_OAS1_xxxx_MR1/ subject folders with seg4_labels.txt) "
                    f"nor the Learn2Reg OASIS release (imagesTr/OASIS_xxxx_0000.nii.gz with labelsTr/); see the "
                    f"oasis1 how-to for the expected layouts")
            if labels == "seg4":
                raise NnunetTransferError(f"{root} is the Learn2Reg OASIS release, which has only the 35-label "
                                          f"segmentation; leave out --labels or pass --labels seg35")
            labels = "seg35"
            if space != "aligned":
                raise NnunetTransferError(f"{root} is the Learn2Reg OASIS release: it has only the aligned volumes "
                                          f"(leave out --space native)")
            cases, table, expected = _learn2reg(root)
            provenance, layout = L2R_PROVENANCE, "Learn2Reg"
        cases = require_cases(cases, root, expected)
        label_block, mapping = nnunet_labels(table)
        notes = [f"{layout} layout, {labels} labels"]
        if mapping != {v: v for v in mapping}:
            notes.append(f"label values renumbered to be consecutive: {mapping}")
        if layout == "Learn2Reg" and child(root, "seg35_labels.txt") is None:
            notes.append("Learn2Reg ships no colour table: labels are named label_<value>")
        return Conversion(
            name=self.default_name, channel_names={"0": "T1"}, labels=label_block, cases=cases,
            provenance=provenance, combine_masks=functools.partial(remap_labels, mapping=mapping),
            description=f"OASIS-1 T1 brain MRI (skull-stripped, bias-corrected) with automated FreeSurfer / SAMSEG "
                        f"{labels} anatomical labels ({layout} layout)",
            options={"labels": labels, "space": space}, notes=notes)
