"""Study files: every key checked, errors name the key; the grid has every run plus scratch."""
import json
from pathlib import Path

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study.spec import json_schema, load_study
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


def test_training_sizes_multiply_the_runs_of_their_target(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL.replace("dataset = 3\n", "dataset = 3\ntrain_sizes = [8, 2]\n")))
    assert study.targets[0].train_sizes == (2, 8) and study.targets[1].train_sizes == ()
    assert study.subset_seed == 0
    grid = runs(study)
    assert len(grid) == (2 + 1) * 2 * (2 * 2 + 1)  # (two sizes of target 3, target 4) x folds x initialisations
    assert {r.size for r in grid if r.target.key == "3"} == {2, 8} and {r.size for r in grid if r.target.key == "4"} \
        == {None}
    ids = {s.id for s in expand(study)}
    assert {"train/3/n2/scratch/scratch/fold_0", "test/3/n8/mri_ssl_models_genesis/warmup/fold_1",
            "train/4/scratch/scratch/fold_0"} <= ids


def test_seeds_are_a_grid_axis_and_seed_0_keeps_the_ids(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL.replace("folds = [0, 1]", "folds = [0, 1]\nseeds = [0, 4]")))
    grid = runs(study)
    assert len(grid) == 2 * 2 * 2 * (2 * 2 + 1) and {r.seed for r in grid} == {0, 4}
    ids = [s.id for s in expand(study)]
    assert {"train/3/scratch/scratch/fold_0", "train/3/scratch/scratch/seed_4/fold_0",
            "test/4/natural_classification/warmup/seed_4/fold_1"} <= set(ids)
    # one pretraining per source (pretrain_seeds = "one"): every seed fine-tunes from it
    assert [i for i in ids if i.startswith("pretrain/")] == ["pretrain/mri_ssl_models_genesis",
                                                              "pretrain/natural_classification"]
    seed4 = next(s for s in expand(study) if s.id == "train/3/mri_ssl_models_genesis/finetune/seed_4/fold_0")
    assert seed4.deps == ("pretrain/mri_ssl_models_genesis",)
    each = load_study(_write(tmp_path, MINIMAL.replace("folds = [0, 1]", 'seeds = [1, 2]\npretrain_seeds = "each"')))
    steps = {s.id: s for s in expand(each)}
    assert {"pretrain/mri_ssl_models_genesis/seed_1", "pretrain/mri_ssl_models_genesis/seed_2"} <= set(steps)
    assert steps["train/3/mri_ssl_models_genesis/warmup/seed_2/fold_0"].deps == (
        "pretrain/mri_ssl_models_genesis/seed_2",)


def test_plans_names_and_schedules_of_seeded_runs(tmp_path):
    from nnunet_transfer.study.steps import finetune_plans, pretraining_plans, run_schedule
    study = load_study(_write(tmp_path, MINIMAL.replace("folds = [0, 1]", "seeds = [0, 4]")))
    by_path = {r.path: r for r in runs(study)}
    seeded = by_path["3/mri_ssl_models_genesis/finetune/seed_4/fold_0"]
    assert finetune_plans(study, seeded) == "nnUNetTransferPlans_from_mri_ssl_models_genesis_finetune_s4"
    assert run_schedule(study, seeded) == {"seed": 4}
    unseeded = by_path["3/scratch/scratch/fold_0"]
    assert finetune_plans(study, unseeded) == "nnUNetTransferPlans" and run_schedule(study, unseeded) is None
    assert pretraining_plans(study, 4) == "nnUNetTransferPlans_s4" and study.pretrain_seed(4) == 0


def test_per_source_transfer_rules_and_strategies(tmp_path):
    text = MINIMAL.replace('task = "ssl:models_genesis"\n', 'task = "ssl:models_genesis"\n[sources.transfer]\n'
                           'load = "encoder"\n[[sources]]\ndataset = 1\ntask = "ssl:models_genesis"\n'
                           'strategies = ["frozen_encoder"]\n')
    study = load_study(_write(tmp_path, text))
    encoder, full = study.sources[:2]
    assert encoder.label == "mri ssl:models_genesis [load=encoder]" and encoder.rules == {"load": "encoder"}
    assert encoder.key == "mri_ssl_models_genesis_load_encoder" and full.key == "mri_ssl_models_genesis"
    assert full.strategies == ("frozen_encoder",) and study.strategies_of(encoder) == ("finetune", "warmup")
    # one pretraining for both: the same dataset and task
    assert encoder.pretraining == full.pretraining == "mri_ssl_models_genesis"
    steps = expand(study)
    assert [s.id for s in steps if s.kind == "pretrain"] == ["pretrain/mri_ssl_models_genesis",
                                                             "pretrain/natural_classification"]
    ids = {s.id for s in steps}
    assert {"train/3/mri_ssl_models_genesis_load_encoder/warmup/fold_0",
            "train/3/mri_ssl_models_genesis/frozen_encoder/fold_0"} <= ids
    assert "train/3/mri_ssl_models_genesis/finetune/fold_0" not in ids


