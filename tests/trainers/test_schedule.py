import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.trainers.base import validate_schedule
from nnunet_transfer.trainers.metadata import guess_domain


def test_valid_schedule_is_normalised():
    assert validate_schedule({"num_epochs": 5.0, "initial_lr": 1, "final_validation": "never"}) == {
        "num_epochs": 5, "initial_lr": 1.0, "final_validation": "never"}


@pytest.mark.parametrize("bad, message", [
    ({"num_epoch": 3}, "Unknown key 'training_schedule.num_epoch'"),
    ({"num_epochs": 2.5}, "must be int"),
    ({"num_epochs": 0}, "must be positive"),
    ({"initial_lr": "0.1"}, "must be float"),
    ({"num_epochs": True}, "must be int"),
    ({"final_validation": "sometimes"}, "final_validation"),
])
def test_invalid_schedule_names_the_key(bad, message):
    with pytest.raises(NnunetTransferError, match=message):
        validate_schedule(bad)


def test_domain_from_dataset_json():
    assert guess_domain({"nnunet_transfer": {"domain": "mri"}, "channel_names": {"0": "R"}}) == "mri"
    assert guess_domain({"channel_names": {"0": "R", "1": "G", "2": "B"}}) == "natural"
    assert guess_domain({"channel_names": {"0": "T1"}}) == "mri"
    assert guess_domain({"channel_names": {"0": "CT"}}) == "unknown"
