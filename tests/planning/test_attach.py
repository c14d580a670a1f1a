"""attach: the name of the plans copy (the attach itself runs in tests/integration)."""
from nnunet_transfer.planning.attach import default_output_plans


def test_default_plans_copy_name_is_nnunet_safe():
    name = default_output_plans("nnUNetTransferPlans", "Dataset901_DemoMRISegSource")
    assert name == "nnUNetTransferPlans_from_DemoMRISegSource" and "__" not in name
