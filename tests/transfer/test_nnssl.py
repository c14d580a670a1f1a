"""nnssl / OpenMind checkpoints, written by this test in exactly nnssl's structure (its trainers'
``save_checkpoint`` and ``add_adaptation_plan.py``): read safely, architecture and patch from the
adaptation plan, encoder loaded, SparK's untrained copies never used, what cannot be built refused."""
import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, extract_state_dict, load_checkpoint
from nnunet_transfer.transfer.driver import transfer_from_checkpoint
from nnunet_transfer.transfer.nnssl import RESENC_L_KWARGS
from nnunet_transfer.transfer.report import ADAPTED, LOADED, SKIPPED
from nnunet_transfer.transfer.rules import TransferRules
from nnunet_transfer.networks.build import build_network
from tests.conftest import tiny_unet
from tests.nnssl_primus import nnssl_primus_checkpoint

CITATION = {"type": "pretraining", "name": "OpenMind MAE", "apa_citations": ["Wald, T. et al. (2025). ..."]}


def _adaptation_plan(arch_class_name="ResidualEncoderUNet", arch_kwargs="tiny", encoder="encoder.stages",
                     stem="encoder.stem"):
    """A plan as nnssl's AdaptationPlan.serialize() leaves it after torch.load: dicts, tuples kept."""
    if arch_kwargs == "tiny":
        arch_kwargs = {"n_stages": 2, "features_per_stage": [4, 8], "conv_op": "torch.nn.modules.conv.Conv3d",
                       "kernel_sizes": [[3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2]],
                       "n_blocks_per_stage": [1, 1], "n_conv_per_stage_decoder": [1], "conv_bias": True,
                       "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                       "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                       "dropout_op_kwargs": None, "nonlin": "torch.nn.modules.activation.LeakyReLU",
                       "nonlin_kwargs": {"inplace": True}}
    return {"architecture_plans": {"arch_class_name": arch_class_name, "arch_kwargs": arch_kwargs,
                                   "arch_kwargs_requiring_import": None if arch_kwargs is None else
                                   ["conv_op", "norm_op", "nonlin"]},
            "pretrain_plan": {"dataset_name": "Dataset001_OpenMind", "plans_name": "nnsslPlans",
                              "original_median_spacing_after_transp": [1, 1, 1],
                              "image_reader_writer": "NibabelReaderWriter", "transpose_forward": [0, 1, 2],
                              "transpose_backward": [0, 1, 2],
                              "configurations": {"onemmiso": {"data_identifier": "nnsslPlans_onemmiso",
                                                              "spacing_style": "onemmiso", "spacing": [1, 1, 1],
                                                              "patch_size": (160, 160, 160)}},
                              "experiment_planner_used": "ExperimentPlanner"},
            "pretrain_num_input_channels": 1, "recommended_downstream_patchsize": (32, 48, 40),
            "key_to_encoder": encoder, "key_to_stem": stem,
            "keys_to_in_proj": (f"{stem}.convs.0.conv", f"{stem}.convs.0.all_modules.0"), "key_to_lpe": None}


def _randomised_resenc():
    network = tiny_unet(3, residual=True)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in network.parameters():
            p.copy_(torch.randn_like(p))
    return network


def _training_checkpoint(path, weights, plan, **extra):
    """nnssl's AbstractBaseTrainer.save_checkpoint: network weights, optimizer / logging state and
    init_args (with a torch.device and the pretraining file list)."""
    torch.save({"network_weights": weights, "optimizer_state": {"state": {}, "param_groups": []},
                "grad_scaler_state": None, "logging": {"train_losses": [1.0, 0.5]}, "_best_ema": None,
                "current_epoch": 100, "init_args": {"plan": {"dataset_name": "Dataset001_OpenMind"},
                                                    "configuration_name": "onemmiso", "fold": 0,
                                                    "pretrain_json": {"images": ["/data/sub-1_T1w.nii.gz"]},
                                                    "device": torch.device("cpu")},
                "trainer_name": "BaseMAETrainer", "nnssl_adaptation_plan": plan, **extra}, path)
    return path


