"""report.html in a real browser: headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it),
driven through the DevTools protocol over a pipe (tests/study/chromium.py). The page is opened from
``file://``: no console error, no request but the file itself and its ``data:`` pictures, every
image decoded, the table sorted by a real click on a header, and a screenshot that is not blank."""
import io

import matplotlib.image
import numpy as np
import pytest

from nnunet_transfer.study.report import write_report
from tests.study.chromium import Page, executable
from tests.study.synthetic_study import finished_study

pytestmark = pytest.mark.skipif(executable() is None, reason="no chromium on PATH: install Debian's chromium package "
                                                            "(apt-get install -y chromium; .ci/run does)")

ORDER = """Array.from(document.querySelector('table.sortable').tBodies[0].rows)
  .map(r => [r.cells[0].textContent, r.cells[1].getAttribute('data-value')])"""


@pytest.fixture
def report(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")
    study = finished_study(tmp_path, n_sources=2, n_targets=2, n_cases=4,
                           failed_step="train/ms/mri_cls/finetune/fold_0")
    return write_report(study)["report_html"]


def test_report_opens_from_disk_sorts_and_shows_every_image(report):
    with Page(width=1366, height=768) as page:
        page.open(report.as_uri())
        assert page.errors() == []
        assert [u for u in page.requests() if not u.startswith(("file://", "data:"))] == []
        assert page.evaluate("document.title") == "synthetic: study report"
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) > 20 and all(done and width > 0 and alt for done, width, alt in images)
        # a real click on the first metric's header sorts by its numbers, a second click reverses
        before = page.evaluate(ORDER)
        page.click("table.sortable th:nth-child(2)")
        ascending = page.evaluate(ORDER)
        assert sorted(ascending) == sorted(before)
        assert [float(v) for _, v in ascending] == sorted(float(v) for _, v in before)
        page.click("table.sortable th:nth-child(2)")
        assert page.evaluate(ORDER) == ascending[::-1]
        assert page.evaluate("document.querySelector('table.sortable th:nth-child(2)').getAttribute('aria-sort')") \
            == "descending"
        # the failed step is on the first screen
        assert page.evaluate("document.querySelector('[role=alert]').getBoundingClientRect().top") < 768
        pixels = matplotlib.image.imread(io.BytesIO(page.screenshot()))[..., :3]
        assert pixels.shape[:2] == (768, 1366)
        assert pixels.std() > 0.05 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
        gallery = matplotlib.image.imread(io.BytesIO(page.screenshot("#gallery-ms .panels")))[..., :3]
        assert gallery.std() > 0.05
        assert page.errors() == []
