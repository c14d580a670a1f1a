"""The plans blocks: checked key by key, errors name the key; defaults; the transfer block's rules and strategy."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.plans_blocks import (Strategy, make_transfer_block,
                                          parse_pretraining, parse_schedule, parse_transfer)
from nnunet_transfer.transfer.rules import TransferRules


def test_training_seed_defaults_to_0_and_is_no_trainer_attribute():
    assert parse_schedule({}).training_seed == 0
    schedule = parse_schedule({"seed": 3, "num_epochs": 2})
    assert schedule.training_seed == 3 and schedule.trainer_settings() == {"num_epochs": 2}
    with pytest.raises(NnunetTransferError, match="'training_schedule.seed' is -1"):
        parse_schedule({"seed": -1})


def test_valid_schedule_keeps_what_is_set():
    schedule = parse_schedule({"num_epochs": 5, "initial_lr": 1, "final_validation": "never"})
    assert schedule.block() == {"num_epochs": 5, "initial_lr": 1.0, "final_validation": "never"}
    assert schedule.trainer_settings() == {"num_epochs": 5, "initial_lr": 1.0}
    assert parse_schedule({}).block() == {}


@pytest.mark.parametrize("bad, message", [
    ({"num_epoch": 3}, "'training_schedule.num_epoch' is not a training_schedule key; allowed here: final_validation"),
    ({"num_epochs": 2.5}, "'training_schedule.num_epochs' is 2.5: input should be a valid integer"),
    ({"num_epochs": 0}, "'training_schedule.num_epochs' is 0: input should be greater than 0"),
    ({"initial_lr": "0.1"}, "'training_schedule.initial_lr' is '0.1': input should be a valid number"),
    ({"num_epochs": True}, "'training_schedule.num_epochs' is True: input should be a valid integer"),
    ({"final_validation": "sometimes"},
     "'training_schedule.final_validation' is 'sometimes'; choose from auto, always"),
])
def test_invalid_schedule_names_the_key(bad, message):
    with pytest.raises(NnunetTransferError, match=message.replace("(", r"\(")):
        parse_schedule(bad, "plans 'P'")


def test_schedule_that_is_not_an_object():
    with pytest.raises(NnunetTransferError, match="'training_schedule' in plans 'P' must be a JSON object, got list"):
        parse_schedule([1], "plans 'P'")


@pytest.mark.parametrize("block, message", [
    ({"warmup_epochs": -1}, "transfer.warmup_epochs"),
    ({"frozen_encoder_epochs": 1.5}, "transfer.frozen_encoder_epochs"),
    ({"encoder_lr_factor": "0.1"}, "transfer.encoder_lr_factor"),
    ({"frozen_encoder_epochs": 10}, "must be smaller than the number of epochs"),
])
def test_strategy_keys_are_validated(block, message):
    with pytest.raises(NnunetTransferError, match=message):
        Strategy().with_options(block, num_epochs=10)


def test_strategy_defaults_are_overridden_by_the_block():
    defaults = Strategy(warmup_epochs=10, frozen_encoder_epochs=50)
    assert defaults.with_options({"frozen_encoder_epochs": 2}, 100) == Strategy(10, 2, 1.0)
    block = parse_transfer({"transfer": {"checkpoint": "c.pth", "encoder_lr_factor": 0.1}}, "plans 'P'")
    assert block.strategy(defaults, 100) == Strategy(10, 50, 0.1)


def test_transfer_block_round_trip_and_rules():
    rules = TransferRules(load="encoder", input_channels="mean", strict=True)
    block = make_transfer_block("/x/c.pth", rules, {"warmup_epochs": 3}, checkpoint_sha256="ab", attached_to="P")
    written = block.block()
    assert written["load"] == "encoder" and written["warmup_epochs"] == 3 and "frozen_encoder_epochs" not in written
    again = parse_transfer({"transfer": written}, "plans 'Q'")
    assert again == block and again.rules == rules
    assert parse_transfer({"transfer": {"checkpoint": "c"}}, "plans").rules == TransferRules()


@pytest.mark.parametrize("block, message", [
    ({}, "'transfer.checkpoint' is required"),
    ({"checkpoint": "c", "laod": "encoder"}, "'transfer.laod' is not a transfer key"),
    ({"checkpoint": "c", "load": "everything"},
     "'transfer.load' is 'everything'; choose from encoder, encoder\\+decoder"),
    ({"checkpoint": "c", "strict": "yes"}, "'transfer.strict' is 'yes': input should be a valid boolean"),
])
def test_bad_transfer_blocks_name_the_key(block, message):
    with pytest.raises(NnunetTransferError, match=message):
        parse_transfer({"transfer": block}, "plans 'P'")
    with pytest.raises(NnunetTransferError, match="plans 'P' have no 'transfer' block naming a checkpoint. Attach"):
        parse_transfer({}, "plans 'P'", hint="Attach one first.")


def test_pretraining_block_defaults_and_checks():
    settings = parse_pretraining({}, "plans")
    assert settings.seed is None and settings.pool_stages == [-1] and settings.models_genesis == {}
    settings = parse_pretraining({"pretraining": {"seed": 3, "rotation": {"p": 1}, "class_weights": "balanced"}}, "p")
    assert settings.seed == 3 and settings.rotation == {"p": 1}
    with pytest.raises(NnunetTransferError, match="'pretraining.class_weights' is 'inverse'; choose from balanced"):
        parse_pretraining({"pretraining": {"class_weights": "inverse"}}, "plans")
    with pytest.raises(NnunetTransferError, match="'pretraining.models_genesys' is not a pretraining key"):
        parse_pretraining({"pretraining": {"models_genesys": {}}}, "plans")
