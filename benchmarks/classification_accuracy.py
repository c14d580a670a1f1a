"""Classification pretraining on the demo's classification sources: held-out accuracy after a
short CPU run, against chance.

Stock ``nnUNetv2_train ... 0 -tr nnUNetTrainerPretrainClassification`` (fold 0: nnU-Net's 5-fold
split, so the report's cases were not trained on), 2d configuration, the schedule below.
Run: python benchmarks/classification_accuracy.py [epochs] [iterations per epoch]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import nnunet_tree, save_results  # noqa: E402


def main(epochs: int = 20, iterations: int = 10) -> dict:
    from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
    from nnunet_transfer.environment import nnunet_subprocess_env
    from nnunet_transfer.planning.shared import plan_shared
    nnunet_tree()
    size = DemoDataSize(spacing_mm=4.0, n_train=30, n_test=1, n_natural=60, natural_size=64)
    written = write_demo_datasets(os.environ["nnUNet_raw"], size, which=["natural_cls_source", "mri_cls_source"],
                                  progress=False)
    schedule = {"num_epochs": epochs, "num_iterations_per_epoch": iterations, "num_val_iterations_per_epoch": 2}
    results = {}
    for key, path in written.items():
        plan_shared(path.name, [], "ClsBench", ["2d"], num_processes=2, schedule=schedule, progress=False)
        env = nnunet_subprocess_env({"nnUNet_n_proc_DA": "0"})
        subprocess.run(["nnUNetv2_train", path.name, "2d", "0", "-tr", "nnUNetTrainerPretrainClassification",
                        "-p", "ClsBench", "-device", "cpu"], env=env, check=True, capture_output=True)
        report = json.loads(next(Path(os.environ["nnUNet_results"]).glob(
            f"{path.name}/*__ClsBench__2d/fold_0/classification_report.json")).read_text())
        results[key] = {"held_out_cases": report["n"], "accuracy": round(report["accuracy"], 3),
                        "balanced_accuracy": round(report["balanced_accuracy"], 3),
                        "chance": round(1 / len(report["class_names"]), 3), "classes": report["class_names"],
                        "schedule": schedule}
    save_results("classification_accuracy", results)
    return results


if __name__ == "__main__":
    main(*map(int, sys.argv[1:3]))
