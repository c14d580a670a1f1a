"""ImageNet ILSVRC2012 classification (1000 classes): JPEG pictures in one folder per WordNet synset.

Two published layouts, told apart automatically::

    official (image-net.org): ILSVRC2012_img_train.tar -> train/n01440764/n01440764_10026.JPEG
        ILSVRC2012_img_val.tar -> val/ILSVRC2012_val_00000001.JPEG (flat), labelled by the devkit
        ILSVRC2012_devkit_t12/data/{meta.mat, ILSVRC2012_validation_ground_truth.txt}
        (or val/ already sorted into synset folders)
    Kaggle (imagenet-object-localization-challenge): ILSVRC/Data/CLS-LOC/{train,val,test}/
        LOC_synset_mapping.txt ("n01440764 tench, Tinca tinca"), LOC_val_solution.csv
        (ImageId,PredictionString; the string starts with the synset)

Every picture becomes a training case of a classification source: class = synset id (classes in
sorted synset order, as torchvision numbers them), the ``picture`` placeholder label map, the
shorter side resized to ``--size``. Case id: the file stem (``n01440764_10026``,
``ILSVRC2012_val_00000001``). Pictures are read from their content (one "JPEG" of the release is a
PNG, 22 are CMYK, some are greyscale; all become RGB).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, child, children,
                                               require_cases)
from nnunet_transfer.errors import NnunetTransferError

SYNSET = re.compile(r"n\d{8}")
PICTURE = re.compile(r".+\.jpe?g", re.IGNORECASE)
VAL_NAME = re.compile(r"(ILSVRC2012_val_(\d{8}))\.jpe?g", re.IGNORECASE)
DEVKIT_DATA = ("ILSVRC2012_devkit_t12", "data")

PROVENANCE = Provenance(
    title="ImageNet Large Scale Visual Recognition Challenge 2012 (ILSVRC2012) classification", release="ILSVRC2012",
    url="https://image-net.org/",
    licence="ImageNet terms of access: non-commercial research and educational use only; the pictures belong to "
            "their owners and ImageNet does not own their copyright",
    citation="Russakovsky O, Deng J, Su H, Krause J, Satheesh S, Ma S, Huang Z, Karpathy A, Khosla A, Bernstein M, "
             "Berg AC, Fei-Fei L. ImageNet Large Scale Visual Recognition Challenge. International Journal of "
             "Computer Vision 115, 211-252 (2015). doi:10.1007/s11263-015-0816-y")


def _layout(source: Path) -> tuple[Path, Path, str]:
    """(folder holding train/ val/, folder of the label files, "kaggle" or "official")."""
    # SOURCE_DIR may be the extracted Kaggle folder or its ILSVRC/ (never a sibling of another download)
    for root in (source, source.parent) if source.name.upper() == "ILSVRC" else (source,):
        cls_loc = child(root, "ILSVRC")
        for name in ("Data", "CLS-LOC"):
            cls_loc = child(cls_loc, name) if cls_loc is not None else None
        if cls_loc is not None:
            return cls_loc, root, "kaggle"
    if child(source, "train") is not None or child(source, "val") is not None:
        return source, source, "official"
    raise NnunetTransferError(f"{source} has neither ILSVRC/Data/CLS-LOC (the Kaggle download) nor train/ or val/ "
                              f"(the image-net.org ILSVRC2012 tars extracted); see the imagenet how-to for the layouts")


def _descriptions(root: Path) -> dict[str, str]:
    """Synset -> human-readable words, from LOC_synset_mapping.txt or the devkit's meta.mat ({} if neither)."""
    mapping = child(root, "LOC_synset_mapping.txt")
    if mapping is not None:
        pairs = (line.strip().split(" ", 1) for line in mapping.read_text().splitlines() if line.strip())
        return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}
    return {wnid: words for wnid, (_, words) in _devkit_synsets(root).items()}


