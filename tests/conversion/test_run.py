"""The shared conversion steps on the ATLAS R2.0 miniature: every failure named, nothing half-written."""
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.conversion import run as run_module
from nnunet_transfer.conversion.common import Case
from nnunet_transfer.conversion.registry import converters
from nnunet_transfer.conversion.run import convert, patient_splits
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
    one = convert(converters()["atlas2"], source, 501, tmp_path / "a", workers=1)
    two = convert(converters()["atlas2"], source, 501, tmp_path / "b", workers=2)
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


def _cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_mask_is_a_bad_case_not_an_empty_mask(source, raw):
    _cut(_mask(source))  # SimpleITK reads the cut stream as zeros: the lesion would vanish
    with pytest.raises(NnunetTransferError, match=r"1 of 4 case\(s\) have problems:\n  r001s002: .*_mask\.nii\.gz is "
                                                  r"truncated: its compressed stream ends early"):
        run_convert("atlas2", source, raw)
    assert _no_dataset_left(raw)
    result = run_convert("atlas2", source, raw, skip_bad=True)
    assert list(dataset_json(result.folder)["nnunet_transfer"]["skipped_cases"]) == ["r001s002"]
    assert dataset_json(result.folder)["nnunet_transfer"]["empty_label_maps"] == 0


def test_a_truncated_image_is_skipped_with_skip_bad(source, raw):
    _cut(_t1(source, "r052s010", "R052"))
    with pytest.raises(NnunetTransferError, match=r"r052s010: .*_T1w\.nii\.gz is truncated"):
        run_convert("atlas2", source, raw)
    result = convert(converters()["atlas2"], source, 501, raw, skip_bad=True, workers=2)
    assert list(dataset_json(result.folder)["nnunet_transfer"]["skipped_cases"]) == ["r052s010"]


def _qform_off(path, shift=(126.0, 72.0, 0.0)):
    """Give ``path`` a qform that is ``shift`` mm away from its (correct) sform, as 4 of 15 real atlas files have."""
    import nibabel
    image = nibabel.load(str(path))
    sform = image.get_sform()
    qform = sform.copy()
    qform[:3, 3] += shift
    out = nibabel.Nifti1Image(np.asanyarray(image.dataobj), sform, image.header)
    out.set_sform(sform, code=4)
    out.set_qform(qform, code=1)
    nibabel.save(out, str(path))
    return sform


def test_disagreeing_qform_and_sform_are_refused_or_placed_by_the_chosen_transform(source, raw):
    sform = _qform_off(_mask(source))
    with pytest.raises(NnunetTransferError, match=r"r001s002: .*_mask\.nii\.gz: its qform and sform disagree by up to "
                                                  r"145\.1 mm \(qform origin \(126\.0, 72\.0, 0\.0\), sform origin "
                                                  r"\(0\.0, 0\.0, 0\.0\), RAS mm\).*--header-transform sform\|qform"):
        run_convert("atlas2", source, raw)
    assert _no_dataset_left(raw)
    result = run_convert("atlas2", source, raw, policy=GeometryPolicy(header_transform="sform"))
    label = sitk.ReadImage(str(result.folder / "labelsTr/r001s002.nii.gz"))
    assert np.allclose(label.GetOrigin(), (-sform[0, 3], -sform[1, 3], sform[2, 3]))  # LPS of the sform's origin
    assert array(result.folder / "labelsTr/r001s002.nii.gz").sum() == 125
    # with the qform the mask lies 144 mm away from the image: a geometry problem, named as such
    with pytest.raises(NnunetTransferError, match="geometry differs from the image beyond the tolerance"):
        run_convert("atlas2", source, raw, overwrite=True, policy=GeometryPolicy(header_transform="qform"))


def test_written_headers_carry_one_transform_in_both_fields(source, raw):
    """What convert.md promises: the geometry SimpleITK writes, in qform and sform alike (codes 1)."""
    import nibabel
    _qform_off(_t1(source))
    result = run_convert("atlas2", source, raw, policy=GeometryPolicy(header_transform="sform"))
    written = nibabel.load(str(result.folder / "imagesTr/r001s002_0000.nii.gz"))
    (qform, qcode), (sform, scode) = written.get_qform(coded=True), written.get_sform(coded=True)
    assert int(qcode) == 1 and int(scode) == 1 and np.allclose(qform, sform)


@pytest.mark.parametrize("name", ["My Data/x", "../../escape", "a/b", "-x", "Ümlaut"])
def test_dataset_names_that_are_not_folder_names_are_refused(source, raw, name):
    with pytest.raises(NnunetTransferError, match=r"--name .*: a dataset name may hold letters, digits, '_' and '-' "
                                                  r"only .*for example --name "):
        run_convert("atlas2", source, raw, name=name)
    assert _no_dataset_left(raw) and not (raw.parent / "escape").exists()


def _cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, **kwargs)


def test_an_output_that_is_a_file_is_one_message(source, tmp_path):
    target = tmp_path / "raw_is_a_file"
    target.write_text("x")
    out = _cli("convert", "atlas2", str(source), "-d", "501", "--workers", "1", "--raw-folder", str(target))
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "raw_is_a_file (--raw-folder / nnUNet_raw) is a file, not a folder" in out.stderr
    assert target.read_text() == "x"


def test_a_read_only_output_folder_is_one_message(source, tmp_path):
    from tests.conftest import run_with_read_only
    raw = tmp_path / "raw"
    raw.mkdir()
    out = run_with_read_only(raw, [sys.executable, "-m", "nnunet_transfer.cli", "convert", "atlas2", str(source),
                                   "-d", "501", "--workers", "1", "--raw-folder", str(raw)])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "cannot be written (Read-only file system)" in out.stderr or "(Permission denied)" in out.stderr
    assert list(raw.iterdir()) == []


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_workers_die_with_a_killed_conversion(source, tmp_path, signal_name):
    import signal
    import time
    script = ("import sys, time\n"
              "import nnunet_transfer.conversion.run as run\n"
              "original = run.process_case\n"
              "def slow(*args):\n"
              "    time.sleep(60)\n"
              "    return original(*args)\n"
              "run.process_case = slow\n"
              "from nnunet_transfer.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", script, "convert", "atlas2", str(source), "-d", "501",
                             "--workers", "2", "--raw-folder", str(tmp_path / "raw")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.time() + 60
    while len(workers) < 2 and time.time() < deadline:
        time.sleep(0.2)
        found = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        workers = [int(pid) for pid in found]
    assert len(workers) == 2, "the conversion did not start its two workers"
    proc.send_signal(getattr(signal, signal_name))
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in workers):
        time.sleep(0.2)
    alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived the killed conversion"
