"""Step time of every fine-tuning trainer vs stock nnUNetTrainer, on the same plans and batches.

Goal (issue: weight transfer): ratio <= 1.03. All trainers are built in one process on the demo's
quick data (2d, 4 mm, nnU-Net's batch size); the same pre-loaded batches are fed to each, in
interleaved rounds, so data loading and machine noise hit all of them alike. The frozen-encoder
trainer is timed in its frozen phase and after unfreezing. Run: python benchmarks/finetune_step_ratio.py
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import demo_study, nnunet_tree  # noqa: E402

TRAINERS = ["nnUNetTrainer", "nnUNetTrainerFromScratch", "nnUNetTrainerFinetune", "nnUNetTrainerFinetuneWarmup",
            "nnUNetTrainerFinetuneFrozenEncoder", "nnUNetTrainerFinetuneEncoderLR"]


def make_trainer(name: str, dataset: str, plans: str, epoch: int = 0):
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(dataset, "2d", "all", name, plans, device=torch.device("cpu"))
    trainer.initialize()
    if hasattr(trainer, "load_transfer_checkpoint"):
        trainer.load_transfer_checkpoint()
    trainer.current_epoch = epoch
    trainer.on_train_epoch_start()
    return trainer


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
                                    else "BenchPlansFt", epoch) for label, (name, epoch) in variants.items()}
    times = {label: [] for label in trainers}
    for trainer in trainers.values():  # warm-up step, not timed
        trainer.train_step(batches[0])
    labels = list(trainers)
    for r in range(rounds):
        # rotate the order every round so that no trainer always runs first or last
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            trainer = trainers[label]
            for batch in batches:
                start = time.perf_counter()
                trainer.train_step(batch)
                times[label].append(time.perf_counter() - start)
    base = statistics.median(times["nnUNetTrainer"])
    results = {label: {"median_step_s": round(statistics.median(t), 4),
                       "ratio_vs_nnUNetTrainer": round(statistics.median(t) / base, 3)} for label, t in times.items()}
    results["batch_shape"] = list(batches[0]["data"].shape)
    print(json.dumps(results, indent=2))
    out = Path(__file__).resolve().parent / "results" / "finetune_step_ratio.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