def _devkit_synsets(root: Path) -> dict[str, tuple[int, str]]:
    """Synset -> (ILSVRC2012_ID, words) of the 1000 classes in the devkit's meta.mat ({} without a devkit)."""
    meta = root.joinpath(*DEVKIT_DATA, "meta.mat")
    if not meta.is_file():
        return {}
    from scipy.io import loadmat  # heavy: only when the devkit is used

    synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
    # meta.mat also lists the 860 inner WordNet nodes (IDs 1001-1860); the classes are the leaves
    return {str(s["WNID"]): (int(s["ILSVRC2012_ID"]), str(s["words"])) for s in synsets.ravel()
            if int(s["num_children"]) == 0}


def _folder_pictures(folder: Path) -> dict[str, list[Path]]:
    """Synset -> pictures of a folder with one sub-folder per synset (other entries are skipped)."""
    return {d.name: [p for p in children(d, dirs=False) if PICTURE.fullmatch(p.name)]
            for d in children(folder, dirs=True) if SYNSET.fullmatch(d.name)}


def _flat_val_labels(root: Path, kind: str, val: Path) -> tuple[dict[str, str], Path]:
    """(val image id -> synset, the file that says so) for a flat val/ folder: LOC_val_solution.csv or the devkit."""
    if kind == "kaggle":
        solution = child(root, "LOC_val_solution.csv")
        if solution is None:
            raise NnunetTransferError(f"{root} has no LOC_val_solution.csv, which holds the classes of the flat "
                                      f"{val}; it is part of the Kaggle download")
        with solution.open(newline="") as f:
            return {row["ImageId"]: row["PredictionString"].split()[0] for row in csv.DictReader(f)
                    if (row.get("PredictionString") or "").strip()}, solution
    truth = root.joinpath(*DEVKIT_DATA, "ILSVRC2012_validation_ground_truth.txt")
    by_id = {index: wnid for wnid, (index, _) in _devkit_synsets(root).items()}
    if not truth.is_file() or not by_id:
        raise NnunetTransferError(f"{val} holds the validation pictures without class folders; their classes are in "
                                  f"the devkit: extract ILSVRC2012_devkit_t12.tar.gz into {root} (expected "
                                  f"{truth} and meta.mat beside it), or sort val/ into synset folders")
    lines = [int(x) for x in truth.read_text().split()]
    # line i holds the ILSVRC2012_ID of ILSVRC2012_val_<i>; an ID that is no class leaves the picture unlabelled
    return {f"ILSVRC2012_val_{i:08d}": by_id[n] for i, n in enumerate(lines, 1) if n in by_id}, truth


def _val_cases(root: Path, kind: str, val: Path) -> dict[str, list[Case]]:
    """Synset -> cases of the validation split (flat, labelled by file, or in synset folders)."""
    folders = _folder_pictures(val)
    if folders:
        return {s: [Case(p.stem, (p,), class_name=s) for p in pictures] for s, pictures in folders.items()}
    labels, labels_file = _flat_val_labels(root, kind, val)
    out: dict[str, list[Case]] = {}
    for picture in children(val, dirs=False):
        match = VAL_NAME.fullmatch(picture.name)
        if match is None:
            continue
        synset = labels.get(match.group(1))
        problems = () if synset else (f"{picture} has no class in {labels_file}",)
        out.setdefault(synset or "", []).append(Case(match.group(1), (picture,), class_name=synset,
                                                     problems=problems))
    return out


def _select(by_class: dict[str, list[Case]], classes: list[str], per_class: int | None) -> list[Case]:
    """The cases of ``classes`` (and unlabelled bad ones), the first ``per_class`` by file name per class."""
    cases = list(by_class.get("", []))
    for synset in classes:
        found = sorted(by_class.get(synset, []), key=lambda c: c.images[0].name)
        cases += found[:per_class] if per_class else found
    return cases


