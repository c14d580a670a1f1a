"""The demo runner with several sources (one MRI classification, one natural self-supervised) on a
tiny preset: every target fine-tuned from each source and from scratch, predicted and tabled."""
from __future__ import annotations

import pytest

from nnunet_transfer.demo.datasets import DemoDataSize
from nnunet_transfer.demo.run import DemoPreset, run_demo

pytestmark = pytest.mark.integration

TINY = DemoPreset("tiny", DemoDataSize(spacing_mm=8.0, n_train=4, n_test=1, n_natural=4, natural_size=32), "2d",
                  {"num_epochs": 1, "num_iterations_per_epoch": 2, "num_val_iterations_per_epoch": 1})


def test_demo_with_two_sources(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(name, raising=False)  # the demo sets its own tree
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    table = run_demo(tmp_path / "demo", seed=1, device="cpu", sources=["mri_cls", "natural_ssl"], preset=TINY)
    assert list(table["target"]) == ["Dataset911_DemoStroke", "Dataset912_DemoMS", "Dataset913_DemoAnatomy"]
    for init in ("mri_cls", "natural_ssl", "scratch"):
        assert table[f"{init} mean"].between(0, 1).all()
    assert {"mri_cls gain", "natural_ssl gain"} <= set(table.columns)
    results = tmp_path / "demo" / "results"
    assert (results / "dice_table.csv").is_file() and (results / "dice_bars.png").is_file()
    report = next((tmp_path / "demo" / "nnUNet_results" / "Dataset913_DemoAnatomy").glob(
        "nnUNetTrainerFinetune__*DemoNaturalUnlabeled__2d/fold_all/transfer_report.json")).read_text()
    assert "input channels 3->1 (sum)" in report
