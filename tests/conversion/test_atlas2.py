"""ATLAS R2.0: BIDS layout, case ids from the subject, Testing without masks to imagesTs."""
import numpy as np

from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import atlas2


def test_converts_training_and_test_cases(tmp_path, raw):
    source = atlas2.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("atlas2", source, raw)
    folder = raw / "Dataset501_ATLAS2"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json", "imagesTr/r001s001_0000.nii.gz", "imagesTr/r001s002_0000.nii.gz",
                            "imagesTr/r052s010_0000.nii.gz", "imagesTs/r009s003_0000.nii.gz",
                            "labelsTr/r001s001.nii.gz", "labelsTr/r001s002.nii.gz", "labelsTr/r052s010.nii.gz"]
    meta = dataset_json(folder)
    assert meta["numTraining"] == 3 and meta["numTest"] == 1
    assert meta["channel_names"] == {"0": "T1"} and meta["labels"] == {"background": 0, "lesion": 1}
    assert meta["file_ending"] == ".nii.gz" and "Liew" in meta["citation"] and meta["licence"]
    label = array(folder / "labelsTr/r001s002.nii.gz")
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1} and label.sum() == 125
    assert snapshot(source) == before


def test_no_test_option_leaves_testing_out(tmp_path, raw):
    source = atlas2.build(tmp_path / "downloads")
    result = run_convert("atlas2", source, raw, options={"no_test": True})
    assert not (result.folder / "imagesTs").exists()
    assert dataset_json(result.folder)["nnunet_transfer"]["options"] == {"no_test": True}


def test_accepts_the_folder_above_and_nii(tmp_path, raw):
    source = atlas2.build(tmp_path / "downloads")
    anat = atlas2.subject_folder(source, "Training", "R001", "r001s001")
    gz = next(anat.glob("sub-*T1w.nii.gz"))
    import nibabel
    nibabel.save(nibabel.load(gz), str(gz.with_suffix("")))  # .nii instead of .nii.gz
    gz.unlink()
    result = run_convert("atlas2", source.parent, raw)  # downloads/ instead of downloads/ATLAS_2
    assert result.good and len([r for r in result.good if r.case.split == "train"]) == 3
