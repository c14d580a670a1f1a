"""Every converter's miniature download, converted, passes stock nnU-Net's dataset checks.

1. nnU-Net's ``verify_dataset_integrity`` (what ``--verify_dataset_integrity`` runs) on every
   converted option set, in one process whose pools fork instead of spawn: the same checks,
   without a fresh interpreter per dataset (spawning costs ~4 s each here).
2. The stock ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity --no_pp`` command, as a user
   types it, on one dataset of each placeholder kind (MRI head, whole picture): nnU-Net's
   fingerprint needs foreground voxels, which only these datasets get from us rather than from
   the download. (The fingerprint samples 10^7 intensities per channel whatever the data size,
   ~10 s per dataset here, so it is not repeated for every dataset.)
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nnunet_transfer.conversion.registry import converters
from nnunet_transfer.conversion.run import convert
from nnunet_transfer.io import read_json
from tests.conversion.fixtures import fixture_modules

pytestmark = pytest.mark.integration

VERIFY_FORKED = """
import multiprocessing, sys
_get_context = multiprocessing.get_context
multiprocessing.get_context = lambda method=None: _get_context("fork")
from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
for folder in sys.argv[1:]:
    verify_dataset_integrity(folder, 1)
"""


def test_stock_nnunet_accepts_every_converted_dataset(tmp_path):
    raw, preprocessed = tmp_path / "nnUNet_raw", tmp_path / "nnUNet_preprocessed"
    only = os.environ.get("CONVERT_VERIFY_ONLY")  # e.g. "atlas2,isbi2015" while developing one converter
    keys = [k for k in fixture_modules() if not only or k in only.split(",")]
    folders, placeholder_ids = [], {}
    for n, key in enumerate(keys):
        module = fixture_modules()[key]
        source = module.build(tmp_path / "downloads" / key)
        for m, options in enumerate(module.VERIFY):
            dataset_id = 600 + 10 * n + m
            result = convert(converters()[key], source, dataset_id, raw, name=f"{key.replace('-', '')}{m}",
                             workers=1, options=options)
            folders.append(str(result.folder))
            meta = read_json(result.folder / "dataset.json")
            if meta.get("placeholder_labels"):  # one per kind: the head (MRI) and the picture (.png)
                placeholder_ids.setdefault(meta["file_ending"], dataset_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_raw=str(raw), nnUNet_preprocessed=str(preprocessed), nnUNet_results=str(tmp_path / "res"),
               nnUNet_def_n_proc="1")
    out = subprocess.run([sys.executable, "-c", VERIFY_FORKED, *folders], env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"nnU-Net rejected a converted dataset:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    if not placeholder_ids:
        return
    ids = list(map(str, placeholder_ids.values()))
    out = subprocess.run(["nnUNetv2_plan_and_preprocess", "-d", *ids, "--verify_dataset_integrity", "--no_pp",
                          "-np", "1", "-npfp", "1"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"nnU-Net rejected a converted dataset:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    for dataset_id in ids:
        assert list(preprocessed.glob(f"Dataset{dataset_id}_*/nnUNetPlans.json")), dataset_id
