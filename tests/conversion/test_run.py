"""The shared conversion steps on the ATLAS R2.0 miniature: every failure named, nothing half-written."""
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.conversion import run as run_module
from nnunet_transfer.conversion.common import Case
from nnunet_transfer.conversion.run import patient_splits
from nnunet_transfer.conversion.validate import GeometryPolicy
from nnunet_transfer.errors import NnunetTransferError
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import atlas2
from tests.conversion.fixtures._write import blob, write_nifti


@pytest.fixture
def source(tmp_path):
    return atlas2.build(tmp_path / "downloads")


def _mask(source, subject="r001s002", cohort="R001"):
    anat = atlas2.subject_folder(source, "Training", cohort, subject)
    return next(anat.glob("sub-*_mask.nii.gz"))


def _t1(source, subject="r001s002", cohort="R001"):
    return next(atlas2.subject_folder(source, "Training", cohort, subject).glob("sub-*_T1w.nii.gz"))


def _no_dataset_left(raw):
    return list(raw.iterdir()) == []


def test_unreadable_file_is_named(source, raw):
    _t1(source).write_bytes(b"not a nifti file at all")
    with pytest.raises(NnunetTransferError, match=r"1 of 4 case\(s\) have problems:\n  r001s002: cannot read .*"
                                                  r"sub-r001s002_ses-1_space-MNI152NLin2009aSym_T1w\.nii\.gz"):
        run_convert("atlas2", source, raw)
    assert _no_dataset_left(raw)


def test_empty_file_and_nan_are_problems(source, raw):
    _t1(source).write_bytes(b"")
    data = np.full((12, 14, 10), np.nan, dtype=np.float32)
    data[0, 0, 0] = 1
    write_nifti(_t1(source, "r052s010", "R052"), data)  # SimpleITK would read these NaN as 0
    with pytest.raises(NnunetTransferError) as e:
        run_convert("atlas2", source, raw)
    message = str(e.value)
    assert "2 of 4 case(s)" in message and "is an empty file (0 bytes)" in message
    assert "r052s010: " in message and "contains 1679 NaN / inf voxels" in message


def test_geometry_mismatch_beyond_tolerance(source, raw):
    write_nifti(_mask(source), blob(value=1.0, dtype="float32"), spacing=(1.0, 1.0, 1.2))
    with pytest.raises(NnunetTransferError,
                       match=r"r001s002: mask sub-r001s002.*_mask\.nii\.gz geometry differs from the image beyond the "
                             r"tolerance 0\.001: spacing \[1\.0, 1\.0, 1\.2\] != \[1\.0, 1\.0, 1\.0\]; fix the header, "
                             r"or pass --resample-to-image"):
        run_convert("atlas2", source, raw)
    assert _no_dataset_left(raw)


def test_size_mismatch_is_named(source, raw):
    write_nifti(_mask(source), np.zeros((12, 14, 11), np.float32))
    with pytest.raises(NnunetTransferError, match=r"size \(12, 14, 11\) != \(12, 14, 10\)"):
        run_convert("atlas2", source, raw)


def test_tiny_header_drift_takes_the_image_header(source, raw):
    write_nifti(_mask(source), blob(value=1.0, dtype="float32"), origin=(0.0004, 0.0, 0.0))
    result = run_convert("atlas2", source, raw)
    label = sitk.ReadImage(str(result.folder / "labelsTr/r001s002.nii.gz"))
    image = sitk.ReadImage(str(result.folder / "imagesTr/r001s002_0000.nii.gz"))
    assert label.GetOrigin() == image.GetOrigin()


def test_resample_to_image_fixes_a_shifted_mask(source, raw):
    write_nifti(_mask(source), blob(value=1.0, dtype="float32"), origin=(-2.0, 0.0, 0.0))  # 2 voxels off in x
    result = run_convert("atlas2", source, raw, policy=GeometryPolicy(resample=True))
    label = array(result.folder / "labelsTr/r001s002.nii.gz")  # (z, y, x)
    assert label.sum() == 125 and np.argwhere(label)[:, 2].min() == 2  # the blob at x 4..8 moved to 2..6


def test_missing_mask_is_a_problem_and_skip_bad_reports_it(source, raw):
    _mask(source).unlink()
    with pytest.raises(NnunetTransferError, match=r"r001s002: no lesion mask next to .*sub-r001s002_ses-1_space-"
                                                  r"MNI152NLin2009aSym_T1w\.nii\.gz"):
        run_convert("atlas2", source, raw)
    assert _no_dataset_left(raw)
    result = run_convert("atlas2", source, raw, skip_bad=True)
    meta = dataset_json(result.folder)
    assert meta["numTraining"] == 2 and list(meta["nnunet_transfer"]["skipped_cases"]) == ["r001s002"]
    assert "imagesTr/r001s002_0000.nii.gz" not in tree(result.folder)


