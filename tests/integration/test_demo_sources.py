"""The demo through the study runner with two sources (MRI classification, natural self-supervised)
on a tiny preset and one target: study file written, every step run, table and figures."""
from __future__ import annotations

import pytest

from nnunet_transfer.demo.datasets import DemoDataSize
from nnunet_transfer.demo.run import STUDY_FILE, DemoPreset, run_demo

pytestmark = pytest.mark.integration

TINY = DemoPreset("tiny", DemoDataSize(spacing_mm=8.0, n_train=4, n_test=2, n_natural=4, natural_size=32), "2d",
                  {"num_epochs": 1, "num_iterations_per_epoch": 2, "num_val_iterations_per_epoch": 1},
                  preface="A tiny smoke test.")


def test_demo_with_two_sources(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(name, raising=False)  # the demo sets its own tree
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    table = run_demo(tmp_path / "demo", seed=1, device="cpu", sources=["mri_cls", "natural_ssl"], preset=TINY,
                     targets=["anatomy"], progress=False)
    assert table["initialisation"].tolist() == ["MRI classification", "natural models genesis", "scratch"]
    assert table["anatomy dice mean"].between(0, 1).all()
    assert "[[sources]]" in (tmp_path / "demo" / STUDY_FILE).read_text()
    results = tmp_path / "demo" / "study" / "results"
    assert (results / "comparison.md").read_text().startswith("A tiny smoke test.\n")
    assert (results / "comparison.png").is_file()
    report = next((tmp_path / "demo" / "nnUNet_results" / "Dataset913_DemoAnatomy").glob(
        "nnUNetTrainerFinetune__*_from_natural_models_genesis_finetune__2d/fold_all/transfer_report.json")).read_text()
    assert "input channels 3->1 (sum)" in report
