"""Every converter's miniature download, converted, passes stock nnU-Net's dataset integrity check.

All converted datasets go through ONE ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity``
call (fingerprint + plans, no preprocessing), so the check costs one nnU-Net start-up.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from nnunet_transfer.conversion.registry import get_converter
from nnunet_transfer.conversion.run import convert
from tests.conversion.fixtures import fixture_modules

pytestmark = pytest.mark.integration


def test_stock_nnunet_accepts_every_converted_dataset(tmp_path):
    raw, preprocessed = tmp_path / "nnUNet_raw", tmp_path / "nnUNet_preprocessed"
    only = os.environ.get("CONVERT_VERIFY_ONLY")  # e.g. "atlas2,isbi2015" while developing one converter
    keys = [k for k in fixture_modules() if not only or k in only.split(",")]
    ids = []
    for n, key in enumerate(keys):
        module = fixture_modules()[key]
        source = module.build(tmp_path / "downloads" / key)
        for m, options in enumerate(module.VERIFY):
            dataset_id = 600 + 10 * n + m
            convert(get_converter(key), source, dataset_id, raw, name=f"{key.replace('-', '')}{m}", workers=1,
                    options=options)
            ids.append(str(dataset_id))
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_raw=str(raw), nnUNet_preprocessed=str(preprocessed), nnUNet_results=str(tmp_path / "res"),
               nnUNet_def_n_proc="1")
    out = subprocess.run(["nnUNetv2_plan_and_preprocess", "-d", *ids, "--verify_dataset_integrity", "--no_pp",
                          "-np", "1", "-npfp", "1"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"nnU-Net rejected a converted dataset:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    for dataset_id in ids:
        assert list(preprocessed.glob(f"Dataset{dataset_id}_*/nnUNetPlans.json")), dataset_id
