"""Transfer rules: validated values and the default load rule of a checkpoint."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.rules import TransferRules, default_load


def test_rules_are_validated():
    with pytest.raises(NnunetTransferError, match="transfer.inflation"):
        TransferRules(inflation="stretch")
    with pytest.raises(NnunetTransferError, match="transfer.strict must be true or false"):
        TransferRules(strict="yes")


@pytest.mark.parametrize("metadata, load", [
    (None, "encoder+decoder"),
    ({"mode": "segmentation"}, "encoder+decoder"),
    ({"mode": "classification"}, "encoder"),
    ({"mode": "self-supervised", "pretext": "models_genesis"}, "encoder+decoder"),
    ({"mode": "self-supervised", "pretext": "rotation"}, "encoder"),
    ({"mode": "self-supervised", "pretext": "simclr"}, "encoder"),
])
def test_default_load_follows_what_the_pretraining_trained(metadata, load):
    assert default_load(metadata) == load
    assert TransferRules().with_default_load(metadata).load == load
    assert TransferRules(load="all-but-head").with_default_load(metadata).load == "all-but-head"
