"""Training subsets of a label-efficiency study: nested, patient-level, reproducible, fold-bound."""
import json

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study.subsets import draw_subsets, ensure_splits, fold_training_cases, target_subsets

CASES = [f"c{i:02d}" for i in range(10)]


def test_nested_and_sized():
    drawn = draw_subsets(CASES, {}, [2, 4, 8], seed=0, fold=0)
    assert [len(drawn[n]) for n in (2, 4, 8)] == [2, 4, 8]
    assert set(drawn[2]) < set(drawn[4]) < set(drawn[8]) <= set(CASES)


def test_reproducible_and_independent_of_the_other_sizes():
    # the subset of a size depends on seed and fold only: asking for more sizes changes none of them
    assert draw_subsets(CASES, {}, [2, 4], seed=5, fold=1) == {
        n: c for n, c in draw_subsets(CASES, {}, [4, 2, 8], seed=5, fold=1).items() if n in (2, 4)}
    assert draw_subsets(CASES, {}, [4], seed=5, fold=1) != draw_subsets(CASES, {}, [4], seed=6, fold=1)
    assert draw_subsets(CASES, {}, [4], seed=5, fold=1) != draw_subsets(CASES, {}, [4], seed=5, fold=2)


def test_patient_level():
    # two time points per patient: a size counts patients, and both time points come together
    cases = [f"p{p}_t{t}" for p in range(5) for t in (1, 2)]
    patients = {c: c.split("_")[0] for c in cases}
    drawn = draw_subsets(cases, patients, [1, 3], seed=0, fold="all")
    assert len(drawn[1]) == 2 and len(drawn[3]) == 6
    for subset in drawn.values():
        assert all(f"{patients[c]}_t1" in subset and f"{patients[c]}_t2" in subset for c in subset)


def test_size_above_the_patients_is_refused():
    with pytest.raises(NnunetTransferError, match=r"train_sizes \[11\] exceed the 10 training patients of fold 0"):
        draw_subsets(CASES, {}, [2, 11], seed=0, fold=0)


def _raw_dataset(folders, name="Dataset005_S", n=10):
    raw = folders["nnUNet_raw"] / name
    (raw / "imagesTr").mkdir(parents=True)
    for i in range(n):
        (raw / "imagesTr" / f"c{i:02d}_0000.nii.gz").touch()
    (raw / "dataset.json").write_text(json.dumps({"file_ending": ".nii.gz"}))
    (folders["nnUNet_preprocessed"] / name).mkdir()
    return name


def test_splits_made_as_nnunet_makes_them_and_subsets_inside_the_fold(nnunet_folders):
    from nnunetv2.utilities.crossval_split import generate_crossval_split
    name = _raw_dataset(nnunet_folders)
    splits = ensure_splits(name)
    assert splits == generate_crossval_split(CASES, seed=12345, n_splits=5)  # what nnUNetv2_train would write
    subsets = target_subsets(name, [0, 1, "all"], [2, 6], seed=0)
    for fold in ("0", "1"):
        assert set(subsets[fold]["6"]) <= set(splits[int(fold)]["train"])  # never a validation case of the fold
    assert set(fold_training_cases(name, "all")) == set(CASES)
    with pytest.raises(NnunetTransferError, match="fold 7 is not in"):
        fold_training_cases(name, 7)


def test_an_existing_split_is_kept(nnunet_folders):
    name = _raw_dataset(nnunet_folders)
    mine = [{"train": CASES[:6], "val": CASES[6:]}]
    (nnunet_folders["nnUNet_preprocessed"] / name / "splits_final.json").write_text(json.dumps(mine))
    assert fold_training_cases(name, 0) == CASES[:6]


def test_the_study_records_its_subsets_and_refuses_other_draws_later(nnunet_folders, tmp_path):
    from nnunet_transfer.study.spec import load_study
    from nnunet_transfer.study.steps import subsets_file, training_subsets
    _raw_dataset(nnunet_folders)
    text = 'folds = [0]\n[[sources]]\ndataset = 1\n[[targets]]\ndataset = 5\nlabel = "t"\ntrain_sizes = [2, 4]\n'
    (tmp_path / "s.toml").write_text(text)
    study = load_study(tmp_path / "s.toml")
    drawn = training_subsets(study, study.targets[0])
    record = json.loads(subsets_file(study, study.targets[0]).read_text())
    assert record["folds"] == drawn and record["subset_seed"] == 0 and set(drawn["0"]["2"]) < set(drawn["0"]["4"])
    assert training_subsets(study, study.targets[0]) == drawn  # the same draw again: accepted
    (tmp_path / "s.toml").write_text("subset_seed = 7\n" + text)
    with pytest.raises(NnunetTransferError, match="records other training cases for fold 0 size 2"):
        training_subsets(load_study(tmp_path / "s.toml"), study.targets[0])
