"""OASIS-1 T1 MRI as a classification source: CDR, sex or age bins from ``oasis_cross-sectional.csv``.

Images come from neurite-oasis (``OASIS_OAS1_0001_MR1/aligned_norm.nii.gz``, see
:mod:`nnunet_transfer.conversion.oasis1`) or from the original OASIS-1 discs::

    disc1/OAS1_0001_MR1/PROCESSED/MPRAGE/T88_111/OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr (+ .img)

(atlas-registered, skull-stripped, gain-field corrected; reliability rescans ``OAS1_xxxx_MR2``
included and grouped with MR1 in the patient-level split). Labels come from the demographics
table (``ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay``; blank CDR / MMSE for the
young subjects, ``N/A`` in Delay). A case without a usable value is left out and listed in the
conversion's notes, not an error. Label maps are the ``head`` placeholder (nnU-Net needs
foreground voxels); the classes go to ``class_labels.json``.
"""
from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path

from nnunet_transfer.conversion.common import Case, Conversion, Converter, Provenance, child, walk_files
from nnunet_transfer.conversion.oasis1 import (NEURITE_PROVENANCE, OASIS_CITATION, OASIS_TERMS, neurite_file,
                                               neurite_root, neurite_subjects)
from nnunet_transfer.errors import NnunetTransferError

CSV_NAME = "oasis_cross-sectional.csv"
DISC_IMAGE = re.compile(r"(OAS1_(\d{4})_MR\d+)_mpr_n\d+_anon_111_t88_masked_gfc\.(?:hdr|nii|nii\.gz)", re.IGNORECASE)
LABELS = ("cdr", "sex", "age-bins")
COLUMNS = {"cdr": "CDR", "sex": "M/F", "age-bins": "Age"}
CDR_CLASSES = {0.0: "cdr0", 0.5: "cdr0.5", 1.0: "cdr1", 2.0: "cdr2"}  # the ratings OASIS-1 holds
SEX_CLASSES = {"F": "female", "M": "male"}
DEFAULT_AGE_BINS = "40,60,80"
MISSING = ("", "N/A", "NA", "NaN")
DISC_PROVENANCE = Provenance(title="OASIS-1 cross-sectional MRI (original discs)", release="OASIS-1",
                             url="https://sites.wustl.edu/oasisbrains/", licence=OASIS_TERMS, citation=OASIS_CITATION)


# ---------------------------------------------------------------------------- age bins (shared with ixi)

def parse_age_bins(text: str) -> list[float]:
    """``"40,60,80"`` -> ``[40.0, 60.0, 80.0]``; raises NnunetTransferError unless increasing numbers."""
    try:
        edges = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        edges = []
    if not edges or any(b <= a for a, b in itertools.pairwise(edges)):
        raise NnunetTransferError(f"--age-bins {text!r}: expected increasing ages in years separated by commas, "
                                  f"e.g. {DEFAULT_AGE_BINS}")
    return edges


def _years(value: float) -> str:
    return f"{value:g}"


def age_bin_names(edges: list[float]) -> list[str]:
    """Class names of the half-open bins ``[-inf, e1), [e1, e2), ..., [ek, inf)``: ``age_lt40``,
    ``age_40_60``, ``age_60_80``, ``age_ge80`` for edges 40, 60, 80."""
    inner = [f"age_{_years(a)}_{_years(b)}" for a, b in itertools.pairwise(edges)]
    return [f"age_lt{_years(edges[0])}", *inner, f"age_ge{_years(edges[-1])}"]


def age_bin(age: float, edges: list[float]) -> str:
    """The class name of ``age`` (years) among :func:`age_bin_names` (a bin includes its lower edge)."""
    return age_bin_names(edges)[sum(age >= e for e in edges)]


def group_left_out(left_out: dict[str, str], label: str) -> list[str]:
    """Notes listing the left-out case ids grouped by reason (one note per reason)."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for case_id, reason in sorted(left_out.items()):
        by_reason[reason].append(case_id)
    return [f"left out {len(ids)} case(s) that cannot be labelled by {label} ({reason}): {', '.join(ids)}"
            for reason, ids in by_reason.items()]


# ---------------------------------------------------------------------------- demographics

def find_csv(source: Path, csv: str | None) -> Path:
    """``--csv`` if given, else ``oasis_cross-sectional.csv`` in SOURCE_DIR or the folder above it.

    Raises NnunetTransferError naming where it looked.
    """
    if csv:
        if not Path(csv).is_file():
            raise NnunetTransferError(f"--csv {csv} is not a file; expected the OASIS-1 demographics {CSV_NAME}")
        return Path(csv)
    for folder in (source, source.parent):
        found = child(folder, CSV_NAME)
        if found is not None and found.is_file():
            return found
    raise NnunetTransferError(f"no {CSV_NAME} in {source} or {source.parent}; download the OASIS-1 demographics "
                              f"table from https://sites.wustl.edu/oasisbrains/ next to the images, or pass --csv")


def read_demographics(path: Path, column: str) -> dict[str, set[str]]:
    """``session ID (upper case) -> set of values of column`` (blank / ``N/A`` kept as ``""``).

    A set so that a repeated row with another value shows up as a conflict. Raises
    NnunetTransferError when the file lacks the ``ID`` column or ``column``.
    """
    import pandas

    table = pandas.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [str(c).strip().lstrip("\ufeff") for c in table.columns]
    missing = [c for c in ("ID", column) if c not in table.columns]
    if missing:
        raise NnunetTransferError(f"{path} has no column(s) {missing}; expected the OASIS-1 cross-sectional table "
                                  f"with columns ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay")
    values: dict[str, set[str]] = defaultdict(set)
    for session, value in zip(table["ID"], table[column]):
        value = value.strip()
        values[session.strip().upper()].add("" if value in MISSING else value)
    return values


def class_of(values: set[str] | None, label: str, edges: list[float]) -> tuple[str | None, str]:
    """(class name, '') for one session's csv values, or (None, why it cannot be labelled)."""
    column = COLUMNS[label]
    if values is None:
        return None, f"no row in {CSV_NAME}"
    given = values - {""}
    if not given:
        return None, f"blank {column}"
    if len(given) > 1:
        return None, f"rows disagree on {column}: {sorted(given)}"
    value = given.pop()
    if label == "sex":
        name = SEX_CLASSES.get(value.upper())
        return (name, "") if name else (None, f"{column} {value!r} is not M or F")
    try:
        number = float(value)
    except ValueError:
        return None, f"{column} {value!r} is not a number"
    if label == "age-bins":
        return age_bin(number, edges), ""
    name = CDR_CLASSES.get(number)
    return (name, "") if name else (None, f"CDR {value} is not one of 0, 0.5, 1, 2")


