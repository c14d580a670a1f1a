"""The GPU check behind ``benchmarks/gpu_check.sh``: one table of

1. the training-step time of every trainer of ours in ``3d_fullres`` at nnU-Net's planned patch and
   batch size, against stock ``nnUNetTrainer`` on the same samples (the fine-tuning strategies and
   the scratch baseline on the same batches; the self-supervised pretrainings on the batches their
   augmentation workers deliver), interleaved rotating rounds;
2. the transfer time (``transfer_time.py``: the demo network and an nnssl ResEnc-L checkpoint);
3. one tiny study end to end (plan, pretraining, fine-tuning, scratch, prediction, evaluation,
   report) through ``nnunet_transfer study run`` on the device.

Data: the embedded demo at 2 mm (nnU-Net plans 3d_fullres itself). ``--smoke``: 4 mm, fewer steps,
to check the script on a CPU (``--device cpu``); its numbers mean nothing for a GPU.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import demo_study, interleaved_step_times, make_trainer, nnunet_tree, save_results  # noqa: E402
from pretraining_overhead import worker_batch  # noqa: E402

FINETUNING = ["nnUNetTrainerFromScratch", "nnUNetTrainerFinetune", "nnUNetTrainerFinetuneWarmup",
              "nnUNetTrainerFinetuneFrozenEncoder", "nnUNetTrainerFinetuneEncoderLR"]
PRETRAINING = ["nnUNetTrainerPretrainSegmentation", "nnUNetTrainerPretrainModelsGenesis",
               "nnUNetTrainerPretrainContextRestoration", "nnUNetTrainerPretrainMaskedImageModeling",
               "nnUNetTrainerPretrainRotation", "nnUNetTrainerPretrainSimCLR"]
STUDY = """
name = "gpu_check"
configuration = "3d_fullres"
folds = ["all"]
strategies = ["finetune"]
nnunet_root = "nnunet"
device = "{device}"
num_processes = 4
[schedule]
num_epochs = 2
num_iterations_per_epoch = {iterations}
num_val_iterations_per_epoch = 2
[[sources]]
dataset = 901
[[targets]]
dataset = 911
label = "stroke"
lesions = true
"""


def step_times(device: str, spacing: float, rounds: int, steps: int) -> tuple[dict, list[int], list[int]]:
    """Median step time and ratio to stock of every trainer; the batch shape and the patch size."""
    import torch

    from nnunet_transfer.planning.attach import attach
    from nnunet_transfer.transfer.rules import TransferRules
    names = demo_study(spacing, 8, ["mri_seg_source", "mri_cls_source", "stroke"], ["3d_fullres"])
    source, cls_source, target = names["mri_seg_source"], names["mri_cls_source"], names["stroke"]
    stock = make_trainer("nnUNetTrainer", target, "BenchPlans", "3d_fullres", device=device)
    ckpt = Path(os.environ["nnUNet_results"]) / "donor.pth"
    torch.save({"network_weights": {k: v.cpu() for k, v in stock.network.state_dict().items()}}, ckpt)
    attach(ckpt, target, "BenchPlans", "BenchPlansFt", TransferRules())
    stock.on_train_start()
    batches = [next(stock.dataloader_train) for _ in range(steps)]
    trainers = {"nnUNetTrainer": stock}
    for name in FINETUNING:
        trainers[name] = make_trainer(name, target, "BenchPlans" if name.endswith("Scratch") else "BenchPlansFt",
                                      "3d_fullres", device=device)
    trainers["nnUNetTrainerFinetuneFrozenEncoder (frozen)"] = trainers.pop("nnUNetTrainerFinetuneFrozenEncoder")
    trainers["nnUNetTrainerFinetuneFrozenEncoder"] = make_trainer("nnUNetTrainerFinetuneFrozenEncoder", target,
                                                                  "BenchPlansFt", "3d_fullres", 55, device=device)
    for name in PRETRAINING:
        trainers[name] = make_trainer(name, source, "BenchPlans", "3d_fullres", device=device)
    classification = make_trainer("nnUNetTrainerPretrainClassification", cls_source, "BenchPlans", "3d_fullres",
                                  device=device)
    classification.on_train_start()
    delivered = {name: [worker_batch(t, b) for b in batches] for name, t in trainers.items()}
    trainers["nnUNetTrainerPretrainClassification"] = classification
    delivered["nnUNetTrainerPretrainClassification"] = [next(classification.dataloader_train) for _ in range(steps)]
    times = interleaved_step_times(trainers, delivered, rounds)
    base = statistics.median(times["nnUNetTrainer"])
    table = {name: {"step_s": round(statistics.median(t), 4), "vs_nnUNetTrainer": round(statistics.median(t) / base, 3)}
             for name, t in times.items()}
    return table, list(batches[0]["data"].shape), list(stock.configuration_manager.patch_size)


def tiny_study(device: str, spacing: float, iterations: int) -> float:
    """Seconds for ``study run`` of a one-source, one-target 3d_fullres study (fresh nnU-Net tree)."""
    from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
    root = Path(tempfile.mkdtemp(prefix="nnunet_transfer_gpu_check_study_"))
    (root / "study.toml").write_text(STUDY.format(device=device, iterations=iterations))
    write_demo_datasets(root / "nnunet" / "nnUNet_raw", DemoDataSize(spacing_mm=spacing, n_train=8, n_test=4),
                        which=["mri_seg_source", "stroke"], progress=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "study", "run", str(root / "study.toml")],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the tiny study failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> dict:
    import pandas as pd
    import torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--smoke", action="store_true", help="small data and few steps (to check the script)")
    args = parser.parse_args()
    spacing, rounds, steps, iterations = (4.0, 1, 1, 2) if args.smoke else (2.0, 5, 4, 25)
    from nnunet_transfer.environment import nnunet_subprocess_env
    nnunet_tree()
    os.environ.update(nnunet_subprocess_env())
    os.environ["nnUNet_n_proc_DA"] = "0"  # the timed steps get pre-made batches; the study sets its own
    start = time.perf_counter()
    table, batch, patch = step_times(args.device, spacing, rounds, steps)
    import transfer_time
    transfer = transfer_time.measure(repeats=3)
    study_s = tiny_study(args.device, spacing, iterations)
    rows = [{"what": f"step {name}", "seconds": v["step_s"], "vs stock nnUNetTrainer": v["vs_nnUNetTrainer"]}
            for name, v in table.items()]
    rows += [{"what": f"transfer: {k}", "seconds": v["median_s"], "vs stock nnUNetTrainer": None}
             for k, v in transfer.items() if isinstance(v, dict)]
    rows.append({"what": f"tiny study end to end ({iterations} iterations x 2 epochs per training)",
                 "seconds": round(study_s, 1), "vs stock nnUNetTrainer": None})
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(f"\ngpu_check on {device}: 3d_fullres patch {patch}, batch {batch[0]} (batch shape {batch}); "
          f"{time.perf_counter() - start:.0f} s in all\n")
    print(pd.DataFrame(rows).to_string(index=False))
    results = {"device": device, "patch_size": patch, "batch_shape": batch, "steps": table, "transfer": transfer,
               "tiny_study_s": round(study_s, 1), "smoke": args.smoke}
    save_results("gpu_check" + ("_smoke" if args.smoke else ""), results)
    return results


if __name__ == "__main__":
    main()
