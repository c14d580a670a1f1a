"""Study files: every key checked, errors name the key; the grid has every run plus scratch."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import expand, runs

MINIMAL = """
name = "s"
folds = [0, 1]
strategies = ["finetune", "warmup"]
[[sources]]
dataset = 1
task = "ssl:models_genesis"
[[sources]]
dataset = 2
task = "classification"
domain = "natural"
[[targets]]
dataset = 3
[[targets]]
dataset = 4
metric = "miou"
lesions = true
"""


def _write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_minimal_study_and_defaults(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL))
    assert study.configuration == "3d_fullres" and study.plans == "nnUNetTransferPlans"
    assert study.folder == tmp_path / "s" and study.twin  # a natural source into a 3D network
    assert [s.label for s in study.sources] == ["mri ssl:models_genesis", "natural classification"]
    assert [s.key for s in study.sources] == ["mri_ssl_models_genesis", "natural_classification"]
    assert study.sources[0].trainer == "nnUNetTrainerPretrainModelsGenesis"
    assert study.source_configuration(study.sources[1]) == "2d_twin"
    assert study.targets[1].metric == "miou" and study.targets[1].lesions
    assert study.schedule == {"final_validation": "never"}  # every target is scored on its test set


def test_validation_targets_keep_nnunet_final_validation(tmp_path):
    validation = MINIMAL.replace('metric = "miou"', 'metric = "miou"\nevaluate_on = "validation"')
    study = load_study(_write(tmp_path, validation))
    assert study.schedule["final_validation"] == "auto"
    explicit = MINIMAL.replace("[[sources]]", '[schedule]\nfinal_validation = "always"\n[[sources]]', 1)
    assert load_study(_write(tmp_path, explicit)).schedule["final_validation"] == "always"
    with pytest.raises(NnunetTransferError, match="evaluate_on = \"validation\" needs folds without"):
        load_study(_write(tmp_path, MINIMAL.replace("folds = [0, 1]", 'folds = ["all"]').replace(
            'metric = "miou"', 'metric = "miou"\nevaluate_on = "validation"')))


def test_grid_has_every_combination_and_scratch(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL))
    grid = runs(study)
    assert len(grid) == 2 * 2 * (2 * 2 + 1)  # targets x folds x (sources x strategies + scratch)
    scratch = [r for r in grid if r.source is None]
    assert len(scratch) == 4 and {r.trainer for r in scratch} == {"nnUNetTrainerFromScratch"}
    steps = expand(study)
    assert [s.id for s in steps[:3]] == ["plan", "pretrain/mri_ssl_models_genesis", "pretrain/natural_classification"]
    assert len(steps) == 3 + 2 * len(grid)
    index = {s.id: i for i, s in enumerate(steps)}
    assert all(index[d] < index[s.id] for s in steps for d in s.deps)
    assert "train/3/natural_classification/warmup/fold_1" in index


@pytest.mark.parametrize("change, message", [
    ('task = "ssl:models_genesis"', "'sources\\[0\\].task' is 'ssl:nope'; choose from segmentation"),
    ('metric = "miou"', "'targets\\[1\\].metric' is 'auc'; choose from dice, miou"),
    ('strategies = ["finetune", "warmup"]', "'strategies' must be a non-empty list from finetune"),
    ('folds = [0, 1]', "'folds' must be a non-empty list of fold numbers"),
    ('name = "s"', "'colour' is not a study key; allowed here: batch_size"),
])
def test_bad_values_name_the_key(tmp_path, change, message):
    bad = {'task = "ssl:models_genesis"': 'task = "ssl:nope"', 'metric = "miou"': 'metric = "auc"',
           'strategies = ["finetune", "warmup"]': 'strategies = ["finetune", "freeze"]',
           'folds = [0, 1]': 'folds = [-1]', 'name = "s"': 'name = "s"\ncolour = "red"'}[change]
    with pytest.raises(NnunetTransferError, match=message):
        load_study(_write(tmp_path, MINIMAL.replace(change, bad)))


def test_missing_file_invalid_toml_and_duplicate_labels(tmp_path):
    with pytest.raises(NnunetTransferError, match="does not exist"):
        load_study(tmp_path / "nope.toml")
    with pytest.raises(NnunetTransferError, match="is not valid TOML"):
        load_study(_write(tmp_path, "name = "))
    with pytest.raises(NnunetTransferError, match="labels must be unique .* repeated: \\['scratch'\\]"):
        load_study(_write(tmp_path, MINIMAL.replace('task = "classification"', 'task = "classification"\n'
                                                                               'label = "scratch"')))
    with pytest.raises(NnunetTransferError, match="'targets' needs at least one"):
        load_study(_write(tmp_path, MINIMAL.split("[[targets]]")[0]))
