import json
import math

from nnunet_transfer.diagnostics.findings import findings
from nnunet_transfer.diagnostics.report import finite, markdown, write_outputs
from tests.diagnostics.sample import sample_result


def test_markdown_has_the_tables_and_the_findings():
    data = sample_result()
    data["first_batch"]["stages"][2]["transferred"]["sd"] = 4.8
    data["findings"] = findings(data)
    text = markdown(data)
    assert "- decoder stage 0 activations 8.0x the fresh network's SD (4.8 vs 0.6)." in text
    assert "| decoder stage 0 | 8/8 | 4x8x8 | 0.4 | 0.4 | 4.8 | 0.6 | 1 |" in text  # sd_ratio as measured
    assert "| 1 lesion | 0.5 | 0.5 | 40.0 % | 40.0 % | 3.0 % |" in text
    assert "| **head** | 0.9 | 0.9 | 1 |" in text
    assert "| transferred | 0.65 | 0.55 | 0.55 |" in text
    assert "| fine-tuning | `checkpoint_final.pth` | 2 | 0.6 -> 0.4 | 0.5 -> 0.3 | 0.3 / 0.12 |" in text


def test_no_finding_and_missing_curves_are_said():
    data = sample_result()
    data["curves"]["baseline"] = None
    text = markdown(data)
    assert "No threshold clearly crossed" in text and "| baseline | no checkpoint in `/b/fold_0` |" in text


def test_outputs_are_strict_json_and_a_png(tmp_path):
    data = sample_result()
    data["gradients"]["norms"]["transferred"]["head"][1] = float("inf")
    data["first_batch"]["stages"][0]["transferred"]["sd"] = float("nan")  # a gap in the figure, not an error
    data["gradients"]["loss"]["fresh"][0] = float("nan")
    data["curves"]["finetune"] = None
    files = write_outputs(data, {"load": "encoder"}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diagnostics.json", "diagnostics.md", "diagnostics.png",
                                                          "transfer_report.json"]
    loaded = json.loads(files["json"].read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert loaded["gradients"]["norms"]["transferred"]["head"] == [1.0, None]
    assert files["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(files["transfer_report"].read_text()) == {"load": "encoder"}


def test_finite_replaces_nan_and_infinities():
    assert finite({"a": [1.0, math.nan, (math.inf,)], "b": "x"}) == {"a": [1.0, None, [None]], "b": "x"}
