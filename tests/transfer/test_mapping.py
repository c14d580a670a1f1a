"""Channel and class mappings by name: resolution, the tensors they make, and the transfer driver."""
import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.adapt import keep_rows, map_input_channels
from nnunet_transfer.transfer.driver import transfer_from_checkpoint
from nnunet_transfer.transfer.mapping import (NameMaps, class_names_of, resolve_mapping, resolve_name_maps,
                                              source_dataset_json)
from nnunet_transfer.transfer.report import ADAPTED, LOADED, SKIPPED
from nnunet_transfer.transfer.rules import TransferRules
from tests.conftest import tiny_unet

T1_ONLY = {0: "T1"}
THREE = {0: "FLAIR", 1: "T1", 2: "T2"}


def test_auto_pairs_names_case_insensitively_and_leaves_the_rest_unmapped():
    assert resolve_mapping("auto", T1_ONLY, THREE, "channel_map") == [None, 0, None]
    assert resolve_mapping("auto", {0: "t2", 1: "flair"}, THREE, "channel_map") == [1, None, 0]


def test_explicit_pairs_by_name_or_index_and_one_source_may_feed_several_targets():
    assert resolve_mapping({"FLAIR": "T1", "T1": "0"}, T1_ONLY, THREE, "channel_map") == [0, 0, None]
    assert resolve_mapping({"2": "0", "T1": None}, None, THREE, "channel_map") == [None, None, 0]


@pytest.mark.parametrize("spec, message", [
    ({"PD": "T1"}, "the target has no channel 'PD'; it has 0 'FLAIR', 1 'T1', 2 'T2'"),
    ({"T1": "DWI"}, "the checkpoint has no channel 'DWI'; it has 0 'T1'"),
    ("auto", "no target name"),
    ("same", "give 'auto' or target=source pairs"),
])
def test_a_name_that_does_not_exist_is_one_error_listing_both_sides(spec, message):
    source = {0: "DWI"} if spec == "auto" else T1_ONLY
    with pytest.raises(NnunetTransferError, match=message):
        resolve_mapping(spec, source, THREE, "channel_map")


def test_auto_without_checkpoint_names_asks_for_indices():
    with pytest.raises(NnunetTransferError, match="declares none; give target=source pairs with source indices"):
        resolve_mapping("auto", None, THREE, "channel_map")


def test_map_input_channels_copies_mapped_channels_and_fills_the_rest_by_the_stated_rule():
    torch.manual_seed(0)
    source, target = torch.randn(4, 2, 3, 3), torch.randn(4, 3, 3, 3)
    zero = map_input_channels(source, target, [1, None, 0], "zero")
    assert torch.equal(zero[:, 0], source[:, 1]) and torch.equal(zero[:, 2], source[:, 0])
    assert torch.count_nonzero(zero[:, 1]) == 0
    assert torch.allclose(map_input_channels(source, target, [1, None, 0], "mean")[:, 1], source.mean(dim=1))
    assert torch.equal(map_input_channels(source, target, [1, None, 0], "random")[:, 1], target[:, 1])
    with pytest.raises(NnunetTransferError, match="cannot fill"):
        map_input_channels(source, target, [0, 1], "zero")


def test_zero_fill_keeps_the_source_networks_answer_on_the_mapped_channel():
    """A T1 network into FLAIR + T1: with zero weights on FLAIR the first layer answers T1 as before."""
    torch.manual_seed(1)
    source = torch.nn.Conv3d(1, 4, 3, padding=1)
    target = torch.nn.Conv3d(2, 4, 3, padding=1)
    with torch.no_grad():
        target.weight.copy_(map_input_channels(source.weight, target.weight, [None, 0], "zero"))
        target.bias.copy_(source.bias)
    t1, flair = torch.randn(1, 1, 6, 6, 6), torch.randn(1, 1, 6, 6, 6)
    assert torch.allclose(target(torch.cat([flair, t1], dim=1)), source(t1), atol=1e-6)


def test_keep_rows_copies_the_kept_classes_and_keeps_the_targets_other_rows():
    source, target = torch.arange(12.).reshape(3, 4), torch.full((5, 4), -1.)
    out = keep_rows(source, target, [0, None, 2, None, 1])
    assert torch.equal(out[0], source[0]) and torch.equal(out[2], source[2]) and torch.equal(out[4], source[1])
    assert torch.equal(out[1], target[1]) and torch.equal(out[3], target[3])
    assert torch.equal(target, torch.full((5, 4), -1.))  # the target tensor itself is not changed


def test_region_labels_cannot_keep_classes():
    assert class_names_of({"labels": {"background": 0, "lesion": 1}}) == {0: "background", 1: "lesion"}
    with pytest.raises(NnunetTransferError, match="region"):
        class_names_of({"labels": {"background": 0, "whole": [1, 2]}})


def test_keep_classes_needs_the_decoder():
    rules = TransferRules(load="encoder", keep_classes="auto")
    labels = {"labels": {"background": 0, "a": 1}, "channel_names": {"0": "T1"}}
    with pytest.raises(NnunetTransferError, match="needs load = encoder\\+decoder or all-but-head"):
        resolve_name_maps(rules, labels, labels)


