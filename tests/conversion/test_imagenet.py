"""ImageNet: both layouts, class labels by synset, val labels from the CSV / devkit, --classes / --per-class /
--size, and the release's picture quirks (CMYK, PNG named .JPEG, greyscale)."""
import shutil

import numpy as np
import pytest
from PIL import Image

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from tests.conversion.conftest import dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import imagenet

TRAIN_IDS = [s for stems in imagenet.TRAIN.values() for s in stems]
CLASSES = ["n01440764", "n02105855", "n04596742"]


def test_kaggle_train_split(tmp_path, raw):
    source = imagenet.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("imagenet", source, raw, options={"size": 16})
    folder = raw / "Dataset501_ImageNet"
    assert result.folder == folder and not result.bad
    assert tree(folder) == sorted(["class_labels.json", "dataset.json", *[f"imagesTr/{i}_0000.png" for i in TRAIN_IDS],
                                   *[f"labelsTr/{i}.png" for i in TRAIN_IDS]])
    meta = dataset_json(folder)
    assert meta["numTraining"] == 7 and meta["numTest"] == 0 and meta["class_names"] == CLASSES
    assert meta["class_descriptions"] == imagenet.WORDS and meta["placeholder_labels"] is True
    assert meta["channel_names"] == {"0": "R", "1": "G", "2": "B"} and meta["labels"] == {"background": 0,
                                                                                         "foreground": 1}
    assert "Russakovsky" in meta["citation"] and "10.1007/s11263-015-0816-y" in meta["citation"]
    labels = read_json(folder / "class_labels.json")["labels"]
    assert labels == {i: CLASSES.index(i.split("_")[0]) for i in TRAIN_IDS}
    assert not any("test" in f for f in tree(folder))  # Kaggle's unlabelled test/ is not converted
    assert snapshot(source) == before


def test_picture_quirks_become_rgb_with_the_shorter_side_resized(tmp_path, raw):
    source = imagenet.build(tmp_path / "downloads")
    folder = run_convert("imagenet", source, raw, options={"size": 24}).folder
    for stem in (imagenet.GREY, imagenet.PNG, imagenet.CMYK, "n04596742_10"):
        picture = Image.open(folder / f"imagesTr/{stem}_0000.png")
        assert picture.mode == "RGB" and picture.size == (32, 24), stem  # 16 x 12 -> 32 x 24
    grey = np.asarray(Image.open(folder / f"imagesTr/{imagenet.GREY}_0000.png"))
    assert (grey[..., 0] == grey[..., 2]).all()
    label = np.asarray(Image.open(folder / f"labelsTr/{imagenet.PNG}.png"))
    assert label.shape == (24, 32) and (label == 1).all()


def test_kaggle_val_labels_from_the_solution_csv(tmp_path, raw):
    source = imagenet.build(tmp_path / "downloads")
    folder = run_convert("imagenet", source, raw, options={"split": "val", "size": 16}).folder
    labels = read_json(folder / "class_labels.json")["labels"]
    assert labels == {f"ILSVRC2012_val_{n:08d}": CLASSES.index(s) for n, s in imagenet.VAL.items()}


def test_official_layout_with_devkit(tmp_path, raw):
    imagenet.build(tmp_path / "downloads")
    source = tmp_path / "downloads/ILSVRC2012"
    train = run_convert("imagenet", source, raw, options={"size": 16})
    assert sorted(r.case.case_id for r in train.good) == sorted(TRAIN_IDS)  # the leftover n01440764.tar is skipped
    assert dataset_json(train.folder)["class_descriptions"] == imagenet.WORDS  # from meta.mat
    val = run_convert("imagenet", source, raw, dataset_id=502, options={"split": "val", "size": 16})
    labels = read_json(val.folder / "class_labels.json")["labels"]
    assert labels == {f"ILSVRC2012_val_{n:08d}": CLASSES.index(s) for n, s in imagenet.VAL.items()}
    assert dataset_json(val.folder)["class_names"] == CLASSES  # sorted synsets, not the devkit's ID order


