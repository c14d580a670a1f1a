"""PASCAL VOC2012 semantic segmentation: JPEG pictures with palette-PNG class masks (20 classes).

Layout of ``VOCtrainval_11-May-2012.tar`` after extraction::

    VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg
    VOCdevkit/VOC2012/SegmentationClass/2007_000032.png     palette PNG: indices 0-20, 255 = void border
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt   one image id per line
    VOCdevkit/VOC2012/SegmentationObject/, Annotations/, ImageSets/Main/ ...   (not used)

1464 training and 1449 validation pictures have masks. Mask index 255 (void: object borders and
ambiguous pixels) becomes nnU-Net's ``ignore`` label 21, the highest label value as nnU-Net
requires. Case id: the image id (``2007_000032``).
"""
from __future__ import annotations

import functools
from pathlib import Path

from nnunet_transfer.conversion.common import (Case, Conversion, Converter, Provenance, child, require_cases,
                                               require_child)
from nnunet_transfer.conversion.validate import remap_labels
from nnunet_transfer.errors import NnunetTransferError

CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
           "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOID = 255
IGNORE = len(CLASSES) + 1  # 21: nnU-Net's ignore label must be the highest value
LABELS = {"background": 0, **{name: i for i, name in enumerate(CLASSES, start=1)}, "ignore": IGNORE}
MAPPING = {**{i: i for i in range(len(CLASSES) + 1)}, VOID: IGNORE}
# --split: which ImageSets/Segmentation lists go where ("train" = imagesTr/labelsTr, "test" = imagesTs/labelsTs)
SPLITS = {"benchmark": (("train", "train"), ("val", "test")),
          "train": (("train", "train"),),
          "trainval": (("train", "train"), ("val", "train"))}

PROVENANCE = Provenance(
    title="PASCAL Visual Object Classes Challenge 2012 (VOC2012), segmentation", release="VOC2012 trainval",
    url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
    licence="annotations: PASCAL VOC terms (research use, cite the paper); images come from Flickr and are "
            "subject to the Flickr terms of use of their owners",
    citation="Everingham M, Van Gool L, Williams CKI, Winn J, Zisserman A. The PASCAL Visual Object Classes (VOC) "
             "Challenge. International Journal of Computer Vision 88, 303-338 (2010). doi:10.1007/s11263-009-0275-4")


def _voc_root(source: Path) -> Path:
    """``VOCdevkit/VOC2012`` whether SOURCE_DIR is it, ``VOCdevkit`` or the folder holding ``VOCdevkit``."""
    devkit = child(source, "VOCdevkit")
    root = child(devkit or source, "VOC2012") or source
    require_child(root, "JPEGImages", what="the VOC2012 pictures; extract VOCtrainval_11-May-2012.tar")
    return root


def _read_list(path: Path) -> list[str]:
    """Image ids of one ImageSets/Segmentation list (blank lines and surrounding spaces ignored)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _case(root: Path, image_id: str, split: str, listed_in: str) -> Case:
    picture = root / "JPEGImages" / f"{image_id}.jpg"
    mask = root / "SegmentationClass" / f"{image_id}.png"
    problems = []
    if not picture.is_file():
        problems.append(f"{picture} is missing (the id {image_id} is listed in {listed_in})")
    if not mask.is_file():
        problems.append(f"{mask} is missing: no class mask for {image_id} (listed in {listed_in})")
    return Case(image_id, (picture,), (mask,), split, problems=tuple(problems))


class Voc2012Converter(Converter):
    key = "voc2012"
    title = "PASCAL VOC2012 semantic segmentation (20 classes)"
    default_name = "VOC2012"
    help = ("VOCdevkit/VOC2012 from VOCtrainval_11-May-2012.tar: JPEGImages + SegmentationClass palette PNGs, "
            "cases from ImageSets/Segmentation/{train,val}.txt; mask 255 (void) -> ignore label 21")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--split", choices=sorted(SPLITS), default="benchmark",
                            help="benchmark (default): train.txt -> imagesTr/labelsTr, val.txt -> imagesTs/labelsTs; "
                                 "train: train.txt only; trainval: both lists -> imagesTr/labelsTr")
        parser.add_argument("--size", type=int, default=None, metavar="PIXELS",
                            help="resize so that the shorter side has PIXELS pixels (bilinear pictures, nearest "
                                 "masks); default: keep the original size (about 500 x 375)")

    def discover(self, source: Path, split: str = "benchmark", size: int | None = None) -> Conversion:
        if split not in SPLITS:
            raise NnunetTransferError(f"--split must be one of {sorted(SPLITS)}, got {split!r}")
        if size is not None and size < 8:
            raise NnunetTransferError(f"--size must be at least 8 pixels, got {size}")
        root = _voc_root(source)
        require_child(root, "SegmentationClass", what="the class masks (palette PNGs) of VOC2012")
        lists = root / "ImageSets" / "Segmentation"
        cases: list[Case] = []
        for name, target in SPLITS[split]:
            path = lists / f"{name}.txt"
            if not path.is_file():
                raise NnunetTransferError(f"{lists} has no {name}.txt (the VOC2012 segmentation {name} list); is "
                                          f"this the extracted VOCtrainval_11-May-2012.tar?")
            cases += [_case(root, image_id, target, f"ImageSets/Segmentation/{name}.txt")
                      for image_id in _read_list(path)]
        cases = require_cases(cases, lists, "image ids in train.txt / val.txt")
        return Conversion(
            name=self.default_name, channel_names={"0": "R", "1": "G", "2": "B"}, labels=dict(LABELS), cases=cases,
            provenance=PROVENANCE, combine_masks=functools.partial(remap_labels, mapping=MAPPING), kind="natural",
            resize_shorter=size,
            description="PASCAL VOC2012 semantic segmentation: RGB pictures, 20 object classes + background; the void "
                        "border (mask value 255) is nnU-Net's ignore label 21",
            options={"split": split, "size": size})
