"""IXI T1: ~580 brain MRI of healthy adults from three London hospitals, unlabelled or classified by sex / age.

Layout of ``IXI-T1.tar`` extracted into ``IXI-T1/`` (the tar has no top folder), with the
demographics spreadsheet ``IXI.xls`` beside it::

    IXI-T1/IXI002-Guys-0828-T1.nii.gz   IXI012-HH-1211-T1.nii.gz   IXI013-IOP-0868-T1.nii.gz ...
    IXI.xls   (sheet "Table": IXI_ID, SEX_ID (1 male, 2 female), ..., AGE (years; 0 / blank unknown))

Case id ``IXI002``. Without a label the dataset is a pretraining source (head placeholder label
maps). With ``--label sex`` / ``age-bins`` the class comes from ``IXI.xls``; subjects without a row,
without a value, or with duplicate rows that disagree are left out and listed in the notes.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, child, nifti_pattern,
                                               require_cases, walk_files)
from nnunet_transfer.conversion.oasis1_cls import (DEFAULT_AGE_BINS, age_bin, age_bin_names, group_left_out,
                                                   parse_age_bins)
from nnunet_transfer.errors import NnunetTransferError

T1_PATTERN = re.compile(nifti_pattern(r"(IXI(\d+))-([A-Za-z]+)-(\d+)-T1"), re.IGNORECASE)
XLS_NAME = "IXI.xls"
SHEET = "Table"
LABELS = ("none", "sex", "age-bins")
SEX_CLASSES = {1: "male", 2: "female"}  # IXI.xls SEX_ID coding
CLASS_ORDER = {"sex": ["female", "male"]}

PROVENANCE = Provenance(
    title="IXI dataset (T1)", url="https://brain-development.org/ixi-dataset/",
    licence="CC BY-SA 3.0 (Creative Commons Attribution-ShareAlike 3.0 Unported)",
    citation="IXI dataset (Information eXtraction from Images), https://brain-development.org/ixi-dataset/")


def find_xls(source: Path, xls: str | None) -> Path:
    """``--xls`` if given, else ``IXI.xls`` in SOURCE_DIR or the folder above; raises NnunetTransferError."""
    if xls:
        if not Path(xls).is_file():
            raise NnunetTransferError(f"--xls {xls} is not a file; expected the IXI demographics {XLS_NAME}")
        return Path(xls)
    for folder in (source, source.parent):
        found = child(folder, XLS_NAME)
        if found is not None and found.is_file():
            return found
    raise NnunetTransferError(f"no {XLS_NAME} in {source} or {source.parent}; a class label needs the IXI "
                              f"demographics: download {XLS_NAME} from https://brain-development.org/ixi-dataset/ "
                              f"next to IXI-T1/, or pass --xls")


def read_demographics(path: Path, label: str) -> dict[int, set[float]]:
    """``IXI_ID -> set of known values`` of SEX_ID (``sex``) or AGE (``age-bins``) from ``IXI.xls``.

    Blank cells and AGE 0 count as unknown and are left out of the set; duplicate rows with the same
    value collapse, rows that disagree leave several values. Raises NnunetTransferError when the
    file is unreadable or lacks the sheet / columns.
    """
    import pandas

    column = "SEX_ID" if label == "sex" else "AGE"
    try:
        sheets = pandas.read_excel(path, sheet_name=None, engine="xlrd")
    except Exception as e:  # noqa: BLE001 - xlrd raises its own types for every kind of broken file
        raise NnunetTransferError(f"cannot read {path} as an Excel .xls file: {e}") from None
    table = sheets.get(SHEET)
    if table is None:
        raise NnunetTransferError(f"{path} has no sheet {SHEET!r} (found {list(sheets)}); expected IXI.xls as "
                                  f"published")
    table.columns = [str(c).strip() for c in table.columns]
    if "IXI_ID" not in table.columns or column not in table.columns:
        raise NnunetTransferError(f"{path} sheet {SHEET!r} lacks IXI_ID or {column} (columns: {list(table.columns)})")
    values: dict[int, set[float]] = defaultdict(set)
    for subject, value in zip(pandas.to_numeric(table["IXI_ID"], errors="coerce"),
                              pandas.to_numeric(table[column], errors="coerce")):
        if math.isnan(subject):  # an empty row
            continue
        entry = values[int(subject)]  # a row with an unknown value still says the subject is listed
        if not math.isnan(value) and value > 0:  # NaN (blank) and AGE 0 mean unknown
            entry.add(round(float(value), 2))
    return values


def class_of(subject: int, table: dict[int, set[float]], label: str, edges: list[float]) -> tuple[str | None, str]:
    """(class name, '') for one subject, or (None, why it cannot be labelled)."""
    column = "SEX_ID" if label == "sex" else "AGE"
    if subject not in table:
        return None, f"no row in {XLS_NAME}"
    values = table[subject]
    if not values:
        return None, f"no {column} (blank{' or 0' if label == 'age-bins' else ''})"
    if len(values) > 1:
        return None, f"duplicate rows disagree on {column}: {' vs '.join(f'{v:g}' for v in sorted(values))}"
    value = next(iter(values))
    if label == "age-bins":
        return age_bin(value, edges), ""
    name = SEX_CLASSES.get(int(value)) if value == int(value) else None
    return (name, "") if name else (None, f"SEX_ID {value:g} is not 1 (male) or 2 (female)")


class IxiConverter(Converter):
    key = "ixi"
    title = "IXI T1 brain MRI of healthy adults (unlabelled, or sex / age classes)"
    default_name = "IXI_T1"
    help = ("the extracted IXI-T1.tar (IXI002-Guys-0828-T1.nii.gz ...); classes from IXI.xls with --label, "
            "otherwise unlabelled with head placeholder label maps")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--label", choices=LABELS, default="none",
                            help="none (unlabelled pretraining source, default), sex (SEX_ID) or age-bins (AGE)")
        parser.add_argument("--age-bins", default=DEFAULT_AGE_BINS,
                            help=f"bin edges in years for --label age-bins (default {DEFAULT_AGE_BINS}: <40, "
                                 f"40-60, 60-80, >=80)")
        parser.add_argument("--xls", default=None,
                            help=f"the demographics spreadsheet (default: {XLS_NAME} in SOURCE_DIR or the folder "
                                 f"above); only read with --label sex / age-bins")

    def discover(self, source: Path, label: str = "none", age_bins: str = DEFAULT_AGE_BINS,
                 xls: str | None = None) -> Conversion:
        if label not in LABELS:
            raise NnunetTransferError(f"--label must be one of {', '.join(LABELS)}, got {label!r}")
        edges = parse_age_bins(age_bins)
        found = [(T1_PATTERN.fullmatch(p.name), p) for p in walk_files(source, T1_PATTERN)]
        cases = require_cases((Case(m.group(1).upper(), (p,), patient=m.group(1).upper()) for m, p in found), source,
                              "IXI T1 files such as IXI002-Guys-0828-T1.nii.gz (extract IXI-T1.tar into a folder)")
        hospitals = sorted({m.group(3) for m, _ in found})
        notes = [f"{len(cases)} T1 volume(s) from {', '.join(hospitals)}"]
        class_names = None
        if label != "none":
            xls_file = find_xls(source, xls)
            table = read_demographics(xls_file, label)
            left_out: dict[str, str] = {}
            labelled = []
            for (m, _), case in zip(found, cases):
                name, reason = class_of(int(m.group(2)), table, label, edges)
                if name is None:
                    left_out[case.case_id] = reason
                else:
                    labelled.append(Case(case.case_id, case.images, patient=case.patient, class_name=name))
            if not labelled:
                raise NnunetTransferError(f"none of the {len(cases)} IXI subject(s) in {source} can be labelled by "
                                          f"{label} from {xls_file}: " + "; ".join(group_left_out(left_out, label)))
            cases = labelled
            class_names = CLASS_ORDER.get(label) or age_bin_names(edges)
            notes += [f"classes from {xls_file.name}: {', '.join(class_names)}", *group_left_out(left_out, label)]
        return Conversion(
            name=self.default_name, channel_names={"0": "T1"}, labels={"background": 0, "head": 1}, cases=cases,
            provenance=PROVENANCE, placeholder="head", class_names=class_names,
            description="IXI T1-weighted brain MRI of healthy adults (Guys, HH, IOP); label maps are head placeholders"
                        + (f"; classes: {label} from {XLS_NAME}" if label != "none" else ""),
            options={"label": label, "age_bins": age_bins, "xls": xls}, notes=notes)