# ---------------------------------------------------------------------------- images

def find_images(source: Path) -> tuple[list[tuple[str, str, Path, tuple[str, ...]]], Provenance, str]:
    """``(session id, patient, image, problems)`` of every session, the provenance and the layout's name.

    neurite-oasis first (``aligned_norm``), else the original discs (``*_t88_masked_gfc``). Raises
    NnunetTransferError when ``source`` holds neither.
    """
    root = neurite_root(source)
    if root is not None:
        found = []
        for session, patient, folder in neurite_subjects(root):
            image, problems = neurite_file(folder, "aligned_norm")
            found.append((session, patient, image, problems))
        return found, NEURITE_PROVENANCE, "neurite-oasis aligned_norm"
    found = [(m.group(1).upper(), f"OAS1_{m.group(2)}", path, ())
             for path in walk_files(source, DISC_IMAGE) for m in [DISC_IMAGE.fullmatch(path.name)]]
    if not found:
        raise NnunetTransferError(f"{source} holds neither neurite-oasis subject folders (OASIS_OAS1_xxxx_MR1/"
                                  f"aligned_norm.nii.gz) nor OASIS-1 disc images (discN/OAS1_xxxx_MR1/PROCESSED/MPRAGE/"
                                  f"T88_111/*_t88_masked_gfc.hdr); see the oasis1-cls how-to")
    return found, DISC_PROVENANCE, "OASIS-1 disc T88_111 masked_gfc"


class Oasis1ClassificationConverter(Converter):
    key = "oasis1-cls"
    title = "OASIS-1 T1 MRI classified by CDR, sex or age (oasis_cross-sectional.csv)"
    default_name = "OASIS1cls"
    help = ("neurite-oasis aligned_norm or the OASIS-1 discs' T88 masked images, with classes from the "
            "demographics table; unlabelled sessions are left out and listed")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--label", choices=LABELS, default="cdr",
                            help="class: cdr (Clinical Dementia Rating 0 / 0.5 / 1 / 2, default), sex (M/F) or "
                                 "age-bins")
        parser.add_argument("--age-bins", default=DEFAULT_AGE_BINS,
                            help=f"bin edges in years for --label age-bins (default {DEFAULT_AGE_BINS}: <40, "
                                 f"40-60, 60-80, >=80)")
        parser.add_argument("--csv", default=None,
                            help=f"the demographics table (default: {CSV_NAME} in SOURCE_DIR or the folder above)")

    def discover(self, source: Path, label: str = "cdr", age_bins: str = DEFAULT_AGE_BINS,
                 csv: str | None = None) -> Conversion:
        if label not in LABELS:
            raise NnunetTransferError(f"--label must be one of {', '.join(LABELS)}, got {label!r}")
        edges = parse_age_bins(age_bins)
        sessions, provenance, layout = find_images(source)
        table_file = find_csv(source, csv)
        table = read_demographics(table_file, COLUMNS[label])
        cases, left_out = [], {}
        for session, patient, image, problems in sessions:
            name, reason = class_of(table.get(session), label, edges)
            if name is None:
                left_out[session] = reason
            else:
                cases.append(Case(session, (image,), patient=patient, class_name=name, problems=problems))
        if not cases:
            raise NnunetTransferError(f"none of the {len(sessions)} session(s) in {source} can be labelled by "
                                      f"{label} from {table_file}: " + "; ".join(group_left_out(left_out, label)))
        class_names = {"cdr": list(CDR_CLASSES.values()), "sex": list(SEX_CLASSES.values()),
                       "age-bins": age_bin_names(edges)}[label]
        patients = [c.patient for c in cases]
        return Conversion(
            name=self.default_name, channel_names={"0": "T1"}, labels={"background": 0, "head": 1}, cases=cases,
            provenance=provenance, placeholder="head", class_names=class_names,
            patient_split=len(set(patients)) < len(patients),
            description=f"OASIS-1 T1 MRI ({layout}) classified by {label} from {CSV_NAME}; label maps are head "
                        f"placeholders",
            options={"label": label, "age_bins": age_bins, "csv": csv},
            notes=[f"classes from {table_file.name} column {COLUMNS[label]}: {', '.join(class_names)}",
                   *group_left_out(left_out, label)])