def test_duplicate_case_id(source, raw):
    extra = source / "Training" / "R002" / "sub-r001s001" / "ses-1" / "anat"
    extra.mkdir(parents=True)
    for f in atlas2.subject_folder(source, "Training", "R001", "r001s001").glob("sub-*"):
        (extra / f.name).write_bytes(f.read_bytes())
    with pytest.raises(NnunetTransferError, match=r"duplicate case id\(s\) \['r001s001'\]: .*R001.*R002.*; each case "
                                                  r"must appear once"):
        run_convert("atlas2", source, raw)
    assert _no_dataset_left(raw)


def test_overwrite_refused_then_allowed(source, raw):
    first = run_convert("atlas2", source, raw)
    stamp = (first.folder / "dataset.json").stat().st_mtime_ns
    with pytest.raises(NnunetTransferError, match=r"Dataset501_ATLAS2 already exists; pass --overwrite to replace it"):
        run_convert("atlas2", source, raw)
    assert (first.folder / "dataset.json").stat().st_mtime_ns == stamp
    with pytest.raises(NnunetTransferError, match=r"dataset id 501 is taken by .*Dataset501_ATLAS2; nnU-Net needs "
                                                  r"unique ids"):
        run_convert("atlas2", source, raw, name="Other", overwrite=True)
    run_convert("atlas2", source, raw, overwrite=True)
    assert (first.folder / "dataset.json").stat().st_mtime_ns != stamp
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset501_ATLAS2"]


def test_interrupted_conversion_leaves_no_dataset(source, raw, monkeypatch):
    calls = []
    original = run_module.process_case

    def interrupted(case, reader, out):
        calls.append(case.case_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(case, reader, out)

    monkeypatch.setattr(run_module, "process_case", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_convert("atlas2", source, raw)
    assert _no_dataset_left(raw)  # neither the dataset nor its temporary folder


def test_dry_run_reads_everything_and_writes_nothing(source, raw):
    _mask(source).unlink()
    result = run_convert("atlas2", source, raw, dry_run=True)
    assert _no_dataset_left(raw)
    assert [r.case.case_id for r in result.bad] == ["r001s002"]
    assert result.summary().startswith("would write") and "1 bad case(s) would be skipped" in result.summary()


def test_source_never_modified_and_output_refused_inside_it(source, raw):
    before = snapshot(source)
    with pytest.raises(NnunetTransferError, match="lies inside SOURCE_DIR"):
        run_convert("atlas2", source, source / "raw")
    run_convert("atlas2", source, raw, skip_bad=True)
    assert snapshot(source) == before


def test_parallel_workers_write_the_same_dataset(source, tmp_path):
    from nnunet_transfer.conversion.registry import get_converter
    from nnunet_transfer.conversion.run import convert
    one = convert(get_converter("atlas2"), source, 501, tmp_path / "a", workers=1)
    two = convert(get_converter("atlas2"), source, 501, tmp_path / "b", workers=2)
    assert tree(one.folder) == tree(two.folder)
    for f in tree(one.folder):
        if f.endswith(".nii.gz"):
            assert np.array_equal(array(one.folder / f), array(two.folder / f))


def test_cli_error_is_one_message_with_exit_2(source, tmp_path):
    _mask(source).unlink()
    env = {**os.environ, "nnUNet_raw": str(tmp_path / "raw")}
    out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "convert", "atlas2", str(source), "-d", "501",
                          "--workers", "1"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "\nnnunet_transfer convert: error: 1 of 4 case(s) have problems:\n  r001s002: no lesion mask" in out.stderr
    out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "convert", "atlas2", str(source), "-d", "501",
                          "--workers", "1", "--skip-bad"], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "skipped 1 bad case(s)" in out.stderr and "r001s002: no lesion mask" in out.stderr


def test_patient_split_keeps_time_points_together():
    cases = [Case(f"p{p}_t{t}", (), patient=f"p{p}") for p in range(7) for t in range(1 + p % 3)]
    splits = patient_splits(cases)
    assert len(splits) == 5
    assert sorted(c for s in splits for c in s["val"]) == sorted(c.case_id for c in cases)
    for s in splits:
        assert not {c.split("_")[0] for c in s["val"]} & {c.split("_")[0] for c in s["train"]}
    with pytest.raises(NnunetTransferError, match="at least two patients"):
        patient_splits(cases[:1])
