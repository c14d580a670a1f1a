"""Any folder of natural pictures: unlabelled (flat) or one sub-folder per class (classification).

Layouts, told apart automatically::

    SOURCE_DIR/cat/IMG_0001.jpg, SOURCE_DIR/dog/photo 2.PNG, ...   one sub-folder per class
    SOURCE_DIR/IMG_0001.jpg, SOURCE_DIR/scan.tif, ...               pictures only: unlabelled

Pictures are ``.jpg .jpeg .png .bmp .tif .tiff`` in any letter case; hidden and other files are
skipped. Case id: the file stem with every run of characters other than letters, digits, ``_``
and ``-`` replaced by ``_``, prefixed by the sanitised class (``cat_IMG_0001``). Every training
case gets the ``picture`` placeholder label map (nnU-Net needs foreground in every label file).
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, children, require_cases,
                                               walk_files)
from nnunet_transfer.errors import NnunetTransferError

PICTURE_PATTERN = re.compile(r".+\.(?:jpe?g|png|bmp|tiff?)", re.IGNORECASE)
PROVENANCE = Provenance(
    title="a local folder of natural pictures", url="",
    licence="as set by the owner of the pictures (not known to the converter)",
    citation="cite the source of the pictures")


def sanitise(text: str) -> str:
    """``"photo (2)"`` -> ``"photo_2"``: runs of other characters become ``_``; never empty."""
    cleaned = re.sub(r"[^A-Za-z0-9_\-]+", "_", text).strip("_-")
    return cleaned or "picture"


def _pictures(folder: Path, recursive: bool) -> list[Path]:
    if recursive:
        return list(walk_files(folder, PICTURE_PATTERN))
    return [p for p in children(folder, dirs=False) if PICTURE_PATTERN.fullmatch(p.name)]


def _class_folders(source: Path) -> list[Path]:
    """Sub-folders of ``source`` holding pictures (at any depth below them)."""
    return [d for d in children(source, dirs=True) if next(walk_files(d, PICTURE_PATTERN), None) is not None]


def _unique(cases: list[Case], source: Path) -> list[Case]:
    """``cases``; raises NnunetTransferError naming the files of case ids that repeat after sanitising."""
    by_id: dict[str, list[Path]] = defaultdict(list)
    for case in cases:
        by_id[case.case_id].append(case.images[0])
    clashes = {k: v for k, v in by_id.items() if len(v) > 1}
    if clashes:
        shown = "; ".join(f"{k}: {', '.join(str(p.relative_to(source)) for p in v)}"
                          for k, v in list(clashes.items())[:5])
        raise NnunetTransferError(f"{len(clashes)} case id(s) would repeat ({shown}): file names must differ in "
                                  f"more than their ending or punctuation; rename or remove one of each")
    return cases


def _case_id(picture: Path, base: Path, prefix: str) -> str:
    """Sanitised stem, prefixed by ``prefix`` and the folders between ``base`` and the picture."""
    parts = [prefix] if prefix else []
    parts += [sanitise(p) for p in picture.relative_to(base).parent.parts]
    return "_".join([*parts, sanitise(picture.stem)])


class ImageFolderConverter(Converter):
    key = "image-folder"
    title = "any folder of natural pictures (unlabelled, or one sub-folder per class)"
    default_name = "ImageFolder"
    help = ("jpg / jpeg / png / bmp / tif pictures: directly in SOURCE_DIR (unlabelled) or in one sub-folder per "
            "class (classification, class_labels.json)")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-classes", action="store_true",
                            help="do not read classes from sub-folders: every picture below SOURCE_DIR is unlabelled")
        parser.add_argument("--size", type=int, default=None, metavar="PIXELS",
                            help="resize so that the shorter side has PIXELS pixels (default: keep the size)")

    def discover(self, source: Path, no_classes: bool = False, size: int | None = None) -> Conversion:
        if size is not None and size < 8:
            raise NnunetTransferError(f"--size must be at least 8 pixels, got {size}")
        top = _pictures(source, recursive=False)
        folders = [] if no_classes else _class_folders(source)
        if folders and top:
            raise NnunetTransferError(
                f"{source} holds pictures ({top[0].name}, ...) next to class sub-folders ({folders[0].name}, ...); "
                f"put every picture into its class folder, or pass --no-classes to convert all of them unlabelled")
        expected = "pictures (.jpg .jpeg .png .bmp .tif) directly in it or in one sub-folder per class"
        if folders:
            class_names = [d.name for d in folders]
            cases = [Case(_case_id(p, d, sanitise(d.name)), (p,), class_name=d.name)
                     for d in folders for p in _pictures(d, recursive=True)]
        else:
            class_names = None
            cases = [Case(_case_id(p, source, ""), (p,)) for p in _pictures(source, recursive=no_classes)]
        cases = _unique(require_cases(cases, source, expected), source)
        what = f"{len(class_names)} classes from sub-folders" if class_names else "unlabelled"
        return Conversion(
            name=self.default_name, channel_names={"0": "R", "1": "G", "2": "B"},
            labels={"background": 0, "foreground": 1}, cases=cases, provenance=PROVENANCE, placeholder="picture",
            kind="natural", class_names=class_names, resize_shorter=size,
            description=f"natural pictures from {source.name} ({what}); label maps are placeholders (every pixel)",
            options={"no_classes": no_classes, "size": size})
