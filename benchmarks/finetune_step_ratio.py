"""Step time of every fine-tuning trainer vs stock nnUNetTrainer, on the same plans and batches.

Goal (issue: weight transfer): ratio <= 1.03. All trainers are built in one process on the demo's
quick data (2d, 4 mm, nnU-Net's batch size); the same pre-loaded batches are fed to each, in
interleaved rounds, so data loading and machine noise hit all of them alike. The frozen-encoder
trainer is timed in its frozen phase and after unfreezing. Run: python benchmarks/finetune_step_ratio.py
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import demo_study, interleaved_step_times, make_trainer, nnunet_tree, save_results  # noqa: E402

TRAINERS = ["nnUNetTrainer", "nnUNetTrainerFromScratch", "nnUNetTrainerFinetune", "nnUNetTrainerFinetuneWarmup",
            "nnUNetTrainerFinetuneFrozenEncoder", "nnUNetTrainerFinetuneEncoderLR"]


def main(rounds: int = 7, steps: int = 4) -> dict:
    import os

    import torch

    from nnunet_transfer.environment import nnunet_subprocess_env
    from nnunet_transfer.planning.attach import attach
    from nnunet_transfer.transfer.rules import TransferRules

    nnunet_tree()
    os.environ.update(nnunet_subprocess_env())
    os.environ["nnUNet_n_proc_DA"] = "0"
    names = demo_study(4.0, 12, ["mri_seg_source", "anatomy"], ["2d"])
    source, target = names["mri_seg_source"], names["anatomy"]
    # a checkpoint of the shared network: a stock trainer's initial weights are enough to time the steps
    donor = make_trainer("nnUNetTrainer", source, "BenchPlans")
    ckpt = Path(os.environ["nnUNet_results"]) / "donor.pth"
    torch.save({"network_weights": donor.network.state_dict()}, ckpt)
    # no strategy keys in the block: every trainer runs with its own defaults
    attach(ckpt, target, "BenchPlans", "BenchPlansFt", TransferRules())
    donor.on_train_start()
    batches = [next(donor.dataloader_train) for _ in range(steps)]

    variants = {name: (name, 0) for name in TRAINERS}
    variants["nnUNetTrainerFinetuneFrozenEncoder (frozen)"] = ("nnUNetTrainerFinetuneFrozenEncoder", 0)
    variants["nnUNetTrainerFinetuneFrozenEncoder"] = ("nnUNetTrainerFinetuneFrozenEncoder", 55)  # unfrozen at 50
    trainers = {label: make_trainer(name, target, "BenchPlans" if name in ("nnUNetTrainer", "nnUNetTrainerFromScratch")
                                    else "BenchPlansFt", "2d", epoch) for label, (name, epoch) in variants.items()}
    times = interleaved_step_times(trainers, batches, rounds)
    base = statistics.median(times["nnUNetTrainer"])
    results = {label: {"median_step_s": round(statistics.median(t), 4),
                       "ratio_vs_nnUNetTrainer": round(statistics.median(t) / base, 3)} for label, t in times.items()}
    results["batch_shape"] = list(batches[0]["data"].shape)
    save_results("finetune_step_ratio", results)
    return results


if __name__ == "__main__":
    main()
