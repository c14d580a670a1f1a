"""ISBI 2015: one case per time point, channels chosen with --modalities, target chosen with --rater,
orig/ never used, testdata_website to imagesTs, patient-level splits."""
import nibabel
import numpy as np
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import isbi2015

TRAIN_IDS = ["training01_01", "training01_02", "training01_03", "training02_01", "training02_02", "training03_01",
             "training03_02"]


def _source_zyx(path):
    """A fixture file's array in SimpleITK's (z, y, x) order."""
    return np.asarray(nibabel.load(str(path)).dataobj).transpose(2, 1, 0)


def test_converts_mprage_with_rater_1_by_default(tmp_path, raw):
    source = isbi2015.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("isbi2015", source, raw)
    folder = raw / "Dataset501_ISBI2015"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json", *[f"imagesTr/{c}_0000.nii.gz" for c in TRAIN_IDS],
                            "imagesTs/test01_01_0000.nii.gz", "imagesTs/test01_02_0000.nii.gz",
                            *[f"labelsTr/{c}.nii.gz" for c in TRAIN_IDS], "patients.json", "splits_final.json"]
    meta = dataset_json(folder)
    assert meta["numTraining"] == 7 and meta["numTest"] == 2
    assert meta["channel_names"] == {"0": "T1"} and meta["labels"] == {"background": 0, "lesion": 1}
    assert "Carass" in meta["citation"] and "j.neuroimage.2016.12.064" in meta["citation"] and meta["licence"]
    assert meta["nnunet_transfer"]["options"] == {"modalities": ["mprage"], "rater": "1", "no_test": False}
    files = isbi2015.time_point_files(source, "training02", 2)
    np.testing.assert_array_equal(array(folder / "imagesTr/training02_02_0000.nii.gz"), _source_zyx(files["mprage"]))
    label = array(folder / "labelsTr/training02_02.nii.gz")
    assert label.dtype == np.uint8 and label.sum() == 125
    np.testing.assert_array_equal(label, _source_zyx(files["mask1"]))
    assert snapshot(source) == before


def test_modalities_become_channels_in_the_order_given(tmp_path, raw):
    source = isbi2015.build(tmp_path / "downloads")
    result = run_convert("isbi2015", source, raw, options={"modalities": ["mprage", "t2", "flair"]})
    assert dataset_json(result.folder)["channel_names"] == {"0": "T1", "1": "T2", "2": "FLAIR"}
    files = isbi2015.time_point_files(source, "training01", 3)
    for channel, contrast in enumerate(["mprage", "t2", "flair"]):
        np.testing.assert_array_equal(array(result.folder / f"imagesTr/training01_03_{channel:04d}.nii.gz"),
                                      _source_zyx(files[contrast]))
    assert sorted(p.name for p in (result.folder / "imagesTs").iterdir()) == [
        f"test01_0{t}_{c:04d}.nii.gz" for t in (1, 2) for c in range(3)]


@pytest.mark.parametrize("rater, voxels", [("1", {0, 1, 2}), ("2", {1, 2, 3, 4}), ("union", {0, 1, 2, 3, 4}),
                                           ("majority", {1, 2})])
def test_rater_modes_on_hand_made_masks(rater, voxels, tmp_path, raw):
    source = isbi2015.build(tmp_path / "downloads")
    files = isbi2015.time_point_files(source, "training01", 1)
    shape = (12, 14, 10)
    mask1, mask2 = np.zeros(shape, np.float32), np.zeros(shape, np.uint8)
    mask1[[0, 1, 2], 3, 4] = [1.0, 255.0, 0.5]  # any value > 0 is lesion
    mask2[[1, 2, 3, 4], 3, 4] = 1
    for name, mask in (("mask1", mask1), ("mask2", mask2)):
        nibabel.save(nibabel.Nifti1Image(mask, nibabel.load(str(files[name])).affine), str(files[name]))
    result = run_convert("isbi2015", source, raw, options={"rater": rater, "no_test": True})
    label = array(result.folder / "labelsTr/training01_01.nii.gz")  # (z, y, x)
    assert label.sum() == len(voxels) and set(np.unique(label)) == {0, 1}
    assert {int(x) for x in np.nonzero(label[4, 3, :])[0]} == voxels
    assert dataset_json(result.folder)["nnunet_transfer"]["notes"] == [
        f"lesion target: {'rater ' + rater if rater in ('1', '2') else rater + ' of raters 1 and 2'}"]