def test_a_training_checkpoint_loads_safely_and_describes_its_network(tmp_path):
    source = _randomised_resenc()
    path = _training_checkpoint(tmp_path / "checkpoint_final.pth", source.state_dict(), _adaptation_plan())
    loaded = load_checkpoint(path)                       # weights_only=True, torch.device included
    meta = checkpoint_metadata(loaded)
    assert meta["mode"] == "nnssl" and meta["configuration"] == "3d_fullres"
    assert meta["patch_size"] == [32, 48, 40] and meta["spacing"] == [1.0, 1.0, 1.0] and meta["input_channels"] == 1
    arch = meta["architecture"]
    assert arch["network_class_name"] == "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    assert arch["_kw_requires_import"] == ["conv_op", "norm_op", "nonlin"]
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    built = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"], 1,
                                   2, deep_supervision=True)
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in source.state_dict().items()}
    assert meta["citations"] == [] and meta["trainer"] == "BaseMAETrainer"


def test_encoder_loads_into_a_two_channel_target_and_the_decoder_is_initialised(tmp_path):
    source = _randomised_resenc()
    path = tmp_path / "release.pth"  # add_adaptation_plan.py's form, with citations as published checkpoints have
    torch.save({"network_weights": source.state_dict(), "init_args": {"device": torch.device("cpu")},
                "trainer_name": "BaseMAETrainer", "nnssl_adaptation_plan": _adaptation_plan(),
                "citations": [CITATION]}, path)
    target = tiny_unet(3, in_channels=2, residual=True)
    report = transfer_from_checkpoint(path, target, TransferRules())
    assert report.load == "encoder" and report.source_metadata["citations"] == [CITATION]
    encoder = [r for r in report.records if r.part == "encoder"]
    assert encoder and all(r.status in (LOADED, ADAPTED) for r in encoder)
    stem = next(r for r in encoder if r.name == "encoder.stem.convs.0.conv.weight")
    assert stem.status == ADAPTED and "input channels 1->2" in stem.how
    assert {r.status for r in report.records if r.part == "decoder"} == {SKIPPED}
    assert all("not selected by load=encoder" in r.reason for r in report.records if r.part == "decoder")
    assert torch.equal(target.state_dict()["encoder.stages.1.blocks.0.conv1.conv.weight"],
                       source.state_dict()["encoder.stages.1.blocks.0.conv1.conv.weight"])
    assert report.to_dict()["source"]["citations"] == [CITATION] and "OpenMind MAE" in report.summary()


def test_spark_checkpoints_give_the_trained_all_modules_copies(tmp_path):
    """In nnssl's SparK encoder, conv / norm and all_modules.0 / .1 are different tensors and only
    all_modules was trained; loading the conv copy would start from untrained weights."""
    trained = _randomised_resenc().state_dict()
    weights = {}
    for key, value in trained.items():
        untrained = key.startswith("encoder.") and (".conv." in key or ".norm." in key)
        weights[key] = torch.zeros_like(value) if untrained else value.clone()
    path = _training_checkpoint(tmp_path / "spark.pth", weights, _adaptation_plan())
    state = extract_state_dict(load_checkpoint(path))
    for key in ("encoder.stem.convs.0.conv.weight", "encoder.stages.1.blocks.0.conv2.norm.bias"):
        twin = key.replace(".conv.", ".all_modules.0.").replace(".norm.", ".all_modules.1.")
        assert torch.equal(state[key], trained[twin]) and state[key].abs().sum() > 0
    target = tiny_unet(3, in_channels=3, residual=True)  # 1 -> 3 channels: the stem adapted from the trained copy
    transfer_from_checkpoint(path, target, TransferRules())
    expected = trained["encoder.stem.convs.0.all_modules.0.weight"].repeat(1, 3, 1, 1, 1) / 3
    assert torch.allclose(target.state_dict()["encoder.stem.convs.0.conv.weight"], expected)


def test_an_encoder_saved_under_another_attribute_is_renamed(tmp_path):
    """SimCLR / VoCo style: the encoder plus a projector, no decoder; keys under the plan's names."""
    source = _randomised_resenc()
    weights = {k.replace("encoder.", "backbone.", 1): v for k, v in source.state_dict().items()
               if k.startswith("encoder.")}
    weights["projector.layer1.0.weight"] = torch.randn(16, 12)
    plan = _adaptation_plan(encoder="backbone.stages", stem="backbone.stem")
    path = _training_checkpoint(tmp_path / "simclr.pth", weights, plan)
    target = tiny_unet(3, residual=True)
    report = transfer_from_checkpoint(path, target, TransferRules())
    assert all(r.status == LOADED for r in report.records if r.part == "encoder")
    assert "projector.layer1.0.weight" in report.unused_source


