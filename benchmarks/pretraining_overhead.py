"""Pretraining overhead: what the training process spends per step, and what the pretexts cost the
augmentation workers.

1. Main-process step time of every pretraining trainer vs stock ``nnUNetTrainer`` on the same
   samples (2d, planned batch and patch): the self-supervised trainers get the batches their
   augmentation workers deliver (the stock batch's samples through the trainer's own pretext
   transform, not timed), so the step time is what the training process spends. Goal (issue: the
   GPU user's path): <= 1.03 for every pretext.
2. Per-sample cost in the workers for a 1 x 128^3 patch (nnU-Net's 3d_fullres patch of brain MRI):
   each pretext's transform, and nnU-Net's own training transforms for comparison (mean over 20
   samples, one thread, as nnU-Net's workers run); the workers
   needed to keep up with a 0.2 s GPU step at batch size 2 (nnU-Net's 3d_fullres) are
   ceil(2 x (nnU-Net's transforms + pretext) / 0.2 s), on this machine's cores.

Data: the demo's MRI classification source at 4 mm, planned by nnU-Net. Run:
python benchmarks/pretraining_overhead.py
"""
from __future__ import annotations

import math
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
GPU_STEP_S, BATCH_3D = 0.2, 2


def worker_batch(trainer, batch: dict) -> dict:
    """The batch the trainer's augmentation workers deliver for these samples: each sample through
    its pretext transform, stacked as nnU-Net's loader stacks them."""
    import torch
    transform = getattr(trainer, "pretext_transform", None)
    if transform is None:
        return batch
    samples = [transform(image=image.clone(), segmentation=None) for image in batch["data"]]
    return {"data": torch.stack([s["image"] for s in samples]),
            "target": torch.stack([s["segmentation"] for s in samples]), "keys": batch["keys"]}


def per_sample_times(repeats: int = 20) -> dict[str, float]:
    """Mean seconds per 1 x 128^3 sample, on one thread as in nnU-Net's workers: nnU-Net's 3d
    training transforms and each pretext's transform. Both draw what they do at random (a rotation
    in one sample of five, a local shuffle in one of two), so the mean over many samples is the
    cost a worker carries."""
    import numpy as np
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from nnunet_transfer.pretext import PRETEXT_CLASSES
    from nnunet_transfer.trainers.pretext_transform import CLASSIFICATION, RECONSTRUCTION, VIEWS, PretextTransform
    outputs = {"rotation": CLASSIFICATION, "simclr": VIEWS}
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    image = torch.randn(1, 128, 128, 128)
    stock = nnUNetTrainer.get_training_transforms(
        (128, 128, 128), (-np.pi / 6, np.pi / 6), [[1, 1, 1], [0.5] * 3, [0.25] * 3, [0.125] * 3, [0.0625] * 3],
        (0, 1, 2), False, use_mask_for_norm=[False], is_cascaded=False, foreground_labels=[1], regions=None,
        ignore_label=None)
    transforms = {"nnU-Net training transforms": stock}
    transforms.update({name: PretextTransform(cls(), 0, outputs.get(name, RECONSTRUCTION))
                       for name, cls in PRETEXT_CLASSES.items()})
    out = {}
    for name, transform in transforms.items():
        times = []
        for _ in range(repeats + 1):
            segmentation = torch.zeros(1, 128, 128, 128, dtype=torch.int16)
            start = time.perf_counter()
            transform(image=image.clone(), segmentation=segmentation)
            times.append(time.perf_counter() - start)
        out[name] = statistics.mean(times[1:])  # the first call warms caches
    torch.set_num_threads(threads)
    return out


def main(rounds: int = 9, steps: int = 3) -> dict:
    from nnunet_transfer.environment import nnunet_subprocess_env
    nnunet_tree()
    os.environ.update(nnunet_subprocess_env())
    os.environ["nnUNet_n_proc_DA"] = "0"
    dataset = demo_study(4.0, 12, ["mri_cls_source"], ["2d"])["mri_cls_source"]
    stock = make_trainer("nnUNetTrainer", dataset, "BenchPlans", "2d")
    stock.on_train_start()
    batches = [next(stock.dataloader_train) for _ in range(steps)]
    trainers = {name: make_trainer(name, dataset, "BenchPlans", "2d") for name in PRETRAINERS}
    trainers["nnUNetTrainer"] = stock
    delivered = {name: [worker_batch(t, b) for b in batches] for name, t in trainers.items()}
    times = interleaved_step_times(trainers, delivered, rounds)
    step = statistics.median(times["nnUNetTrainer"])
    sample = per_sample_times()
    stock_da = sample.pop("nnU-Net training transforms")
    results = {
        "2d": {"batch_shape": list(batches[0]["data"].shape), "stock_step_s": round(step, 4),
               "main_process_step_ratio_vs_nnUNetTrainer": {k: round(statistics.median(t) / step, 3)
                                                            for k, t in times.items()}},
        "3d_128": {"nnunet_transforms_s_per_sample": round(stock_da, 3),
                   "pretext_s_per_sample": {k: round(v, 3) for k, v in sample.items()},
                   "workers_for_0.2s_step_at_batch_2": {
                       k: math.ceil(BATCH_3D * (stock_da + v) / GPU_STEP_S) for k, v in sample.items()},
                   "workers_for_0.2s_step_at_batch_2_stock": math.ceil(BATCH_3D * stock_da / GPU_STEP_S)},
    }
    save_results("pretraining_overhead", results)
    return results


if __name__ == "__main__":
    main()
