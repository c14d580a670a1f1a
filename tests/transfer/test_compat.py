"""Whether a source can initialise a target at all: dimensionality and input channels under the rules."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.compat import check_compatible, input_projection_key
from nnunet_transfer.transfer.rules import TransferRules
from tests.conftest import tiny_unet


def test_compatibility_under_rules():
    check_compatible(tiny_unet(2).state_dict(), tiny_unet(3))  # 2D into 3D: inflation
    with pytest.raises(NnunetTransferError, match="3D network cannot initialise a 2D one"):
        check_compatible(tiny_unet(3).state_dict(), tiny_unet(2))
    check_compatible(tiny_unet(3, in_channels=3).state_dict(), tiny_unet(3))  # 3 -> 1 by sum
    with pytest.raises(NnunetTransferError, match="Cannot adapt 3 input channels to 2"):
        check_compatible(tiny_unet(3, in_channels=3).state_dict(), tiny_unet(3, in_channels=2))
    check_compatible(tiny_unet(3, in_channels=3).state_dict(), tiny_unet(3, in_channels=2),
                     rules=TransferRules(input_channels="tile"))


def test_input_projection_key_comes_from_the_network_declaration():
    plain, residual = tiny_unet(3), tiny_unet(3, residual=True)
    for model, first_conv in ((plain, plain.encoder.stages[0][0].convs[0].conv),
                              (residual, residual.encoder.stem.convs[0].conv)):
        key = input_projection_key(model)
        assert key in {f"{k}.weight" for k in model.keys_to_in_proj}
        assert model.state_dict()[key].data_ptr() == first_conv.weight.data_ptr()
