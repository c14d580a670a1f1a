"""Pretraining overhead: corruption time of every pretext as a fraction of one training step, and
every pretraining trainer's step time vs stock nnUNetTrainer, on the same plans and batches.

Goals (issue: pretraining modes): corruption <= 5 % of a step at the planned batch and patch;
trainer step ratio <= 1.03. Data: the demo's MRI classification source at 4 mm, planned by
nnU-Net (2d: batch 23 of 56x48; 3d_fullres: batch 2 of 48x56x48), one process, interleaved
rotating rounds. Run: python benchmarks/pretraining_overhead.py
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import demo_study, interleaved_step_times, make_trainer, nnunet_tree, save_results  # noqa: E402

PRETRAINERS = ["nnUNetTrainer", "nnUNetTrainerPretrainSegmentation", "nnUNetTrainerPretrainClassification",
               "nnUNetTrainerPretrainModelsGenesis", "nnUNetTrainerPretrainContextRestoration",
               "nnUNetTrainerPretrainMaskedImageModeling", "nnUNetTrainerPretrainRotation",
               "nnUNetTrainerPretrainSimCLR"]


def corruption_times(batch, repeats: int = 10) -> dict[str, float]:
    import torch

    from nnunet_transfer.pretext import PRETEXT_CLASSES
    out = {}
    for name, cls in PRETEXT_CLASSES.items():
        pretext, generator = cls(), torch.Generator().manual_seed(0)
        pretext(batch, generator)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            pretext(batch, generator)
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def main(rounds: int = 5, steps: int = 3) -> dict:
    from nnunet_transfer.environment import nnunet_subprocess_env
    nnunet_tree()
    os.environ.update(nnunet_subprocess_env())
    os.environ["nnUNet_n_proc_DA"] = "0"
    dataset = demo_study(4.0, 12, ["mri_cls_source"], ["2d", "3d_fullres"])["mri_cls_source"]
    results = {}
    for configuration, names in (("2d", PRETRAINERS), ("3d_fullres", PRETRAINERS[:1])):
        stock = make_trainer("nnUNetTrainer", dataset, "BenchPlans", configuration)
        stock.on_train_start()
        batches = [next(stock.dataloader_train) for _ in range(steps)]
        if configuration == "2d":
            trainers = {name: make_trainer(name, dataset, "BenchPlans", configuration) for name in names}
            times = interleaved_step_times(trainers, batches, rounds)
        else:  # 3D steps are slow on a CPU: the stock step is enough to scale the corruption times
            times = interleaved_step_times({"nnUNetTrainer": stock}, batches, 1)
        step = statistics.median(times["nnUNetTrainer"])
        corruption = corruption_times(batches[0]["data"].float())
        results[configuration] = {
            "batch_shape": list(batches[0]["data"].shape),
            "stock_step_s": round(step, 4),
            "corruption_fraction_of_step": {k: round(v / step, 4) for k, v in corruption.items()},
            "corruption_s": {k: round(v, 4) for k, v in corruption.items()},
            "step_ratio_vs_nnUNetTrainer": {k: round(statistics.median(t) / step, 3) for k, t in times.items()},
        }
    save_results("pretraining_overhead", results)
    return results


if __name__ == "__main__":
    main()
