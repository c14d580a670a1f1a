"""image-folder: classes from sub-folders, flat unlabelled folders, sanitised unique case ids, picture quirks."""
import numpy as np
import pytest
from PIL import Image

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from tests.conversion.conftest import dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import image_folder


def test_class_folders_become_classes(tmp_path, raw):
    source = image_folder.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("image-folder", source, raw)
    folder = raw / "Dataset501_ImageFolder"
    assert result.folder == folder and not result.bad
    ids = ["cat_IMG_0001", "cat_photo_2", "cat_scan", "dog_IMG_0001", "dog_drawing", "red_fox_fox"]
    assert tree(folder) == sorted(["class_labels.json", "dataset.json", *[f"imagesTr/{i}_0000.png" for i in ids],
                                   *[f"labelsTr/{i}.png" for i in ids]])
    meta = dataset_json(folder)
    assert meta["numTraining"] == 6 and meta["numTest"] == 0 and meta["class_names"] == ["cat", "dog", "red fox"]
    assert meta["labels"] == {"background": 0, "foreground": 1} and meta["placeholder_labels"] is True
    assert meta["channel_names"] == {"0": "R", "1": "G", "2": "B"} and meta["file_ending"] == ".png"
    classes = read_json(folder / "class_labels.json")
    assert classes["labels"] == {"cat_IMG_0001": 0, "cat_photo_2": 0, "cat_scan": 0, "dog_IMG_0001": 1,
                                 "dog_drawing": 1, "red_fox_fox": 2}
    label = np.asarray(Image.open(folder / "labelsTr/cat_scan.png"))
    assert label.shape == image_folder.SHAPE and (label == 1).all()  # placeholder: every pixel
    assert snapshot(source) == before


def test_greyscale_and_rgba_pictures_become_rgb(tmp_path, raw):
    source = image_folder.build(tmp_path / "downloads")
    folder = run_convert("image-folder", source, raw).folder
    grey = Image.open(folder / "imagesTr/cat_photo_2_0000.png")
    rgba = Image.open(folder / "imagesTr/red_fox_fox_0000.png")
    assert grey.mode == rgba.mode == "RGB" and grey.size == (20, 14)
    g = np.asarray(grey)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()


def test_flat_folder_is_unlabelled(tmp_path, raw):
    image_folder.build(tmp_path / "downloads")
    result = run_convert("image-folder", tmp_path / "downloads/holiday", raw, options={"size": 28})
    assert tree(result.folder) == ["dataset.json", "imagesTr/Beach_2_0000.png", "imagesTr/beach_0000.png",
                                   "imagesTr/hotel-room_0000.png", "labelsTr/Beach_2.png", "labelsTr/beach.png",
                                   "labelsTr/hotel-room.png"]
    meta = dataset_json(result.folder)
    assert "class_names" not in meta and meta["placeholder_labels"] is True
    assert Image.open(result.folder / "imagesTr/beach_0000.png").size == (40, 28)  # shorter side 14 -> 28


def test_no_classes_takes_every_picture_below(tmp_path, raw):
    source = image_folder.build(tmp_path / "downloads")
    result = run_convert("image-folder", source, raw, options={"no_classes": True})
    assert sorted(r.case.case_id for r in result.good) == ["cat_IMG_0001", "cat_photo_2", "cat_scan", "dog_IMG_0001",
                                                           "dog_drawing", "red_fox_fox"]
    assert not (result.folder / "class_labels.json").exists() and "class_names" not in dataset_json(result.folder)


def test_duplicate_ids_after_sanitising_are_refused(tmp_path, raw):
    source = image_folder.build_flat(tmp_path / "downloads")
    image_folder.picture(1).save(source / "beach.PNG")
    with pytest.raises(NnunetTransferError, match=r"1 case id\(s\) would repeat \(beach: beach\.PNG, beach\.jpg\)"):
        run_convert("image-folder", source, raw)


def test_unreadable_picture_is_a_bad_case(tmp_path, raw):
    source = image_folder.build_flat(tmp_path / "downloads")
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(NnunetTransferError, match=r"broken: cannot read .*broken\.jpg"):
        run_convert("image-folder", source, raw)
    assert len(run_convert("image-folder", source, raw, skip_bad=True).good) == 3


def test_bad_layouts(tmp_path, raw):
    source = image_folder.build_classes(tmp_path / "downloads")
    image_folder.picture(1).save(source / "loose.jpg")
    with pytest.raises(NnunetTransferError, match=r"holds pictures \(loose\.jpg, \.\.\.\) next to class sub-folders "
                                                  r"\(cat, \.\.\.\)"):
        run_convert("image-folder", source, raw)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing/a.txt").write_text("x")
    with pytest.raises(NnunetTransferError, match=r"found no cases in .*nothing; expected pictures"):
        run_convert("image-folder", tmp_path / "nothing", raw)
    with pytest.raises(NnunetTransferError, match=r"--size must be at least 8 pixels, got 2"):
        run_convert("image-folder", source, raw, options={"size": 2})
