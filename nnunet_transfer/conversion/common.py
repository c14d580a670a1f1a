"""What every converter shares: the case / conversion types, the converter base class and file finding.

A converter is one small class per public dataset. Its ``discover`` walks the download as
published and returns a :class:`Conversion`: the cases (image files per channel, mask files,
split, patient, class), the nnU-Net labels and channel names, how mask files become one label
map, and the dataset's provenance. Reading, validating and writing are shared
(:mod:`nnunet_transfer.conversion.validate`, :mod:`nnunet_transfer.conversion.run`).
"""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nnunet_transfer.errors import NnunetTransferError

STRAY_NAMES = {"__macosx", "thumbs.db", "desktop.ini"}


class CaseProblem(Exception):
    """A problem with one case (unexpected label values, ...), collected instead of stopping."""


@dataclass(frozen=True)
class Case:
    """One case of a download, as found by a converter.

    ``images``: one file per channel in channel order (one RGB picture for natural images);
    ``masks``: the files the conversion's ``combine_masks`` turns into the label map (several
    raters, several lesion files to OR); empty for unlabelled cases. ``split`` is ``"train"``
    (imagesTr / labelsTr) or ``"test"`` (imagesTs, plus labelsTs when masks exist). ``patient``
    groups time points of one subject for the patient-level split; ``class_name`` is the
    classification label of a classification source. ``problems`` are found while discovering
    (a missing mask, ...) and make the case bad without reading it.
    """

    case_id: str
    images: tuple[Path, ...]
    masks: tuple[Path, ...] = ()
    split: str = "train"
    patient: str | None = None
    class_name: str | None = None
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.split not in ("train", "test"):
            raise ValueError(f"Case.split must be 'train' or 'test', got {self.split!r}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", self.case_id):
            raise ValueError(f"case id {self.case_id!r}: use letters, digits, '_' and '-' only")


@dataclass(frozen=True)
class Provenance:
    """Where a dataset comes from and what using it requires; written into dataset.json."""

    title: str
    url: str
    licence: str
    citation: str
    release: str = ""


@dataclass
class Conversion:
    """Everything the shared writer needs to turn found cases into an nnU-Net raw dataset.

    ``labels``: nnU-Net's ``labels`` block (background first; an ``ignore`` label last).
    ``combine_masks``: mask arrays of one case (in ``Case.masks`` order) -> one integer label
    map; raises :class:`CaseProblem` for unexpected values. It must be picklable (a module-level
    function or a ``functools.partial`` of one) because cases are read in worker processes.
    ``placeholder``: label map for cases without masks: ``"head"`` (Otsu threshold of the
    first channel; nnU-Net's fingerprint needs foreground voxels) or ``"picture"`` (every pixel);
    None when every training case has masks. ``kind``: ``"nifti"`` volumes or ``"natural"`` 2D
    pictures (RGB PNG). ``resize_shorter``: natural pictures only, shorter side in pixels.
    """

    name: str
    channel_names: dict[str, str]
    labels: dict[str, Any]
    cases: list[Case]
    provenance: Provenance
    description: str
    combine_masks: Callable[[list[np.ndarray]], np.ndarray] | None = None
    placeholder: str | None = None
    kind: str = "nifti"
    class_names: list[str] | None = None
    patient_split: bool = False
    resize_shorter: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Human-readable meaning of each class name (ImageNet synset id -> "tench, Tinca tinca"); dataset.json.
    class_descriptions: dict[str, str] | None = None

    @property
    def file_ending(self) -> str:
        return ".png" if self.kind == "natural" else ".nii.gz"

    def label_values(self) -> set[int]:
        """Every integer a written label map may contain (region labels flattened)."""
        values: set[int] = set()
        for v in self.labels.values():
            values.update(v if isinstance(v, (list, tuple)) else [v])
        return {int(v) for v in values}


