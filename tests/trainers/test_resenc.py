"""nnU-Net's residual-encoder presets on every path plain U-Nets take: shared plans (and the 2D
twin), pretraining and fine-tuning trainers, the transfer rules. In-process, on the session's
tiny planned datasets."""
import json
from pathlib import Path

import pytest
import torch

from nnunet_transfer.layout import plans_path
from nnunet_transfer.planning.nnunet_planner import plan_dataset
from nnunet_transfer.planning.plans_file import load_plans, resolved_configuration, write_plans
from nnunet_transfer.planning.preview import preview
from nnunet_transfer.planning.shared import plan_shared
from nnunet_transfer.planning.twin import twin_2d
from nnunet_transfer.trainers.finetune import REPORT_FILE, nnUNetTrainerFinetune, nnUNetTrainerFinetuneFrozenEncoder
from nnunet_transfer.transfer.load import model_part, transfer_with_rules
from nnunet_transfer.transfer.rules import TransferRules
from nnunet_transfer.transfer.checkpoint import load_checkpoint
from tests.trainers.test_hooks import _source_checkpoint, _trainer

SOURCE, TARGET = "Dataset901_DemoMRISegSource", "Dataset911_DemoStroke"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
pytestmark = pytest.mark.xdist_group("planned_tiny")  # one worker plans the session's tiny datasets


@pytest.fixture
def resenc_plans(folders):
    """Shared plans ``TinyResEnc`` by nnU-Net's ResEnc M preset, reusing the preprocessed 2d data."""
    if not plans_path(TARGET, "TinyResEnc").is_file():
        plan_shared(SOURCE, [TARGET], "TinyResEnc", ["2d"], num_processes=1, run_preprocessing=False,
                    planner="nnUNetPlannerResEncM", progress=False,
                    schedule={"num_epochs": 2, "num_iterations_per_epoch": 2, "num_val_iterations_per_epoch": 1})
        for name in (SOURCE, TARGET):  # nnU-Net's ResEnc presets preprocess as its default planner does
            plans = load_plans(name, "TinyResEnc")
            assert plans["configurations"]["2d"]["data_identifier"] == "nnUNetPlans_2d"
            plans["configurations"]["2d"]["data_identifier"] = "TinyPlans_2d"
            write_plans(plans, name)
    return "TinyResEnc"


def test_shared_plans_by_a_residual_encoder_preset(resenc_plans):
    plans = {name: load_plans(name, resenc_plans) for name in (SOURCE, TARGET)}
    architectures = [p["configurations"]["2d"]["architecture"] for p in plans.values()]
    assert architectures[0] == architectures[1] and architectures[0]["network_class_name"] == RESENC
    assert all(p["shared_plans"]["planner"] == "nnUNetPlannerResEncM" for p in plans.values())
    assert plans[SOURCE]["experiment_planner_used"] == "nnUNetPlannerResEncM"
    # the preprocessed data of the plain plans is reused: same spacing and normalisation
    plain = load_plans(TARGET, "TinyPlans")["configurations"]["2d"]
    assert plans[TARGET]["configurations"]["2d"]["spacing"] == plain["spacing"]


def test_pretrain_then_fine_tune_a_residual_encoder_network(resenc_plans, tmp_path):
    checkpoint = _source_checkpoint(tmp_path, plans=resenc_plans)
    source = load_checkpoint(checkpoint)
    assert source["nnunet_transfer"]["architecture"]["network_class_name"].endswith("ResidualEncoderUNet")
    plans = load_plans(TARGET, resenc_plans)
    plans.update(plans_name="TinyResEncFT", transfer={"checkpoint": str(checkpoint)})
    plans_path(TARGET, "TinyResEncFT").write_text(json.dumps(plans))
    previewed = preview(checkpoint, TARGET, "TinyResEncFT", "2d").to_dict()
    trainer = _trainer(nnUNetTrainerFinetune, TARGET, "TinyResEncFT")
    trainer.load_transfer_checkpoint()
    report = json.loads((Path(trainer.output_folder) / REPORT_FILE).read_text())
    assert report == previewed
    encoder = [p for p in report["parameters"] if p["part"] == "encoder"]
    assert any(p["name"].startswith("encoder.stem.") for p in encoder)  # the stem counts as encoder
    assert encoder and all(p["status"] == "loaded" for p in encoder)
    assert {p["status"] for p in report["parameters"] if p["part"] == "decoder"} == {"loaded"}
    state = trainer.network.state_dict()
    assert torch.equal(state["encoder.stem.convs.0.conv.weight"],
                       source["network_weights"]["encoder.stem.convs.0.conv.weight"])


def test_frozen_encoder_freezes_the_stem_and_every_residual_block(resenc_plans):
    plans = load_plans(TARGET, resenc_plans)
    plans.update(plans_name="TinyResEncFrozen", transfer={"checkpoint": "x", "frozen_encoder_epochs": 1},
                 training_schedule={"num_epochs": 2})
    plans_path(TARGET, "TinyResEncFrozen").write_text(json.dumps(plans))
    trainer = _trainer(nnUNetTrainerFinetuneFrozenEncoder, TARGET, "TinyResEncFrozen")
    frozen = {id(p) for p in trainer.optimizer.param_groups[1]["params"]}
    names = {n for n, p in trainer.network.named_parameters() if id(p) in frozen}
    assert names == {n for n, _ in trainer.network.named_parameters() if model_part(trainer.network, n) == "encoder"}
    assert any(n.startswith("encoder.stem.") for n in names) and any(".blocks." in n for n in names)
    trainer.current_epoch = 0
    trainer.on_train_epoch_start()
    assert all(not p.requires_grad for p in trainer.optimizer.param_groups[1]["params"])


def test_the_2d_twin_of_a_residual_encoder_network_inflates_into_it(folders):
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    plans = plan_dataset(SOURCE, "TinyResEnc3d", planner="nnUNetPlannerResEncM")
    cfg_3d = resolved_configuration(plans, "3d_fullres")
    twin = twin_2d(cfg_3d, batch_size=2)

    def build(cfg):
        arch = cfg["architecture"]
        return get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                      1, 2, deep_supervision=True)
    network_2d, network_3d = build(twin), build(cfg_3d)
    assert type(network_2d).__name__ == type(network_3d).__name__ == "ResidualEncoderUNet"
    report = transfer_with_rules(network_2d.state_dict(), network_3d, TransferRules())
    convs = [r for r in report.records if r.part in ("encoder", "decoder") and len(r.shape) == 5]
    assert convs and all(r.status == "adapted" and "inflated 2D->3D" in r.how for r in convs)


@pytest.mark.parametrize("trainer_name", ["nnUNetTrainerPretrainModelsGenesis", "nnUNetTrainerPretrainSimCLR"])
def test_self_supervised_pretexts_train_a_residual_encoder_network(resenc_plans, trainer_name):
    """The reconstruction pretexts use the whole U-Net (Models Genesis here), the pooled-head ones
    (rotation, SimCLR) pool the encoder's stages into a head (SimCLR here): one training step each
    on a real batch."""
    from nnunet_transfer.trainers import pretrain_ssl
    trainer = _trainer(getattr(pretrain_ssl, trainer_name), SOURCE, resenc_plans, fold="all")
    trainer.on_train_start()
    try:
        loss = trainer.train_step(next(trainer.dataloader_train))["loss"]
    finally:
        trainer.on_train_end()
    assert any(type(m).__name__ == "ResidualEncoder" for m in trainer.network.modules())
    assert float(loss) == float(loss) and float(loss) > 0  # finite and positive
