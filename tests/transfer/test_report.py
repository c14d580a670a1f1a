"""TransferReport: counts, JSON form and the short log summary, on hand-made records."""
from nnunet_transfer.transfer.report import ADAPTED, INITIALISED, LOADED, SKIPPED, ParameterRecord, TransferReport


def _report(n_loaded=3):
    records = [ParameterRecord(f"encoder.w{i}", [2, 2], "encoder", LOADED, f"encoder.w{i}", [2, 2])
               for i in range(n_loaded)]
    records += [ParameterRecord("encoder.stem", [4, 1, 3, 3], "encoder", ADAPTED, "encoder.stem", [4, 3, 3, 3],
                                how="input channels 3->1 (sum)"),
                ParameterRecord("decoder.w", [2], "decoder", INITIALISED, reason="no tensor of this name"),
                ParameterRecord("decoder.seg_layers.0.weight", [2, 4], "head", SKIPPED, "decoder.seg_layers.0.weight",
                                [5, 4], reason="heads (seg_layers) are never loaded into a target")]
    return TransferReport(records, {"decoder.seg_layers.0.weight": [5, 4]}, "encoder+decoder", "/x/c.pth",
                          {"mode": "segmentation"})


def test_counts_by_status_and_part():
    report = _report()
    assert report.counts() == {LOADED: 3, ADAPTED: 1, SKIPPED: 1, INITIALISED: 1}
    assert report.counts_by_part() == {"encoder": {LOADED: 3, ADAPTED: 1, SKIPPED: 0, INITIALISED: 0},
                                       "decoder": {LOADED: 0, ADAPTED: 0, SKIPPED: 0, INITIALISED: 1},
                                       "head": {LOADED: 0, ADAPTED: 0, SKIPPED: 1, INITIALISED: 0}}
    assert [r.name for r in report.by_status(ADAPTED)] == ["encoder.stem"]


def test_json_form_has_every_record_and_the_source():
    data = _report().to_dict()
    assert data["checkpoint"] == "/x/c.pth" and data["load"] == "encoder+decoder" and data["source"]["mode"] == \
        "segmentation"
    assert len(data["parameters"]) == 6 and data["parameters"][3]["how"] == "input channels 3->1 (sum)"
    assert data["unused_source_keys"] == {"decoder.seg_layers.0.weight": [5, 4]}


def test_summary_lists_what_was_not_loaded_and_stays_short():
    text = _report(n_loaded=50).summary(max_lines=2)
    lines = text.splitlines()
    assert lines[0] == "Transfer from /x/c.pth (load=encoder+decoder): 50 loaded, 1 adapted, 1 skipped, 1 initialised"
    assert "  encoder: 50 loaded, 1 adapted" in lines
    assert any(line.startswith("  adapted     encoder.stem (4, 1, 3, 3): input channels") for line in lines)
    assert "... 1 more (see the JSON report)" in text and "1 source keys unused" in text and len(lines) < 10


def test_target_spacing_is_reported_and_shown_next_to_the_pretraining_s_when_they_differ():
    from dataclasses import replace
    report = _report()
    assert report.to_dict()["target_spacing"] is None and "spacing:" not in report.summary()
    pretrained = replace(report, source_metadata={"mode": "nnssl", "spacing": [1.0, 1.0, 1.0]})
    same = replace(pretrained, target_spacing=[1.0, 1.0, 1.0])
    assert same.to_dict()["target_spacing"] == [1.0, 1.0, 1.0] and "spacing:" not in same.summary()
    other = replace(pretrained, target_spacing=[3.0, 2.0, 2.0])
    assert "spacing: target 3 x 2 x 2 mm, pretraining 1 x 1 x 1 mm" in other.summary()
    noresample = replace(other, source_metadata={"mode": "nnssl", "spacing": None})
    assert "pretraining no fixed spacing" in noresample.summary()
    assert "spacing:" not in replace(report, target_spacing=[3.0, 2.0, 2.0]).summary()  # pretraining's unknown
