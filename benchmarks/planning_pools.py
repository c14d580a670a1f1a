"""Shared plans over several small datasets: one worker pool for the whole call against nnU-Net's own
pool per dataset (fingerprint) and per dataset and configuration (preprocessing), in the same run.

Both arms plan the same demo datasets from scratch (fingerprints deleted between runs), alternating,
and must write identical plans; the ratio is the median time with nnU-Net's pools over the median
with the shared pool.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import time
from pathlib import Path

from common import nnunet_tree, save_results

ROUNDS = 3
KEYS = ["mri_seg_source", "stroke", "anatomy"]


def main() -> None:
    import os

    from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
    from nnunet_transfer.planning import shared

    root = nnunet_tree()
    written = write_demo_datasets(os.environ["nnUNet_raw"], DemoDataSize(spacing_mm=6.0, n_train=8, n_test=1),
                                  which=KEYS, progress=False)
    names = [p.name for p in written.values()]
    preprocessed = Path(os.environ["nnUNet_preprocessed"])
    shared_pool = shared.one_worker_pool

    def plan(own_pools: bool) -> tuple[float, dict]:
        shutil.rmtree(preprocessed)
        preprocessed.mkdir()
        shared.one_worker_pool = (lambda n: contextlib.nullcontext()) if own_pools else shared_pool
        try:
            start = time.perf_counter()
            shared.plan_shared(names[0], names[1:], "BenchPlans", ["2d"], num_processes=2, progress=False)
            seconds = time.perf_counter() - start
        finally:
            shared.one_worker_pool = shared_pool
        plans = {n: json.loads((preprocessed / n / "BenchPlans.json").read_text()) for n in names}
        return seconds, plans

    times: dict[str, list[float]] = {"nnunet_pools": [], "shared_pool": []}
    reference = None
    for _ in range(ROUNDS):
        for arm, own in (("nnunet_pools", True), ("shared_pool", False)):
            seconds, plans = plan(own)
            times[arm].append(seconds)
            reference = reference or plans
            assert plans == reference, "the two arms wrote different plans"
    medians = {arm: statistics.median(t) for arm, t in times.items()}
    save_results("planning_pools", {
        "datasets": names, "configuration": "2d", "rounds": ROUNDS, "seconds": times, "median_seconds": medians,
        "ratio_nnunet_over_shared": medians["nnunet_pools"] / medians["shared_pool"], "identical_plans": True})
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