def test_patient_split_keeps_time_points_of_a_patient_in_one_fold(tmp_path, raw):
    result = run_convert("isbi2015", isbi2015.build(tmp_path / "downloads"), raw)
    splits = read_json(result.folder / "splits_final.json")
    assert len(splits) == 3  # three training patients; test cases are never in a split
    vals = [fold["val"] for fold in splits]
    assert sorted(c for v in vals for c in v) == TRAIN_IDS  # every training case validated exactly once
    for fold in splits:
        assert sorted(fold["train"] + fold["val"]) == TRAIN_IDS
        assert len({c.split("_")[0] for c in fold["val"]}) == 1  # one whole patient per fold
        assert {c.split("_")[0] for c in fold["val"]}.isdisjoint({c.split("_")[0] for c in fold["train"]})
    assert {r.case.case_id: r.case.patient for r in result.good}["training01_03"] == "training01"


def test_orig_images_are_never_used(tmp_path, raw):
    source = isbi2015.build(tmp_path / "downloads")
    # even a file in orig/ named like a preprocessed one is not a case or a channel
    orig = source / "training/training03/orig/training03_09_mprage_pp.nii"
    orig.write_bytes((source / "training/training03/orig/training03_01_mprage.nii.gz").read_bytes())
    result = run_convert("isbi2015", source, raw, options={"modalities": list(isbi2015.CONTRASTS)}, dry_run=True)
    assert not result.bad and len(result.results) == 9
    assert {p.parent.name for r in result.results for p in r.case.images} == {"preprocessed"}


def test_no_test_leaves_testdata_out(tmp_path, raw):
    result = run_convert("isbi2015", isbi2015.build(tmp_path / "downloads"), raw, options={"no_test": True})
    assert not (result.folder / "imagesTs").exists() and dataset_json(result.folder)["numTest"] == 0


def test_missing_rater_mask_and_missing_contrast_are_bad_cases(tmp_path, raw):
    source = isbi2015.build(tmp_path / "downloads")
    isbi2015.time_point_files(source, "training02", 2)["mask2"].unlink()
    isbi2015.time_point_files(source, "training03", 1)["flair"].unlink()
    with pytest.raises(NnunetTransferError) as error:
        run_convert("isbi2015", source, raw, options={"modalities": ["mprage", "flair"]})
    assert "2 of 9 case(s) have problems" in str(error.value)
    assert "training02_02: no rater 2 mask " in str(error.value) and "masks/training02_02_mask2.nii" in str(error.value)
    assert "training03_01: no flair image " in str(error.value)
    assert "preprocessed/training03_01_flair_pp.nii" in str(error.value)


@pytest.mark.parametrize("options, message", [
    ({"modalities": ["mprage", "mprage"]},
     r"--modalities mprage mprage: give each of mprage, flair, pd, t2 at most once \(unknown: none\)"),
    ({"modalities": ["t1"]}, r"--modalities t1: .*\(unknown: \['t1'\]\)"),
    ({"rater": "consensus"}, r"--rater consensus: choose one of 1, 2, union, majority"),
])
def test_bad_options_are_refused(options, message, tmp_path, raw):
    with pytest.raises(NnunetTransferError, match=message):
        run_convert("isbi2015", isbi2015.build(tmp_path / "downloads"), raw, options=options)


def test_a_folder_without_training_is_refused(tmp_path, raw):
    source = isbi2015.build(tmp_path / "downloads")
    with pytest.raises(NnunetTransferError, match=r"ISBI2015/training/training01 has no training \(the extracted "
                                                  r"training data: trainingNN/preprocessed and trainingNN/masks\)"):
        run_convert("isbi2015", source / "training/training01", raw)


def test_command_line_options(tmp_path):
    from nnunet_transfer.cli import build_parser
    args = build_parser().parse_args(["convert", "isbi2015", str(tmp_path), "-d", "7", "--modalities", "mprage",
                                      "flair", "--rater", "union", "--no-test"])
    assert {d: getattr(args, d) for d in args.option_dests} == {"modalities": ["mprage", "flair"], "rater": "union",
                                                              "no_test": True}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["convert", "isbi2015", str(tmp_path), "-d", "7", "--rater", "3"])
