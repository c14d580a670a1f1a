"""The trainer hooks on real nnU-Net trainer objects built in-process from tiny planned data: the
schedule from the plans, optimizer groups, freezing at epoch boundaries, the transfer (the same
report as ``preview``), the self-describing checkpoint, the skipped final validation."""
import json
from pathlib import Path

import pytest
import torch
from nnunetv2.run.run_training import get_trainer_from_args

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.plans_file import load_plans, write_plans
from nnunet_transfer.planning.preview import preview
from nnunet_transfer.plans_blocks import TRANSFER_KEY
from nnunet_transfer.trainers.finetune import (REPORT_FILE, nnUNetTrainerFinetune, nnUNetTrainerFinetuneFrozenEncoder,
                                               nnUNetTrainerFromScratch)
from nnunet_transfer.trainers.pretrain_segmentation import nnUNetTrainerPretrainSegmentation
from nnunet_transfer.transfer.checkpoint import METADATA_KEY, load_checkpoint
from nnunet_transfer.transfer.load import canonical_entries, model_part

SOURCE, TARGET = "Dataset901_DemoMRISegSource", "Dataset911_DemoStroke"
pytestmark = pytest.mark.xdist_group("planned_tiny")  # one worker plans the session's tiny datasets


def _trainer(cls, dataset, plans_name, fold=0):
    """The trainer as ``nnUNetv2_train`` builds it (nnU-Net's own lookup through nnUNet_extTrainer), initialised."""
    trainer = get_trainer_from_args(dataset, "2d", fold, cls.__name__, plans_name, device=torch.device("cpu"))
    assert type(trainer) is cls
    trainer.initialize()
    return trainer


def _plans_with(dataset, name, **blocks):
    """A plans copy ``name`` of the shared tiny plans with ``blocks`` added; returns its name."""
    write_plans({**load_plans(dataset, "TinyPlans"), "plans_name": name, **blocks}, dataset)
    return name


def _source_checkpoint(tmp_path, mode="segmentation", pretext=None, plans="TinyPlans"):
    """A checkpoint of the source's own network, randomised, with our block saying how it was pretrained."""
    trainer = _trainer(nnUNetTrainerPretrainSegmentation, SOURCE, plans, fold="all")
    torch.manual_seed(1)
    with torch.no_grad():
        for p in trainer.network.parameters():
            p.copy_(torch.randn_like(p))
    path = tmp_path / "source.pth"
    trainer.save_checkpoint(str(path))
    checkpoint = load_checkpoint(path)
    checkpoint[METADATA_KEY].update(mode=mode, pretext=pretext)
    torch.save(checkpoint, path)
    return path


def test_schedule_comes_from_the_plans_and_bad_schedules_name_the_key(folders):
    trainer = _trainer(nnUNetTrainerFinetune, TARGET, _plans_with(TARGET, "Sched", transfer={"checkpoint": "x"}))
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (2, 2, 1)
    bad = _plans_with(TARGET, "BadSched", training_schedule={"num_epochs": "2"})
    with pytest.raises(NnunetTransferError, match="'training_schedule.num_epochs' is '2'.*plans 'BadSched'"):
        _trainer(nnUNetTrainerFinetune, TARGET, bad)


def test_optimizer_has_the_encoder_in_its_own_group(folders):
    trainer = _trainer(nnUNetTrainerFinetune, TARGET, _plans_with(TARGET, "Groups", transfer={"checkpoint": "x"}))
    entries, _ = canonical_entries(trainer.network)
    params = {id(p) for p in trainer.network.parameters()}
    encoder = {id(t) for n, t in entries.items() if id(t) in params and model_part(trainer.network, n) == "encoder"}
    rest, enc = trainer.optimizer.param_groups
    assert {id(p) for p in enc["params"]} == encoder and encoder
    assert {id(p) for p in rest["params"]} | encoder == params and not {id(p) for p in rest["params"]} & encoder


def test_encoder_is_frozen_exactly_for_the_frozen_epochs(folders):
    block = {"checkpoint": "x", "frozen_encoder_epochs": 2, "warmup_epochs": 1}
    plans = _plans_with(TARGET, "Frozen", transfer=block, training_schedule={"num_epochs": 4})
    trainer = _trainer(nnUNetTrainerFinetuneFrozenEncoder, TARGET, plans)
    encoder = trainer.optimizer.param_groups[1]["params"]
    seen = []
    for epoch in range(4):
        trainer.current_epoch = epoch
        trainer.on_train_epoch_start()
        seen.append((all(not p.requires_grad for p in encoder), trainer.optimizer.param_groups[1]["lr"] == 0.0))
    assert seen == [(True, True), (True, True), (False, False), (False, False)]
    assert all(p.requires_grad for p in trainer.optimizer.param_groups[0]["params"])


@pytest.mark.parametrize("mode, pretext, load", [("classification", None, "encoder"),
                                                 ("segmentation", None, "encoder+decoder")])
def test_a_block_without_load_trains_what_preview_shows(folders, tmp_path, mode, pretext, load):
    checkpoint = _source_checkpoint(tmp_path, mode, pretext)
    plans = _plans_with(TARGET, f"NoLoad{mode}", transfer={"checkpoint": str(checkpoint)})  # no "load" key
    previewed = preview(checkpoint, TARGET, plans, "2d").to_dict()
    trainer = _trainer(nnUNetTrainerFinetune, TARGET, plans)
    trainer.load_transfer_checkpoint()
    trained = json.loads((Path(trainer.output_folder) / REPORT_FILE).read_text())
    assert previewed["load"] == trained["load"] == load
    assert previewed == trained
    loaded_parts = {p["part"] for p in trained["parameters"] if p["status"] == "loaded"}
    assert loaded_parts == ({"encoder"} if load == "encoder" else {"encoder", "decoder"})