class Converter:
    """Base class of one public dataset's converter: find cases, say how to read them.

    Subclasses set ``key`` (the ``convert`` sub-command), ``title`` and ``default_name``, add
    their own options in ``add_arguments`` (their ``dest`` names are ``discover``'s keyword
    arguments) and implement ``discover``. ``discover`` raises NnunetTransferError when the
    folder does not look like the dataset at all, naming what it expected.
    """

    key: ClassVar[str]
    title: ClassVar[str]
    default_name: ClassVar[str]
    help: ClassVar[str] = ""

    def add_arguments(self, parser: argparse._ArgumentGroup) -> None:  # noqa: B027 - optional hook
        """Add dataset-specific options to ``parser`` (an argument group of the sub-command)."""

    def discover(self, source: Path, **options: Any) -> Conversion:
        raise NotImplementedError


# ---------------------------------------------------------------------------- finding files

def is_hidden_or_stray(path: Path) -> bool:
    """Hidden files (``.DS_Store``, ``._x.nii.gz``), OS metadata folders and stray files."""
    return path.name.startswith(".") or path.name.lower() in STRAY_NAMES


def children(folder: Path, dirs: bool | None = None) -> list[Path]:
    """Sorted entries of ``folder`` without hidden / stray ones; only folders (True) or files (False)."""
    if not folder.is_dir():
        return []
    out = [p for p in folder.iterdir() if not is_hidden_or_stray(p)]
    if dirs is not None:
        out = [p for p in out if p.is_dir() == dirs]
    return sorted(out, key=lambda p: p.name)


def child(folder: Path, *names: str) -> Path | None:
    """The entry of ``folder`` whose name equals one of ``names`` ignoring letter case, or None."""
    wanted = [n.lower() for n in names]
    found = {p.name.lower(): p for p in children(folder)}
    return next((found[n] for n in wanted if n in found), None)


def require_child(folder: Path, *names: str, what: str) -> Path:
    """Like :func:`child` but raises NnunetTransferError that names the folder and what was expected."""
    found = child(folder, *names)
    if found is None:
        raise NnunetTransferError(f"{folder} has no {' or '.join(names)} ({what}); is this the extracted download? "
                                  f"See the dataset's how-to for the expected layout.")
    return found


def walk_files(root: Path, pattern: str | re.Pattern) -> Iterator[Path]:
    """Files below ``root`` (sorted, hidden / stray entries and their contents skipped) whose name matches
    ``pattern`` (a regular expression, matched case-insensitively against the whole name)."""
    regex = re.compile(pattern, re.IGNORECASE) if isinstance(pattern, str) else pattern
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden_or_stray(Path(d)))
        for name in sorted(filenames):
            if not is_hidden_or_stray(Path(name)) and regex.fullmatch(name):
                yield Path(dirpath) / name


def nifti_pattern(stem: str) -> str:
    """Regular expression for ``stem`` followed by a NIfTI / Analyze ending (``.nii``, ``.nii.gz``, ``.hdr``)."""
    return stem + r"\.(?:nii|nii\.gz|hdr)"


def find_nifti(folder: Path, stem: str) -> Path | None:
    """The NIfTI / Analyze file ``stem.nii[.gz]`` / ``stem.hdr`` directly in ``folder`` (case-insensitive)."""
    regex = re.compile(nifti_pattern(re.escape(stem)), re.IGNORECASE)
    return next((p for p in children(folder, dirs=False) if regex.fullmatch(p.name)), None)


def check_modalities(modalities: Sequence[str], allowed: Iterable[str]) -> list[str]:
    """``modalities`` as a list when each is one of ``allowed`` and none repeats (and there is one).

    Raises NnunetTransferError naming the option, the allowed names and the unknown ones.
    """
    modalities, allowed = list(modalities), list(allowed)
    unknown = [m for m in modalities if m not in allowed]
    if not modalities or unknown or len(set(modalities)) != len(modalities):
        raise NnunetTransferError(f"--modalities {' '.join(modalities)}: give each of {', '.join(allowed)} at most "
                                  f"once (unknown: {unknown or 'none'})")
    return modalities


def require_cases(cases: Iterable[Case], source: Path, expected: str) -> list[Case]:
    """``cases`` as a list; raises NnunetTransferError naming ``expected`` when there are none."""
    cases = list(cases)
    if not cases:
        raise NnunetTransferError(f"found no cases in {source}; expected {expected}. Point SOURCE_DIR at the "
                                  f"extracted download (see the dataset's how-to).")
    return cases
