"""The ``evaluate`` sub-command through its own ArgumentParser (the lead wires it into the main CLI)."""
import argparse
import json

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.evaluation.cli import add_parser
from nnunet_transfer.evaluation.evaluate import PER_CASE_CSV, SUMMARY_JSON
from tests.evaluation.test_evaluate import folders  # noqa: F401  (fixture)


def parse(argv):
    parser = argparse.ArgumentParser(prog="nnunet_transfer")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_defaults():
    args = parse(["evaluate", "ref", "pred"])
    assert (args.reference, args.prediction, args.output, args.dataset_json) == ("ref", "pred", None, None)
    assert (args.connectivity, args.overlap, args.min_lesion_volume, args.lesion_labels) == (26, 0.0, 0.0, None)
    assert args.func.__name__ == "cmd_evaluate"


def test_bad_connectivity_is_refused():
    with pytest.raises(SystemExit):
        parse(["evaluate", "ref", "pred", "--connectivity", "8"])


def test_writes_into_the_prediction_folder_by_default(folders, capsys):  # noqa: F811
    ref, pred = folders
    args = parse(["evaluate", str(ref), str(pred), "-dj", str(pred / "dataset.json"), "--connectivity", "6",
                  "--overlap", "0.5", "--min-lesion-volume", "0", "--lesion-labels", "1", "--workers", "1"])
    args.func(args)
    out = capsys.readouterr().out
    assert "2 cases" in out and "label 1 (lesion): Dice 0.9706" in out and "lesion_F1 0.8333" in out
    summary = json.loads((pred / SUMMARY_JSON).read_text())
    assert summary["settings"]["connectivity"] == 6 and summary["settings"]["overlap"] == 0.5
    assert (pred / PER_CASE_CSV).is_file()


def test_no_lesion_metrics_and_output_folder(folders, tmp_path):  # noqa: F811
    ref, pred = folders
    args = parse(["evaluate", str(ref), str(pred), "-o", str(tmp_path / "out"), "--lesion-labels", "none"])
    args.func(args)
    summary = json.loads((tmp_path / "out" / SUMMARY_JSON).read_text())
    assert "lesion_F1" not in summary["mean"]["1"] and summary["settings"]["lesion_labels"] == []
    args = parse(["evaluate", str(ref), str(pred), "--lesion-labels", "x"])
    with pytest.raises(NnunetTransferError, match="--lesion-labels"):
        args.func(args)


def test_parallel_workers_give_the_same_table(folders, monkeypatch):  # noqa: F811
    """Arguments and results still cross processes by pickling; fork only saves spawn's ~1.5 s start."""
    from nnunet_transfer.evaluation import evaluate
    monkeypatch.setattr(evaluate, "START_METHOD", "fork")
    ref, pred = folders
    parallel = evaluate.evaluate_folders(ref, pred, workers=2, progress=False).per_case
    serial = evaluate.evaluate_folders(ref, pred, workers=1, progress=False).per_case
    assert parallel.equals(serial)


def test_worker_error_reaches_the_caller(folders, monkeypatch):  # noqa: F811
    from nnunet_transfer.evaluation import evaluate
    monkeypatch.setattr(evaluate, "START_METHOD", "fork")
    ref, pred = folders
    (pred / "case_002.nii.gz").write_bytes(b"not an image")
    with pytest.raises(NnunetTransferError, match="cannot read .*case_002.nii.gz"):
        evaluate.evaluate_folders(ref, pred, workers=2, progress=False)


def test_profiles_and_boundary_options(folders, tmp_path, capsys):  # noqa: F811
    ref, pred = folders
    args = parse(["evaluate", str(ref), str(pred), "-o", str(tmp_path), "--profile", "atlas2", "msseg2016",
                  "--nsd-tolerance", "0.5", "--no-instances"])
    assert args.profile == ["atlas2", "msseg2016"] and args.nsd_tolerance == 0.5 and args.no_instances
    args.func(args)
    out = capsys.readouterr().out
    assert "NSD 0.9706" in out and "atlas2_lesionwise_F1 0.8333" in out and "msseg2016_F1" in out
    summary = json.loads((tmp_path / SUMMARY_JSON).read_text())
    assert summary["settings"]["profiles"] == ["atlas2", "msseg2016"] and summary["settings"]["nsd_tolerance_mm"] == 0.5
    assert "PQ" not in summary["mean"]["1"] and "HD95" in summary["mean"]["1"]
    with pytest.raises(SystemExit):
        parse(["evaluate", "ref", "pred", "--profile", "brats"])
