import pytest
import torch

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.transfer.load import (TransferError, align_decoder_stages, canonical_entries, match_state_dict,
                                           model_part, transfer_weights)
from nnunet_transfer.transfer.report import ADAPTED, INITIALISED, LOADED, SKIPPED
from tests.conftest import tiny_unet


def _randomised(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("residual", [False, True])
def test_every_target_parameter_accounted_for_exactly_once(dim, residual):
    source = _randomised(tiny_unet(dim, classes=4, residual=residual))
    target = tiny_unet(dim, classes=2, residual=residual)
    report = transfer_weights(source.state_dict(), target)
    names = [r.name for r in report.records]
    assert len(names) == len(set(names))
    assert set(names) == {n for n, _ in target.named_parameters()} | {n for n, _ in target.named_buffers()}
    assert sum(report.counts().values()) == len(names)
    for rec in report.records:
        if rec.part == "head":
            assert rec.status == SKIPPED and "never" in rec.reason
        else:
            assert rec.status == LOADED
            assert torch.equal(dict(target.named_parameters())[rec.name], dict(source.named_parameters())[rec.name])
    # only the head of the source stays unused; aliases (all_modules, decoder.encoder) are not listed
    assert report.unused_source and all(k.startswith("decoder.seg_layers") for k in report.unused_source)


def test_aliases_listed_with_their_canonical_entry():
    target = tiny_unet(3)
    report, _ = match_state_dict(tiny_unet(3).state_dict(), target)
    first = next(r for r in report.records if r.name == "encoder.stages.0.0.convs.0.conv.weight")
    assert "encoder.stages.0.0.convs.0.all_modules.0.weight" in first.aliases
    assert "decoder.encoder.stages.0.0.convs.0.conv.weight" in first.aliases
    _, alias_of = canonical_entries(target)
    assert alias_of["decoder.encoder.stages.1.0.convs.1.all_modules.1.bias"] == "encoder.stages.1.0.convs.1.norm.bias"


def test_parameters_keep_identity_so_the_optimizer_still_holds_them():
    target = tiny_unet(2)
    before = [id(p) for p in target.parameters()]
    optimizer = torch.optim.SGD(target.parameters(), lr=0.1)
    transfer_weights(_randomised(tiny_unet(2)).state_dict(), target)
    assert [id(p) for p in target.parameters()] == before
    assert optimizer.param_groups[0]["params"][0] is next(target.parameters())


def test_encoder_only_leaves_decoder_initialised_and_says_why():
    source, target = _randomised(tiny_unet(3)), tiny_unet(3)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(source.state_dict(), target, load="encoder")
    decoder = [r for r in report.records if r.part == "decoder"]
    encoder = [r for r in report.records if r.part == "encoder"]
    assert decoder and encoder
    assert all(r.status == SKIPPED and "load=encoder" in r.reason for r in decoder)
    assert all(torch.equal(target.state_dict()[r.name], fresh[r.name]) for r in decoder)
    assert all(r.status == LOADED and torch.equal(target.state_dict()[r.name], source.state_dict()[r.name])
               for r in encoder)


def test_shape_mismatch_skipped_with_shapes_and_strict_names_keys_not_values():
    source = _randomised(tiny_unet(3, features=(4, 8)))
    target = tiny_unet(3, features=(4, 6))
    report = transfer_weights(source.state_dict(), target)
    skipped = {r.name: r for r in report.by_status(SKIPPED) if r.part != "head"}
    assert "encoder.stages.1.0.convs.0.conv.weight" in skipped
    assert "(8, 4, 3, 3, 3)" in skipped["encoder.stages.1.0.convs.0.conv.weight"].reason
    assert report.by_status(LOADED)  # stage 0 still loads
    with pytest.raises(TransferError) as err:
        transfer_weights(source.state_dict(), tiny_unet(3, features=(4, 6)), strict=True)
    message = str(err.value)
    assert "encoder.stages.1.0.convs.0.conv.weight (6, 4, 3, 3, 3)" in message and "tensor(" not in message


def test_strict_failure_leaves_the_model_untouched():
    target = tiny_unet(3, features=(4, 6))
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(TransferError):
        transfer_weights(_randomised(tiny_unet(3)).state_dict(), target, strict=True)
    assert all(torch.equal(v, fresh[k]) for k, v in target.state_dict().items())


def test_missing_source_keys_are_initialised_and_adapters_are_used():
    source = {k: v for k, v in _randomised(tiny_unet(2)).state_dict().items() if not k.startswith("decoder.stages")}
    target = tiny_unet(2)
    report = transfer_weights(source, target)
    assert {r.part for r in report.by_status(INITIALISED)} == {"decoder"}

    def halve(key, src, tgt):
        return (src[: tgt.shape[0]].clone(), "first channels") if src.shape[0] > tgt.shape[0] else None

    report = transfer_weights(_randomised(tiny_unet(2, features=(4, 8))).state_dict(), tiny_unet(2, features=(4, 6)),
                              adapters=[halve])
    adapted = report.by_status(ADAPTED)
    assert adapted and all(r.how == "first channels" for r in adapted)


def test_model_part_reads_the_declared_keys():
    plain, res = tiny_unet(3), tiny_unet(3, residual=True)
    assert model_part(plain, "encoder.stages.0.0.convs.0.conv.weight") == "encoder"
    assert model_part(res, "encoder.stem.convs.0.conv.weight") == "encoder"
    assert model_part(res, "decoder.transpconvs.0.weight") == "decoder"
    assert model_part(res, "decoder.seg_layers.0.bias") == "head"


def test_unknown_load_rule():
    with pytest.raises(NnunetTransferError, match="Unknown load rule"):
        transfer_weights({}, tiny_unet(2), load="everything")


def test_summary_is_short_and_counts_match_the_network():
    target = tiny_unet(3)
    report = transfer_weights(_randomised(tiny_unet(3, classes=4)).state_dict(), target)
    entries, _ = canonical_entries(target)
    heads = [n for n in entries if n.startswith("decoder.seg_layers")]
    assert heads and report.counts() == {LOADED: len(entries) - len(heads), "adapted": 0, SKIPPED: len(heads),
                                         INITIALISED: 0}
    assert report.counts_by_part()["head"] == {LOADED: 0, "adapted": 0, SKIPPED: len(heads), INITIALISED: 0}
    text = report.summary()
    assert len(text.splitlines()) < 20 and f"{len(entries) - len(heads)} loaded" in text
    assert "decoder.seg_layers.0.weight" in text and "heads (seg_layers) are never loaded" in text


def test_decoder_stages_of_a_shallower_source_are_matched_by_resolution():
    deeper, shallower = tiny_unet(3, features=(4, 8, 8)).state_dict(), tiny_unet(3, features=(4, 8)).state_dict()
    mapping = align_decoder_stages(shallower, deeper)  # source: 2 stages, target: 3
    assert mapping["decoder.stages.0.convs.0.conv.weight"] == "decoder.stages.1.convs.0.conv.weight"
    assert mapping["encoder.stages.1.0.convs.0.conv.weight"] == "encoder.stages.1.0.convs.0.conv.weight"
    mapping = align_decoder_stages(deeper, shallower)  # source: 3 stages, target: 2
    assert mapping["decoder.stages.0.convs.0.conv.weight"].startswith("unmatched-depth:")
    assert mapping["decoder.stages.1.convs.0.conv.weight"] == "decoder.stages.0.convs.0.conv.weight"


def test_a_checkpoint_that_loads_no_encoder_weight_is_refused_unless_allowed():
    """Another key layout (every name differs) and another network size (names match, shapes do
    not): fine-tuning from either would train from scratch, so both are errors naming the cause."""
    from nnunet_transfer.transfer.load import preview_with_rules, transfer_with_rules
    from nnunet_transfer.transfer.rules import TransferRules
    renamed = {"backbone." + k: v for k, v in _randomised(tiny_unet(3)).state_dict().items()}
    target = tiny_unet(3)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    for apply in (transfer_with_rules, preview_with_rules):
        with pytest.raises(TransferError, match=r"loads or adapts no encoder weight .* 0 loaded, 0 adapted\): no "
                                                r"encoder key of the target exists in the checkpoint: another "
                                                r"architecture or another key layout \(checkpoint keys: backbone\."):
            apply(renamed, target, TransferRules())
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())   # nothing was loaded
    wider = _randomised(tiny_unet(3, features=(6, 10))).state_dict()
    with pytest.raises(TransferError, match=r"encoder keys exist in the checkpoint but none fits \(e\.g\. encoder\."
                                            r"stages\.0\.0\.convs\.0\.conv\.weight: shape mismatch.*another network "
                                            r"size or dimensionality.*--allow-no-encoder-weights"):
        preview_with_rules(wider, target, TransferRules())
    report = transfer_with_rules(renamed, target, TransferRules(allow_no_encoder_weights=True))
    assert report.counts().get(LOADED, 0) == 0 and report.counts().get(ADAPTED, 0) == 0
    # one encoder weight is enough: a partly fitting network is reported, not refused
    partly = dict(_randomised(tiny_unet(3)).state_dict())
    partly = {k: v for k, v in partly.items() if not k.startswith("encoder.stages.1")} | \
             {k: v for k, v in wider.items() if k.startswith("encoder.stages.1")}
    assert transfer_with_rules(partly, tiny_unet(3), TransferRules()).counts()[LOADED] > 0


def test_the_allowance_is_a_transfer_block_key():
    from nnunet_transfer.plans_blocks import make_transfer_block
    from nnunet_transfer.transfer.rules import TransferRules
    block = make_transfer_block("x.pth", TransferRules(allow_no_encoder_weights=True))
    assert block.block()["allow_no_encoder_weights"] is True and block.rules.allow_no_encoder_weights
    with pytest.raises(NnunetTransferError, match="allow_no_encoder_weights must be true or false"):
        TransferRules(allow_no_encoder_weights="yes")
