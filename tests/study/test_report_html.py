"""results/report.html of a finished study made of files (tests/study/synthetic_study.py)."""
import re
import time
from html.parser import HTMLParser

import pytest

from nnunet_transfer.io import sha256
from nnunet_transfer.study.gallery import galleries
from nnunet_transfer.study.report import write_report
from nnunet_transfer.study.table import collect
from tests.study.synthetic_study import SOURCES, TARGETS, finished_study

QUICK_DEMO_SHAPE = (45, 54, 43)  # the quick demo's test images (4 mm)
SIZE_LIMIT = 10 * 1024 * 1024


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


@pytest.fixture
def two_targets(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")  # restored after the test; the study points them into its folder
    return finished_study(tmp_path, n_sources=2, n_targets=3, n_cases=4)


def test_the_report_shows_every_arm_target_and_the_provenance(two_targets):
    study = two_targets
    files = write_report(study)
    assert files["report_html"] == study.folder / "results" / "report.html"
    text = files["report_html"].read_text()
    for arm in (*SOURCES[:2], "scratch"):
        assert text.count(f"<span class=\"title\">{arm}</span>") == 3 * 3  # each target's three cases
        assert f"<td>{arm}<br>" in text  # what it loaded
    for label, _ in TARGETS:
        assert f'<section id="gallery-{label}"><h3>{label}</h3>' in text
        assert re.search(r"<h4>best: case case\d \(scratch [01]\.\d+\); axial slice \d+ of \d+", text)
    assert "Cases ranked by scratch&#x27;s dice (higher is better" in text
    # the comparison table: sortable, numbers to sort by, the caption's statistics
    assert text.count('<table class="sortable" aria-label="comparison') == 1
    assert 'data-value="' in text and "paired Wilcoxon" in text and "Fairness (checked by" in text
    # what each arm loaded: load rule, checkpoint and its SHA-256, TransferReport counts, citation, schedule, time
    assert "load <code>encoder+decoder</code>" in text and "checkpoint_sha256 <code>" + "ab" * 32 in text
    assert "encoder: 20 loaded, 1 adapted" in text and "Doe (2024)." in text
    assert "num_epochs 5" in text and "90 s per run" in text
    # provenance: the study file and its hash, versions, machine, steps
    for key in ("study file SHA-256", "nnunetv2", "torch", "machine", "report written"):
        assert f"<dt>{key}</dt>" in text
    assert sha256(study.path) in text and "steps: " in text and 'role="alert"' not in text
    # lesion targets mark missed and false-positive lesions; anatomy does not
    stroke, anatomy = text.split('id="gallery-stroke"')[1].split('id="gallery-anatomy"')
    assert re.search(r"missed \d \(\d here\) · FP \d \(\d here\)", stroke)
    assert " here)" not in anatomy.split('id="arms"')[0]
    assert "the patient&#x27;s right (R) on the left" in text
    # every arm has one CSS colour, the same in the table, the legend and its panels' frames
    colours = re.findall(r'style="(?:background|border-color):([^;"]*)', text)
    assert colours and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours), set(colours)
    assert len(set(re.findall(r'class="panel" style="border-color:(#[0-9a-f]{6})', text))) == 3


def test_the_page_is_self_contained_and_every_image_has_alt_text(two_targets):
    text = write_report(two_targets)["report_html"].read_text()
    tags = _tags(text)
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert len(images) >= 2 + 3 * 3 * 5  # two figures (no training sizes), 3 targets x 3 cases x 5 panels
    assert all(a["src"].startswith("data:image/png;base64,") and a.get("alt") for a in images)
    assert not [a for tag, a in tags if tag in ("script", "link", "iframe") and (a.get("src") or a.get("href"))]
    assert "http://" not in text and "https://" not in text


def test_a_failed_step_is_reported_not_hidden(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")
    failed = "train/stroke/mri_seg/finetune/fold_0"
    study = finished_study(tmp_path, n_sources=2, n_targets=1, n_cases=4, failed_step=failed)
    text = write_report(study)["report_html"].read_text()
    banner = text.split('<h2 id="comparison">')[0]
    assert '<div class="failed" role="alert"><strong>1 step(s) failed</strong> (1 blocked behind them)' in banner
    assert f"<code>{failed}</code>" in banner and "nnUNetv2_train exited with code 1" in banner
    assert f"{study.folder / 'logs' / failed.replace('/', '__')}.log" in banner
    # its panels say why there is no picture, and the steps table is open
    assert text.count("no prediction: case") == 3 and "<details open>" in text
    assert "1 of 1 trained" in text  # its training folder exists, its prediction does not


def test_gallery_of_three_targets_and_seven_arms_is_fast_and_the_report_small(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")
    study = finished_study(tmp_path, n_sources=6, n_targets=3, n_cases=8, shape=QUICK_DEMO_SHAPE)
    per_case = collect(study)
    start = time.perf_counter()
    shown = galleries(study, per_case)
    seconds = time.perf_counter() - start
    assert [len(g.cases) for g in shown] == [3, 3, 3] and all(len(c.panels) == 2 + 7 for g in shown for c in g.cases)
    assert seconds < 30, f"the gallery took {seconds:.1f} s"
    report = write_report(study)["report_html"]
    assert report.stat().st_size < SIZE_LIMIT, f"report.html is {report.stat().st_size / 2 ** 20:.1f} MB"
