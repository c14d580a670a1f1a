"""The self-describing block of pretraining checkpoints: the domain guess (the block itself is
checked on real trainers in tests/trainers/test_hooks.py and tests/integration)."""
from nnunet_transfer.trainers.metadata import guess_domain


def test_domain_from_dataset_json():
    assert guess_domain({"nnunet_transfer": {"domain": "mri"}, "channel_names": {"0": "R"}}) == "mri"
    assert guess_domain({"channel_names": {"0": "R", "1": "G", "2": "B"}}) == "natural"
    assert guess_domain({"channel_names": {"0": "T1"}}) == "mri"
    assert guess_domain({"channel_names": {"0": "CT"}}) == "unknown"