def _parse_classes(classes: list[str] | str | None) -> list[str] | None:
    if classes is None:
        return None
    items = [classes] if isinstance(classes, str) else list(classes)
    wanted = [s for item in items for s in re.split(r"[,\s]+", item) if s]
    bad = [s for s in wanted if not SYNSET.fullmatch(s)]
    if bad or not wanted:
        raise NnunetTransferError(f"--classes takes WordNet synset ids such as n01440764, got {bad or classes}")
    return sorted(set(wanted))


class ImagenetConverter(Converter):
    key = "imagenet"
    title = "ImageNet ILSVRC2012 classification (1000 classes)"
    default_name = "ImageNet"
    help = ("image-net.org tars extracted (train/n*/, val/ with the devkit) or the Kaggle download "
            "(ILSVRC/Data/CLS-LOC); one split as a classification source")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--split", choices=("train", "val"), default="train",
                            help="which ImageNet split to convert (default train); both go to imagesTr")
        parser.add_argument("--classes", nargs="+", default=None, metavar="SYNSET",
                            help="only these synset ids (e.g. n01440764 n02102040; commas work too); default all")
        parser.add_argument("--per-class", type=int, default=None, metavar="N",
                            help="only the first N pictures of each class, in file-name order (deterministic)")
        parser.add_argument("--size", type=int, default=128, metavar="PIXELS",
                            help="resize so that the shorter side has PIXELS pixels (default 128; 0: original size)")

    def discover(self, source: Path, split: str = "train", classes: list[str] | None = None,
                 per_class: int | None = None, size: int = 128) -> Conversion:
        if split not in ("train", "val"):
            raise NnunetTransferError(f"--split must be train or val, got {split!r}")
        if per_class is not None and per_class < 1:
            raise NnunetTransferError(f"--per-class must be at least 1, got {per_class}")
        if size and size < 8:
            raise NnunetTransferError(f"--size must be 0 (original size) or at least 8 pixels, got {size}")
        data, root, kind = _layout(source)
        folder = child(data, split)
        if folder is None:
            raise NnunetTransferError(f"{data} has no {split}/ folder (the ILSVRC2012 {split} pictures); see the "
                                      f"imagenet how-to for the expected layout")
        if split == "train":
            by_class = {s: [Case(p.stem, (p,), class_name=s) for p in pictures]
                        for s, pictures in _folder_pictures(folder).items()}
        else:
            by_class = _val_cases(root, kind, folder)
        descriptions = _descriptions(root)
        available = sorted((set(descriptions) or set(by_class)) - {""})
        wanted = _parse_classes(classes)
        if wanted is not None:
            unknown = [s for s in wanted if s not in available]
            if unknown:
                raise NnunetTransferError(f"--classes {unknown[:10]} are not ImageNet classes of this download "
                                          f"({len(available)} found, e.g. {available[:3]})")
        class_names = wanted or available
        expected = f"{split}/n01440764/*.JPEG (one folder per synset)" if split == "train" else \
            f"{split}/ILSVRC2012_val_00000001.JPEG"
        cases = require_cases(_select(by_class, class_names, per_class), folder, expected)
        empty = [s for s in class_names if not by_class.get(s)]
        return Conversion(
            name=self.default_name, channel_names={"0": "R", "1": "G", "2": "B"},
            labels={"background": 0, "foreground": 1}, cases=cases, provenance=PROVENANCE, placeholder="picture",
            kind="natural", class_names=class_names, resize_shorter=size or None,
            class_descriptions={s: descriptions[s] for s in class_names if s in descriptions} or None,
            description=f"ImageNet ILSVRC2012 {split} pictures ({kind} layout), {len(class_names)} classes (WordNet "
                        f"synsets); label maps are placeholders (every pixel)",
            options={"split": split, "classes": wanted, "per_class": per_class, "size": size},
            notes=[f"classes without pictures in {split}/: {empty[:20]}"] if empty else [])