def test_source_names_come_from_our_block_or_the_nnunet_init_args():
    block = {"channel_names": {"0": "T1"}, "labels": {"background": 0, "x": 1}}
    assert source_dataset_json({}, block) == block
    init = {"init_args": {"dataset_json": {"channel_names": {"0": "CT"}, "labels": {"background": 0}}}}
    assert source_dataset_json(init, None)["channel_names"] == {"0": "CT"}
    assert source_dataset_json({"network_weights": {}}, None) == {}


def _save(tmp_path, model, channels, labels):
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": model.state_dict(),
                "init_args": {"plans": {}, "configuration": "3d_fullres",
                              "dataset_json": {"channel_names": channels, "labels": labels}}}, path)
    return path


def test_driver_maps_channels_and_keeps_classes_by_name_and_reports_it(tmp_path):
    torch.manual_seed(2)
    source = tiny_unet(3, in_channels=2, classes=3)
    path = _save(tmp_path, source, {"0": "T1", "1": "T2"},
                 {"background": 0, "tumour": 1, "oedema": 2})
    target = tiny_unet(3, in_channels=3, classes=4)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    target_json = {"channel_names": {"0": "FLAIR", "1": "T2", "2": "T1"},
                   "labels": {"background": 0, "lesion": 1, "oedema": 2, "tumour": 3}}
    report = transfer_from_checkpoint(path, target, TransferRules(channel_map="auto", keep_classes="auto"),
                                      target_json=target_json)
    stem = next(r for r in report.records if r.name == "encoder.stages.0.0.convs.0.conv.weight")
    assert stem.status == ADAPTED and stem.how == "input channels by name: FLAIR<-zero, T2<-T2, T1<-T1"
    weight = target.state_dict()["encoder.stages.0.0.convs.0.conv.weight"]
    src = source.state_dict()["encoder.stages.0.0.convs.0.conv.weight"]
    assert torch.equal(weight[:, 1], src[:, 1]) and torch.equal(weight[:, 2], src[:, 0])
    heads = [r for r in report.records if r.part == "head"]
    assert heads and all(r.status == ADAPTED for r in heads)
    assert heads[0].how == "head rows kept: background<-background, lesion<-initialised, oedema<-oedema, tumour<-tumour"
    for r in heads:
        kept, src_head = target.state_dict()[r.name], source.state_dict()[r.name]
        assert torch.equal(kept[[0, 2, 3]], src_head[[0, 2, 1]]) and torch.equal(kept[1], fresh[r.name][1])


def test_same_channels_in_another_order_are_reordered_not_loaded_as_they_are(tmp_path):
    source = tiny_unet(2, in_channels=2)
    path = _save(tmp_path, source, {"0": "T1", "1": "FLAIR"}, {"background": 0, "a": 1})
    target = tiny_unet(2, in_channels=2)
    target_json = {"channel_names": {"0": "FLAIR", "1": "T1"}, "labels": {"background": 0, "a": 1}}
    report = transfer_from_checkpoint(path, target, TransferRules(channel_map="auto"), target_json=target_json)
    stem = next(r for r in report.records if r.name == "encoder.stages.0.0.convs.0.conv.weight")
    assert stem.status == ADAPTED and "FLAIR<-FLAIR, T1<-T1" in stem.how
    src = source.state_dict()["encoder.stages.0.0.convs.0.conv.weight"]
    assert torch.equal(target.state_dict()[stem.name], src.flip(1))
    same = transfer_from_checkpoint(path, tiny_unet(2, in_channels=2), TransferRules(channel_map="auto"),
                                    target_json={**target_json, "channel_names": {"0": "T1", "1": "FLAIR"}})
    assert next(r for r in same.records if r.name == stem.name).status == LOADED
    assert all(r.status == SKIPPED for r in same.records if r.part == "head")  # heads: not without keep_classes


def test_driver_errors_name_the_checkpoint_and_the_missing_channel(tmp_path):
    path = _save(tmp_path, tiny_unet(3), {"0": "T1"}, {"background": 0, "a": 1})
    with pytest.raises(NnunetTransferError, match=f"Checkpoint {path} into .*the checkpoint has no channel 'PD'"):
        transfer_from_checkpoint(path, tiny_unet(3), TransferRules(channel_map={"T1": "PD"}),
                                 target_json={"channel_names": {"0": "T1"}})
    with pytest.raises(NnunetTransferError, match="has 1 input channel\\(s\\); channel_map names checkpoint channel"):
        bare = tmp_path / "bare.pth"
        torch.save(tiny_unet(3).state_dict(), bare)
        transfer_from_checkpoint(bare, tiny_unet(3, in_channels=2), TransferRules(channel_map={"0": "3"}),
                                 target_json={"channel_names": {"0": "T1", "1": "T2"}})
    assert NameMaps().channel_sources is None


def test_a_mapped_first_layer_of_another_width_is_skipped_like_any_shape_mismatch():
    """The channel map fills channels; a first convolution with other output features does not fit
    (another network size) and is reported as skipped, as without a map, not raised mid-transfer."""
    from nnunet_transfer.transfer.load import transfer_with_rules
    source = tiny_unet(3, in_channels=1, features=(8, 16)).state_dict()
    rules = TransferRules(channel_map="auto", allow_no_encoder_weights=True)
    report = transfer_with_rules(source, tiny_unet(3, in_channels=2, features=(4, 8)), rules, NameMaps([None, 0], "x"))
    stem = next(r for r in report.records if r.name == "encoder.stages.0.0.convs.0.conv.weight")
    assert stem.status == SKIPPED and "shape mismatch" in stem.reason