def test_architectures_we_cannot_build_and_spark_training_checkpoints_are_refused(tmp_path):
    unknown = _training_checkpoint(tmp_path / "swin.pth", {"x": torch.zeros(1)},
                                   _adaptation_plan("SwinUNETR", None, "swinViT", "swinViT.patch_embed"))
    with pytest.raises(NnunetTransferError, match=r"architecture is 'SwinUNETR'.*Supported: ResEncL, PrimusS.*Nothing "
                                                  r"was written"):
        transfer_from_checkpoint(unknown, tiny_unet(3, residual=True), TransferRules())
    spark = tmp_path / "spark_training.pth"
    torch.save({"network_weights": _randomised_resenc().state_dict(), "spark_weights": {}, "trainer_name": "Spark"},
               spark)
    with pytest.raises(NnunetTransferError, match="SparK .* no 'nnssl_adaptation_plan'.*add_adaptation_plan.py"):
        checkpoint_metadata(load_checkpoint(spark))


# ---------------------------------------------------------------------------- Primus

def _primus_target(path, patch, channels=1):
    arch = checkpoint_metadata(load_checkpoint(path))["architecture"]
    return build_network(arch, patch, channels, 2)


@pytest.mark.parametrize("training_form", [True, False])
def test_a_primus_checkpoint_describes_the_network_its_weights_make(tmp_path, training_form):
    path = tmp_path / "primus.pth"
    nnssl_primus_checkpoint(path, pretrain_patch=(32, 32, 32), downstream_patch=(48, 40, 32),
                            training_form=training_form)
    meta = checkpoint_metadata(load_checkpoint(path))
    assert meta["nnssl_architecture"] == "PrimusM" and meta["patch_size"] == [48, 40, 32]
    assert meta["token_grid"] == [4, 4, 4] and meta["token_order"] == "yxz"
    assert meta["normalization"] == ["ZScoreNormalization"] and meta["spacing"] == [1.0, 1.0, 1.0]
    arch = meta["architecture"]
    assert arch["network_class_name"] == "nnunet_transfer.networks.primus.TransferPrimus"
    assert arch["arch_kwargs"] == {"embed_dim": 48, "patch_embed_size": [8, 8, 8], "eva_depth": 2, "eva_numheads": 2,
                                   "input_shape": [48, 40, 32], "token_order": "yxz", "drop_path_rate": 0.2,
                                   "init_values": 0.1, "scale_attn_inner": True}


def test_primus_encoder_patch_and_positional_embeddings_load_into_a_two_channel_target(tmp_path):
    """Release form, pretraining patch 32^3 (4^3 tokens) into a 2-channel target at 48x40x32 (6x5x4)."""
    path = tmp_path / "primus.pth"
    module = nnssl_primus_checkpoint(path, pretrain_patch=(32, 32, 32), downstream_patch=(48, 40, 32))
    target = _primus_target(path, (48, 40, 32), channels=2)
    report = transfer_from_checkpoint(path, target, TransferRules())
    by_name = {r.name: r for r in report.records}
    assert report.load == "encoder"
    encoder = [r for r in report.records if r.part == "encoder"]
    assert len(encoder) == len([k for k in module.state_dict() if k.startswith(("eva.", "down_projection."))])
    assert all(r.status in (LOADED, ADAPTED) for r in encoder)
    assert {r.name for r in encoder if r.status == ADAPTED} == {"down_projection.proj.weight", "eva.pos_embed"}
    assert "input channels 1->2" in by_name["down_projection.proj.weight"].how
    assert by_name["eva.pos_embed"].how == "positional embedding: token grid 4x4x4 -> 6x5x4 (trilinear)"
    assert by_name["eva.pos_embed"].source_key == "eva.pos_embed"  # never the MAE decoder's of the same shape
    assert {"decoder.pos_embed", "mask_token"} <= set(report.unused_source)
    assert all(r.status == SKIPPED for r in report.records if r.name.startswith("up_projection."))
    with torch.no_grad():
        assert torch.equal(target.eva.blocks[1].attn.q_proj.weight, module.eva.blocks[1].attn.q_proj.weight)