def test_a_malformed_transfer_block_is_one_message(folders):
    plans = _plans_with(TARGET, "Laod", transfer={"checkpoint": "x", "laod": "encoder"})
    with pytest.raises(NnunetTransferError, match=r"'transfer.laod' is not a transfer key; allowed here: .* \(in "
                                                  r"Plans 'Laod' of Dataset911_DemoStroke\)"):
        _trainer(nnUNetTrainerFinetune, TARGET, plans)  # checked when the optimizer is built, before any epoch
    no_block = _plans_with(TARGET, "NoBlock")
    with pytest.raises(NnunetTransferError, match="have no 'transfer' block naming a checkpoint. Attach one first"):
        _trainer(nnUNetTrainerFinetune, TARGET, no_block)


def test_pretraining_checkpoints_describe_themselves_and_load_safely(folders, tmp_path):
    path = _source_checkpoint(tmp_path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    meta = checkpoint[METADATA_KEY]
    assert meta["source_dataset"] == SOURCE and meta["configuration"] == "2d" and meta["plans_name"] == "TinyPlans"
    assert meta["input_channels"] == 1 and meta["domain"] == "mri" and meta["trainer"] == \
        "nnUNetTrainerPretrainSegmentation"
    assert meta["architecture"] == load_plans(SOURCE, "TinyPlans")["configurations"]["2d"]["architecture"]
    json.dumps(meta)  # plain data


def test_final_validation_is_skipped_as_the_schedule_says(folders):
    plans = _plans_with(TARGET, "Never", transfer={"checkpoint": "x"},
                        training_schedule={"num_epochs": 2, "final_validation": "never"})
    trainer = _trainer(nnUNetTrainerFinetune, TARGET, plans)
    trainer.perform_actual_validation()  # would need trained weights and raw data if it ran
    assert "Final validation skipped (training_schedule.final_validation=never, fold=0)" in \
        open(trainer.log_file).read()
    assert not (Path(trainer.output_folder) / "validation").exists()


def test_the_transfer_block_is_ignored_by_the_scratch_baseline(folders):
    plans = _plans_with(TARGET, "Scratch", transfer={"checkpoint": "/does/not/matter.pth"})
    trainer = _trainer(nnUNetTrainerFromScratch, TARGET, plans)
    assert TRANSFER_KEY in trainer.plans_manager.plans and len(trainer.optimizer.param_groups) == 1


def test_train_subset_restricts_the_training_cases_only(folders):
    everything = _trainer(nnUNetTrainerFromScratch, TARGET, "TinyPlans", fold="all").do_split()
    cases = sorted(everything[0])
    assert len(cases) == 4
    subset = _plans_with(TARGET, "Subset", training_schedule={"num_epochs": 2, "train_subset": {"all": cases[1:3]}},
                         transfer={"checkpoint": "x"})  # the fine-tuning trainer needs one (not loaded here)
    for cls in (nnUNetTrainerFromScratch, nnUNetTrainerFinetune):
        train, validation = _trainer(cls, TARGET, subset, fold="all").do_split()
        assert train == cases[1:3] and sorted(validation) == sorted(everything[1])  # validation as nnU-Net's
    outside = _plans_with(TARGET, "Outside", training_schedule={"train_subset": {"all": ["nope"]}})
    with pytest.raises(RuntimeError, match="case.s. nope are not training cases of fold all"):
        _trainer(nnUNetTrainerFromScratch, TARGET, outside, fold="all").do_split()
    other_fold = _plans_with(TARGET, "OtherFold", training_schedule={"train_subset": {"0": cases[:1]}})
    with pytest.raises(RuntimeError, match="no subset for fold all"):
        _trainer(nnUNetTrainerFromScratch, TARGET, other_fold, fold="all").do_split()


def test_the_schedule_s_optimizer_recipe_is_every_arm_s(folders):
    """AdamW, weight decay, gradient clipping and warm-up from training_schedule, identical for the
    fine-tuning trainers and the scratch baseline; a transfer block's warm-up still overrides."""
    recipe = {"num_epochs": 4, "optimizer": "adamw", "initial_lr": 1e-3, "weight_decay": 0.05, "grad_clip": 0.5,
              "warmup_epochs": 3}
    plans = _plans_with(TARGET, "Recipe", transfer={"checkpoint": "x"}, training_schedule=recipe)
    for cls in (nnUNetTrainerFinetune, nnUNetTrainerFromScratch):
        trainer = _trainer(cls, TARGET, plans)
        assert isinstance(trainer.optimizer, torch.optim.AdamW) and trainer.weight_decay == 0.05
        assert all(g["betas"] == (0.9, 0.98) for g in trainer.optimizer.param_groups)
        trainer.lr_scheduler.step(0)
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 0 / 4) ** 0.9 / 4)
        for p in trainer.network.parameters():
            p.grad = torch.full_like(p, 10.0)
        trainer.optimizer.step()
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in trainer.network.parameters()))
        assert norm == pytest.approx(0.5, rel=1e-4)  # clipped before the step
    own = _plans_with(TARGET, "RecipeOwnWarmup", transfer={"checkpoint": "x", "warmup_epochs": 1},
                      training_schedule=recipe)
    assert _trainer(nnUNetTrainerFinetune, TARGET, own).strategy.warmup_epochs == 1
    assert _trainer(nnUNetTrainerFinetune, TARGET, plans).strategy.warmup_epochs == 3
    with pytest.raises(NnunetTransferError, match="grad_clip"):
        _trainer(nnUNetTrainerFinetune, TARGET, _plans_with(TARGET, "Clip13", training_schedule={"grad_clip": 13}))