def test_val_sorted_into_class_folders_and_no_devkit(tmp_path, raw):
    imagenet.build(tmp_path / "downloads")
    source = tmp_path / "downloads/ILSVRC2012"
    shutil.rmtree(source / "ILSVRC2012_devkit_t12")
    with pytest.raises(NnunetTransferError, match=r"val holds the validation pictures without class folders; their "
                                                  r"classes are in the devkit"):
        run_convert("imagenet", source, raw, options={"split": "val"})
    for n, synset in imagenet.VAL.items():
        (source / "val" / synset).mkdir(exist_ok=True)
        name = f"ILSVRC2012_val_{n:08d}.JPEG"
        shutil.move(source / "val" / name, source / "val" / synset / name)
    result = run_convert("imagenet", source, raw, options={"split": "val", "size": 16})
    assert len(result.good) == 5 and "class_descriptions" not in dataset_json(result.folder)


def test_classes_and_per_class(tmp_path, raw):
    source = imagenet.build(tmp_path / "downloads")
    result = run_convert("imagenet", source, raw,
                         options={"classes": ["n04596742,n01440764"], "per_class": 2, "size": 16})
    assert [r.case.case_id for r in result.good] == ["n01440764_10026", "n01440764_10027", "n04596742_10",
                                                     "n04596742_4225"]
    meta = dataset_json(result.folder)
    assert meta["class_names"] == ["n01440764", "n04596742"] and list(meta["class_descriptions"]) == meta["class_names"]
    assert meta["nnunet_transfer"]["options"] == {"split": "train", "classes": ["n01440764", "n04596742"],
                                                  "per_class": 2, "size": 16}
    assert read_json(result.folder / "class_labels.json")["labels"]["n04596742_10"] == 1


def test_val_picture_missing_from_the_solution_is_bad(tmp_path, raw):
    source = imagenet.build(tmp_path / "downloads")
    imagenet.save_picture(source / "ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000009.JPEG", 9)
    with pytest.raises(NnunetTransferError, match=r"ILSVRC2012_val_00000009: .*ILSVRC2012_val_00000009\.JPEG has no "
                                                  r"class in .*LOC_val_solution\.csv"):
        run_convert("imagenet", source, raw, options={"split": "val", "size": 16})


@pytest.mark.parametrize("options, message", [
    ({"classes": ["n99999999"]}, r"--classes \['n99999999'\] are not ImageNet classes of this download \(3 found"),
    ({"classes": ["tench"]}, r"--classes takes WordNet synset ids such as n01440764, got \['tench'\]"),
    ({"per_class": 0}, r"--per-class must be at least 1, got 0"),
    ({"size": 4}, r"--size must be 0 \(original size\) or at least 8 pixels, got 4"),
])
def test_option_errors(tmp_path, raw, options, message):
    source = imagenet.build(tmp_path / "downloads")
    with pytest.raises(NnunetTransferError, match=message):
        run_convert("imagenet", source, raw, options=options)


def test_bad_layouts(tmp_path, raw):
    with pytest.raises(NnunetTransferError, match=r"has neither ILSVRC/Data/CLS-LOC \(the Kaggle download\) nor "
                                                  r"train/ or val/"):
        run_convert("imagenet", tmp_path, raw)
    source = imagenet.build(tmp_path / "downloads")
    (source / "LOC_val_solution.csv").unlink()
    with pytest.raises(NnunetTransferError, match=r"has no LOC_val_solution\.csv"):
        run_convert("imagenet", source, raw, options={"split": "val"})
    assert run_convert("imagenet", source / "ILSVRC", raw, options={"size": 0}).good  # ILSVRC/ works too


def test_cmyk_jpeg_keeps_its_colours(tmp_path, raw):
    source = imagenet.build(tmp_path / "downloads")
    folder = run_convert("imagenet", source, raw, options={"size": 0, "classes": ["n04596742"]}).folder
    written = np.asarray(Image.open(folder / f"imagesTr/{imagenet.CMYK}_0000.png")).astype(int)
    original = np.random.default_rng(21).integers(0, 255, (*imagenet.SHAPE, 3), dtype=np.uint8)  # seed 10 * 2 + 1
    assert written.shape == original.shape and np.abs(written - original).mean() < 10  # inverted CMYK: ~127
