"""The gallery: which cases it shows, and that the patient's left is where the legend says."""
import io

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from nnunet_transfer.evaluation.evaluate import read_segmentation
from nnunet_transfer.study.gallery import choose_cases, display_volume, lesion_errors, render, slice_index, to_lps
from nnunet_transfer.study.spec import load_study
from tests.study.synthetic_study import blob, study_text, write_nifti


def _per_case(values: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Scratch (two folds) and one source, per case."""
    rows = []
    for case, folds in values.items():
        for fold, value in enumerate(folds):
            for init, shift in (("scratch", 0.0), ("mri seg", 0.5)):
                rows.append({"case": case, "target": "stroke", "train_size": "all", "architecture": "shared",
                             "initialisation": init, "seed": 0, "fold": str(fold), "mDice": value + shift,
                             "HD95": 10 - value})
    return pd.DataFrame(rows)


def _target(tmp_path, extra: str = ""):
    path = tmp_path / "s.toml"
    path.write_text(study_text(1, 1).replace("lesions = true", "lesions = true" + extra))
    return load_study(path).targets[0]


def test_best_median_worst_by_scratch_mean_over_folds(tmp_path):
    # scratch means over the two folds: a 0.5, b 0.8, c 0.2, d 0.6, e 0.4; the source's values must not count
    per_case = _per_case({"a": (0.4, 0.6), "b": (0.8, 0.8), "c": (0.1, 0.3), "d": (0.6, 0.6), "e": (0.5, 0.3)})
    size, chosen = choose_cases(per_case, _target(tmp_path))
    assert size == "all"
    assert chosen == [("best", "b", pytest.approx(0.8)), ("median", "a", pytest.approx(0.5)),
                      ("worst", "c", pytest.approx(0.2))]
    # a lower-is-better primary metric ranks the other way round
    _, chosen = choose_cases(per_case, _target(tmp_path, '\nmetric = "hd95"'))
    assert [(r, c) for r, c, _ in chosen] == [("best", "b"), ("median", "a"), ("worst", "c")]
    assert chosen[0][2] == pytest.approx(10 - 0.8)
    # two cases: best and worst once each
    _, chosen = choose_cases(per_case[per_case["case"].isin(["a", "b"])], _target(tmp_path))
    assert [(r, c) for r, c, _ in chosen] == [("best", "b"), ("worst", "a")]


def _tinted(png: bytes) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Rows and columns of the pixels where the first label's colour (red, gallery.CLASS_COLOURS[0]) was
    blended in."""
    pixels = matplotlib.image.imread(io.BytesIO(png))[..., :3]
    rows, cols = np.nonzero(pixels[..., 0] - pixels[..., 1] > 0.15)
    return rows, cols, pixels.shape[:2]


@pytest.mark.parametrize("i_towards", ["right", "left"])
def test_a_lesion_in_the_left_hemisphere_is_on_the_right_of_the_panel(tmp_path, i_towards):
    """Radiological convention, whatever the file's voxel order: the lesion sits at the patient's left
    and anterior (RAS+ x > 0 is the patient's right, y > 0 anterior, as nibabel and every viewer read
    the header), so it must appear in the right half and upper half of the axial panel."""
    shape = (20, 24, 16)
    sign = 1.0 if i_towards == "right" else -1.0  # +i runs toward the patient's right, or left
    affine = np.diag([2.0 * sign, 2.0, 2.0, 1.0])
    affine[0, 3] = -19.0 * sign  # the volume centred on x = 0
    left_i = 3 if i_towards == "right" else 16  # the index that lies at the patient's left
    mask = blob(shape, (left_i, 18, 8), 2.5).astype(np.uint8)  # j = 18: anterior half
    image = (blob(shape, (10, 12, 8), 9) * 100.0).astype(np.float32)
    write_nifti(mask, tmp_path / "lesion.nii.gz", affine)
    write_nifti(image, tmp_path / "image.nii.gz", affine)
    world_x = (affine @ [left_i, 18, 8, 1])[0]
    assert world_x < 0  # RAS: the patient's left
    reference, geometry = read_segmentation(tmp_path / "lesion.nii.gz")
    volume, spacing, two_d = display_volume(reference, geometry)
    assert not two_d and volume.shape == (16, 24, 20)  # numpy axes: superior, posterior, left
    k, _ = slice_index(volume, volume)
    png = render(volume[k].astype(float), spacing, (0.0, 1.0), fill=volume[k], outline=volume[k])
    rows, cols, (height, width) = _tinted(png)
    assert cols.size and cols.min() > width / 2, "the patient's left must be on the right of the panel"
    assert rows.max() < height / 2, "anterior must be at the top"


def test_to_lps_follows_the_direction_matrix():
    array = np.arange(24).reshape(2, 3, 4)  # (z, y, x)
    same, spacing = to_lps(array, (1, 0, 0, 0, 1, 0, 0, 0, 1), (1.0, 2.0, 3.0))
    assert np.array_equal(same, array) and spacing == (3.0, 2.0, 1.0)
    flipped, _ = to_lps(array, (-1, 0, 0, 0, 1, 0, 0, 0, 1), (1.0, 2.0, 3.0))
    assert np.array_equal(flipped, array[:, :, ::-1])
    # index x runs along physical y and index y along physical x: the two axes swap
    swapped, spacing = to_lps(array, (0, 1, 0, 1, 0, 0, 0, 0, 1), (1.0, 2.0, 3.0))
    assert np.array_equal(swapped, array.transpose(0, 2, 1)) and spacing == (3.0, 1.0, 2.0)


def test_a_2d_image_is_shown_as_stored(tmp_path):
    mask = np.zeros((30, 20, 1), np.uint8)  # nibabel order (i, j, k): one slice deep
    mask[25, 3, 0] = 1
    write_nifti(mask, tmp_path / "flat.nii.gz", np.diag([-1.0, 1.0, 1.0, 1.0]))
    reference, geometry = read_segmentation(tmp_path / "flat.nii.gz")
    volume, _, two_d = display_volume(reference, geometry)
    assert two_d and volume.shape == (1, 20, 30) and volume[0, 3, 25] == 1  # row j, column i: no flip


def test_missed_and_false_positive_lesions_follow_the_evaluation(tmp_path):
    target = _target(tmp_path)
    reference = np.zeros((12, 12, 12), np.uint8)
    reference[blob(reference.shape, (3, 3, 3), 1.5)] = 1
    reference[blob(reference.shape, (8, 8, 8), 1.5)] = 1
    prediction = np.zeros_like(reference)
    prediction[3, 3, 3] = 1  # one voxel detects the first lesion
    prediction[blob(reference.shape, (9, 2, 2), 1)] = 1  # overlaps nothing
    missed, false_positive = lesion_errors(reference, prediction, target, voxel_ml=0.001)
    assert np.unique(missed[missed > 0]).tolist() == [1] and missed[8, 8, 8] and not missed[3, 3, 3]
    assert np.unique(false_positive[false_positive > 0]).tolist() == [1] and false_positive[9, 2, 2]
    assert not false_positive[3, 3, 3]