def test_two_pretrainings_under_one_name_keep_their_own_steps(tmp_path):
    text = MINIMAL.replace('task = "ssl:models_genesis"\n', 'task = "ssl:models_genesis"\nlabel = "X"\n').replace(
        'domain = "natural"\n', 'domain = "natural"\nlabel = "X"\n[sources.transfer]\nload = "encoder"\n')
    study = load_study(_write(tmp_path, text))
    assert [s.pretraining for s in study.sources] == ["X", "X_load_encoder"]
    assert [s.id for s in expand(study) if s.kind == "pretrain"] == ["pretrain/X", "pretrain/X_load_encoder"]


@pytest.mark.parametrize("change, bad, message", [
    ('domain = "natural"\n', 'domain = "natural"\n[sources.transfer]\nload = "decoder"\n',
     r"'sources\[1\].transfer.load' is 'decoder'; choose from encoder, encoder\+decoder"),
    ('domain = "natural"\n', 'domain = "natural"\n[sources.transfer]\nloads = "encoder"\n',
     r"'sources\[1\].transfer.loads' is not a study key; allowed here: allow_no_encoder_weights"),
    ('task = "classification"\n', 'task = "classification"\nstrategies = ["finetune", "finetune"]\n',
     r"'sources\[1\].strategies' has 'finetune' and 'finetune'"),
    ('folds = [0, 1]', 'seeds = [1, 1]', "'seeds' has 1 and 1, which share the seed"),
    ('folds = [0, 1]', 'seeds = []', "'seeds' is \\[\\]: list should have at least 1"),
    ('folds = [0, 1]', 'pretrain_seeds = "two"', "'pretrain_seeds' is 'two'; choose from one, each"),
    ('lesions = true\n', 'lesions = true\n[schedule]\nseed = 3\n', "'schedule.seed' is written by the study runner"),
])
def test_bad_seeds_and_source_rules(tmp_path, change, bad, message):
    with pytest.raises(NnunetTransferError, match=message):
        load_study(_write(tmp_path, MINIMAL.replace(change, bad, 1)))


@pytest.mark.parametrize("change, bad, message", [
    ('dataset = 3\n', 'dataset = 3\ntrain_sizes = [2, 2]\n',
     r"'targets\[0\].train_sizes' has 2 and 2, which share the training size"),
    ('dataset = 3\n', 'dataset = 3\ntrain_sizes = [0]\n',
     r"'targets\[0\].train_sizes\[0\]' is 0: input should be greater than 0"),
    ('dataset = 3\n', 'dataset = 3\ntrain_sizes = []\n', r"'targets\[0\].train_sizes' is \[\]: list should have"),
    ('name = "s"', 'name = "s"\nsubset_seed = -1', "'subset_seed' is -1"),
    ('lesions = true\n', 'lesions = true\n[schedule]\ntrain_subset = {"0" = ["a"]}\n',
     "'schedule.train_subset' is written by the study runner"),
])
def test_bad_training_sizes(tmp_path, change, bad, message):
    with pytest.raises(NnunetTransferError, match=message):
        load_study(_write(tmp_path, MINIMAL.replace(change, bad, 1)))


@pytest.mark.parametrize("change, bad, message", [
    ('task = "ssl:models_genesis"', 'task = "ssl:nope"',
     r"'sources\[0\].task' is 'ssl:nope'; choose from segmentation"),
    ('metric = "miou"', 'metric = "auc"', r"'targets\[1\].metric' is 'auc'; choose from dice, miou"),
    ('strategies = ["finetune", "warmup"]', 'strategies = ["finetune", "freeze"]',
     r"'strategies\[1\]' is 'freeze'; choose from finetune, warmup"),
    ('strategies = ["finetune", "warmup"]', 'strategies = []', "'strategies' is \\[\\]: list should have at least 1"),
    ('folds = [0, 1]', 'folds = [-1]', r"'folds\[0\]' is -1; it should be greater than or equal to 0; or 'all'"),
    ('folds = [0, 1]', 'folds = [true]', r"'folds\[0\]' is True; it should be a valid integer; or 'all'"),
    ('name = "s"', 'name = "s"\ncolour = "red"', "'colour' is not a study key; allowed here: batch_size"),
    ('name = "s"', 'name = "s"\nnum_processes = "two"', "'num_processes' is 'two': input should be a valid integer"),
    ('name = "s"', 'name = "s"\nbatch_size = "big"', "'batch_size' is 'big': input should be a valid integer"),
    ('name = "s"', 'name = "s"\ndevice = "gpu"', "'device' is 'gpu'; choose from cuda, cpu, mps"),
    ('name = "s"', 'name = "../s"', "'name' is '../s': string should match pattern"),
    ('name = "s"', 'name = "s"\n[schedule]\nnum_epochs = "1"',
     "'schedule.num_epochs' is '1': input should be a valid integer"),
    ('name = "s"', 'name = "s"\n[launcher]\nkind = "slurm"\ncpus_per_task = 0',
     "'launcher.cpus_per_task' is 0: input should be greater than 0"),
    ('name = "s"', 'name = "s"\n[strategy_options.warmup]\nwarmup = 3',
     "'strategy_options.warmup.warmup' is not a study key; allowed here: encoder_lr_factor"),
    ('dataset = 1\n', 'dataset = 1.5\n',
     r"'sources\[0\].dataset' is 1.5; it should be a valid integer; or a valid string"),
])
def test_bad_values_name_the_key(tmp_path, change, bad, message):
    with pytest.raises(NnunetTransferError, match=message) as error:
        load_study(_write(tmp_path, MINIMAL.replace(change, bad, 1)))
    assert str(error.value).startswith(f"{tmp_path / 'study.toml'}: ") and "\n" not in str(error.value)