def test_an_unchanged_token_grid_is_loaded_exactly(tmp_path):
    path = tmp_path / "primus.pth"
    module = nnssl_primus_checkpoint(path, pretrain_patch=(32, 32, 32), downstream_patch=(32, 32, 32))
    target = _primus_target(path, (32, 32, 32))
    report = transfer_from_checkpoint(path, target, TransferRules())
    assert next(r for r in report.records if r.name == "eva.pos_embed").status == LOADED
    assert torch.equal(target.eva.pos_embed, module.eva.pos_embed)


def test_contrastive_primus_checkpoints_wrap_the_encoder_and_simmim_orders_tokens_as_primus(tmp_path):
    voco = tmp_path / "voco.pth"
    nnssl_primus_checkpoint(voco, downstream_patch=(32, 32, 32), trainer="VoCoEvaTrainer")
    assert "encoder.eva.pos_embed" in load_checkpoint(voco)["network_weights"]
    report = transfer_from_checkpoint(voco, _primus_target(voco, (32, 32, 32)), TransferRules())
    assert all(r.status == LOADED for r in report.records if r.part == "encoder")
    simmim = tmp_path / "simmim.pth"
    nnssl_primus_checkpoint(simmim, downstream_patch=(32, 32, 32), trainer="SimMIMEvaTrainer")
    assert checkpoint_metadata(load_checkpoint(simmim))["token_order"] == "xyz"


def test_a_primus_checkpoint_whose_size_the_preset_does_not_give_is_refused(tmp_path):
    path = tmp_path / "primus.pth"
    nnssl_primus_checkpoint(path)
    checkpoint = load_checkpoint(path)
    checkpoint["nnssl_adaptation_plan"]["architecture_plans"]["arch_kwargs"] = None  # as nnssl's PrimusM preset
    with pytest.raises(NnunetTransferError, match="width 48 and depth 2, not PrimusM .width 864, depth 16.*heads"):
        checkpoint_metadata(checkpoint)
    del checkpoint["network_weights"]["eva.pos_embed"]
    with pytest.raises(NnunetTransferError, match="positional embedding .eva.pos_embed"):
        checkpoint_metadata(checkpoint)


def test_the_resenc_l_preset_is_nnssl_s_network():
    """ResEnc-L: arch_kwargs None in the plan, the network known by its preset name (~102 M parameters)."""
    from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet
    from nnunet_transfer.transfer.nnssl import nnssl_metadata
    meta = nnssl_metadata({"nnssl_adaptation_plan": _adaptation_plan("ResEncL", None), "network_weights": {}})
    assert meta["architecture"]["arch_kwargs"] == RESENC_L_KWARGS
    kwargs = dict(RESENC_L_KWARGS, conv_op=torch.nn.Conv3d, norm_op=torch.nn.InstanceNorm3d, nonlin=torch.nn.LeakyReLU)
    network = ResidualEncoderUNet(input_channels=1, num_classes=1, **kwargs)
    assert sum(p.numel() for p in network.parameters()) == 102_348_965


def test_a_channel_map_puts_the_pretrained_patch_embedding_where_it_belongs(tmp_path):
    path = tmp_path / "primus.pth"
    module = nnssl_primus_checkpoint(path, downstream_patch=(32, 32, 32))
    target = _primus_target(path, (32, 32, 32), channels=2)
    target_json = {"channel_names": {"0": "FLAIR", "1": "T1"}, "labels": {"background": 0, "lesion": 1}}
    report = transfer_from_checkpoint(path, target, TransferRules(channel_map={"T1": "0"}), target_json=target_json)
    record = next(r for r in report.records if r.name == "down_projection.proj.weight")
    assert record.status == ADAPTED and "FLAIR<-zero, T1<-0" in record.how
    weight = target.down_projection.proj.weight
    assert torch.equal(weight[:, 1], module.down_projection.proj.weight[:, 0]) and not weight[:, 0].any()
