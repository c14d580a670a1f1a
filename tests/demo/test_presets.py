"""The demo's presets as study files: what each one asks the study runner to do."""
import subprocess
import sys

import pytest

from nnunet_transfer.demo.menu import SOURCES, TARGETS
from nnunet_transfer.demo.run import DEFAULT, EVIDENCE, PRESETS, QUICK, run_demo, study_file_text
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study.spec import load_study

NAMES = {key: f"Dataset9{i:02d}_{key}" for i, key in enumerate(
    ["mri_seg_source", "mri_cls_source", "mri_unlabeled", "natural_cls_source", "natural_seg_source",
     "natural_unlabeled", "stroke", "ms", "anatomy"])}


def _study(tmp_path, preset):
    path = tmp_path / f"{preset.name}.toml"
    path.write_text(study_file_text(preset, NAMES, preset.sources, "cpu", preset.targets))
    return load_study(path)


def test_evidence_preset_is_a_label_efficiency_study_with_enough_test_cases(tmp_path):
    study = _study(tmp_path, EVIDENCE)
    assert [t.label for t in study.targets] == ["anatomy", "stroke"]
    assert all(t.train_sizes == (2, 8) for t in study.targets)
    assert [s.label for s in study.sources] == ["MRI segmentation", "MRI models genesis", "natural segmentation"]
    assert EVIDENCE.size.n_test >= 10 and EVIDENCE.size.n_train >= max(EVIDENCE.train_sizes)
    assert study.configuration == "2d" and study.subset_seed == 0


def test_quick_preset_says_it_ranks_nothing_and_default_has_every_source(tmp_path):
    assert "not a ranking" in QUICK.preface and QUICK.size.n_test < 6  # no p-value can be given
    study = _study(tmp_path, DEFAULT)
    assert len(study.sources) == len(SOURCES) and len(study.targets) == len(TARGETS)
    assert all(t.train_sizes for t in study.targets) and study.configuration == "3d_fullres"
    assert set(PRESETS) == {"quick", "evidence", "default"}


def test_unknown_preset_and_conflicting_flags_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(NnunetTransferError, match="Unknown demo preset 'nope'; choose from quick, evidence, default"):
        run_demo(tmp_path / "demo", preset="nope")
    assert not (tmp_path / "demo").exists()
    out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "demo", "--quick", "--preset", "evidence",
                          "-o", str(tmp_path / "demo")], capture_output=True, text=True)
    assert out.returncode == 2 and "--quick is --preset quick" in out.stderr
    assert not (tmp_path / "demo").exists()
