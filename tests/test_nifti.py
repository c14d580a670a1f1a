"""NIfTI checks SimpleITK does not make: truncated / corrupt data, NaN, qform vs sform."""
import gzip

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_transfer.nifti import (FileProblem, check_complete, count_non_finite, geometry_from_affine,
                                   header_transforms, transform_disagreement)


def _save(path, array, affine=None, qform=None, sform_code=1, qform_code=1):
    affine = np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine
    image = nibabel.Nifti1Image(array, affine)
    image.set_sform(affine, code=sform_code)
    image.set_qform(affine if qform is None else qform, code=qform_code)
    nibabel.save(image, str(path))
    return path


def _lesion():
    mask = np.zeros((20, 30, 40), np.uint8)
    mask[5:10, 5:10, 5:10] = 1
    return mask


@pytest.mark.parametrize("name", ["m.nii.gz", "m.nii"])
def test_a_complete_file_passes_and_a_cut_one_is_named(tmp_path, name):
    path = _save(tmp_path / name, _lesion())
    check_complete(path)
    data = path.read_bytes()
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(data[: len(data) // 2] if name.endswith(".gz") else data[:-100])
    # what SimpleITK makes of it: the lesion is still "there" or gone, without an error
    sitk.ReadImage(str(cut))
    with pytest.raises(FileProblem, match=f"cut_{name}.* is truncated"):
        check_complete(cut)


def test_corrupt_gzip_and_empty_files(tmp_path):
    data = bytearray(_save(tmp_path / "m.nii.gz", _lesion()).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.nii.gz").write_bytes(bytes(data))
    with pytest.raises(FileProblem, match="bad.nii.gz is corrupt"):
        check_complete(tmp_path / "bad.nii.gz")
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(FileProblem, match="empty file"):
        check_complete(tmp_path / "empty.nii.gz")
    (tmp_path / "text.nii.gz").write_bytes(gzip.compress(b"not a nifti header"))
    with pytest.raises(FileProblem, match="cannot read .*text.nii.gz"):
        check_complete(tmp_path / "text.nii.gz")


def test_non_finite_voxels_are_counted_in_float_files_only(tmp_path):
    image = np.ones((4, 5, 6), np.float32)
    image[0, 0, :3] = np.nan
    image[1, 1, 1] = np.inf
    assert count_non_finite(_save(tmp_path / "f.nii.gz", image)) == 4
    assert count_non_finite(_save(tmp_path / "i.nii.gz", _lesion())) == 0


def test_disagreeing_qform_and_sform_are_described_with_both_origins(tmp_path):
    sform = np.diag([2.0, 2.0, 3.0, 1.0])
    sform[:3, 3] = [-10, 20, 30]
    qform = sform.copy()
    qform[:3, 3] += [126, 72, 0]
    path = _save(tmp_path / "qs.nii.gz", _lesion(), sform, qform, sform_code=2)
    transforms = header_transforms(path)
    message = transform_disagreement(path, transforms, 1e-3)
    assert "disagree by up to 145.1 mm" in message
    assert "qform origin (116.0, 92.0, 30.0)" in message and "sform origin (-10.0, 20.0, 30.0)" in message
    agreeing = _save(tmp_path / "same.nii.gz", _lesion(), sform)
    assert transform_disagreement(agreeing, header_transforms(agreeing), 1e-3) is None
    only_q = _save(tmp_path / "q.nii.gz", _lesion(), sform, qform, sform_code=0)
    assert list(header_transforms(only_q)) == ["qform"]


def test_geometry_of_an_affine_is_what_simpleitk_reads(tmp_path):
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.5, 2.0, 3.0])
    affine[:3, 3] = [5, -7, 11]
    path = _save(tmp_path / "r.nii.gz", _lesion(), affine)
    spacing, origin, direction = geometry_from_affine(affine)
    image = sitk.ReadImage(str(path))
    assert np.allclose(spacing, image.GetSpacing()) and np.allclose(origin, image.GetOrigin())
    assert np.allclose(direction, image.GetDirection())
    shear = affine.copy()
    shear[0, 0] += 0.5  # the first axis leans towards the second
    with pytest.raises(FileProblem, match="shears"):
        geometry_from_affine(shear)