@pytest.mark.parametrize("change, bad, message", [
    ('task = "classification"', 'task = "classification"\nlabel = "mri ssl models genesis"',
     "'sources' has 'mri ssl models genesis' and 'mri ssl:models_genesis', which share the source id"),
    ('task = "classification"', 'task = "classification"\nlabel = "scratch"', "'sources' has 'scratch' and 'scratch'"),
    ('strategies = ["finetune", "warmup"]', 'strategies = ["finetune", "finetune"]',
     "'strategies' has 'finetune' and 'finetune', which share the strategy"),
    ('folds = [0, 1]', 'folds = [0, 0]', "'folds' has 0 and 0, which share the fold"),
    ('metric = "miou"', 'metric = "miou"\nlabel = "3"', "'targets' has '3' and '3', which share the target id"),
])
def test_entries_that_would_share_a_step_id_are_refused(tmp_path, change, bad, message):
    with pytest.raises(NnunetTransferError, match=message):
        load_study(_write(tmp_path, MINIMAL.replace(change, bad, 1)))


def test_json_schema_for_editors_is_current():
    shipped = Path(__file__).resolve().parents[2] / "documentation" / "reference" / "study.schema.json"
    assert json.loads(shipped.read_text()) == json_schema(), "regenerate: nnunet_transfer study schema"


def test_missing_file_invalid_toml_and_duplicate_labels(tmp_path):
    with pytest.raises(NnunetTransferError, match="does not exist"):
        load_study(tmp_path / "nope.toml")
    with pytest.raises(NnunetTransferError, match="is not valid TOML"):
        load_study(_write(tmp_path, "name = "))
    with pytest.raises(NnunetTransferError, match="'targets' needs at least one"):
        load_study(_write(tmp_path, MINIMAL.split("[[targets]]")[0]))


def test_target_metrics_and_profile_choose_the_table(tmp_path):
    text = MINIMAL.replace('metric = "miou"\nlesions = true', 'metric = "atlas2_lesionwise_f1"\nlesions = true\n'
                           'profile = "atlas2"\nmetrics = ["hd95", "pq", "atlas2_volume_difference"]\n'
                           'nsd_tolerance_mm = 1.5')
    study = load_study(_write(tmp_path, text))
    target = study.targets[1]
    assert [m.name for m in target.table_metrics] == ["atlas2_lesionwise_f1", "hd95", "pq", "atlas2_volume_difference"]
    assert [m.column for m in target.table_metrics] == ["atlas2_lesionwise_F1", "HD95", "PQ",
                                                        "atlas2_volume_difference"]
    assert [m.lower_is_better for m in target.table_metrics] == [False, True, False, True]
    assert target.profile == "atlas2" and target.nsd_tolerance_mm == 1.5
    # defaults: the primary metric, and the detection rate of a lesion target
    plain = load_study(_write(tmp_path, MINIMAL)).targets
    assert [m.name for m in plain[0].table_metrics] == ["dice"]
    assert [m.name for m in plain[1].table_metrics] == ["miou", "lesion_tpr"]


@pytest.mark.parametrize("bad, message", [
    ('metrics = ["lesion_f1"]', r"'targets\[0\].metrics' 'lesion_f1' is a lesion metric: set lesions = true"),
    ('lesions = true\nmetric = "msseg2016_f1"',
     r"'targets\[0\].metric' 'msseg2016_f1' is a metric of the msseg2016 profile: set profile = \"msseg2016\""),
    ('profile = "atlas2"', r"'targets\[0\].profile' needs lesions = true"),
    ('profile = "brats"', r"'targets\[0\].profile' is 'brats'; choose from atlas2, isbi2015, msseg2016"),
    ('metrics = ["hd99"]', r"'targets\[0\].metrics\[0\]' is 'hd99'; choose from dice, miou, nsd"),
])
def test_metrics_the_evaluation_would_not_compute_are_refused(tmp_path, bad, message):
    text = MINIMAL.replace("[[targets]]\ndataset = 3\n", f"[[targets]]\ndataset = 3\n{bad}\n")
    with pytest.raises(NnunetTransferError, match=message):
        load_study(_write(tmp_path, text))
