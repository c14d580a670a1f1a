"""attach: the name of the plans copy, and what it refuses (the attach-and-train chain runs in tests/integration)."""
from nnunet_transfer.planning.attach import default_output_plans


def test_default_plans_copy_name_is_nnunet_safe():
    name = default_output_plans("nnUNetTransferPlans", "Dataset901_DemoMRISegSource")
    assert name == "nnUNetTransferPlans_from_DemoMRISegSource" and "__" not in name


def test_attach_and_preview_refuse_a_checkpoint_that_loads_no_encoder_weight(planned_tiny, monkeypatch, tmp_path):
    """Another key layout: preview and attach give the same error, and attach writes nothing."""
    import pytest
    import torch

    from nnunet_transfer.errors import NnunetTransferError
    from nnunet_transfer.layout import plans_path
    from nnunet_transfer.planning.attach import attach
    from nnunet_transfer.planning.plans_file import load_plans
    from nnunet_transfer.planning.preview import build_target_network, preview
    from nnunet_transfer.transfer.rules import TransferRules
    from tests.conftest import use_folders
    use_folders(monkeypatch, planned_tiny)
    network = build_target_network("Dataset911_DemoStroke", load_plans("Dataset911_DemoStroke", "TinyPlans"), "2d")
    checkpoint = tmp_path / "other_layout.pth"
    torch.save({"network_weights": {f"backbone.{k}": v for k, v in network.state_dict().items()}}, checkpoint)
    errors = []
    for run in (lambda: preview(checkpoint, 911, "TinyPlans", "2d"),
                lambda: attach(checkpoint, 911, "TinyPlans", "TinyPlans_other")):
        with pytest.raises(NnunetTransferError, match="another architecture or another key layout") as error:
            run()
        errors.append(str(error.value))
    assert errors[0] == errors[1]
    assert not plans_path("Dataset911_DemoStroke", "TinyPlans_other").exists()
    allowed = TransferRules(allow_no_encoder_weights=True)
    assert preview(checkpoint, 911, "TinyPlans", "2d", allowed).counts().get("loaded", 0) == 0
    assert attach(checkpoint, 911, "TinyPlans", "TinyPlans_other", allowed).is_file()


def test_attach_reads_the_checkpoint_once_and_refuses_as_the_driver_does(planned_tiny, monkeypatch, tmp_path):
    """A 3D checkpoint into plans that only have 2d: the driver's error, read once, nothing written."""
    import pytest
    import torch

    from nnunet_transfer.errors import NnunetTransferError
    from nnunet_transfer.layout import plans_path
    from nnunet_transfer.planning.attach import attach
    from nnunet_transfer.planning.plans_file import load_plans
    from nnunet_transfer.planning.preview import build_target_network, preview
    from tests.conftest import use_folders
    use_folders(monkeypatch, planned_tiny)
    network = build_target_network("Dataset911_DemoStroke", load_plans("Dataset911_DemoStroke", "TinyPlans"), "2d")
    checkpoint = tmp_path / "three_d.pth"
    torch.save({"network_weights": {k: v.unsqueeze(2) if v.ndim == 4 else v
                                    for k, v in network.state_dict().items()}}, checkpoint)
    with pytest.raises(NnunetTransferError, match="a 3D network cannot initialise a 2D one") as expected:
        preview(checkpoint, 911, "TinyPlans", "2d")
    reads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: reads.append(a) or real_load(*a, **k))
    with pytest.raises(NnunetTransferError) as error:
        attach(checkpoint, 911, "TinyPlans", "TinyPlans_3d")
    assert str(error.value) == str(expected.value) and len(reads) == 1
    assert not plans_path("Dataset911_DemoStroke", "TinyPlans_3d").exists()
