"""How long the demo's default preset (3d_fullres, 2 mm) takes on one GPU: an estimate, not a measurement.

No GPU here, so the estimate combines what can be measured on this CPU with nnU-Net's published
GPU epoch times:

1. nnU-Net plans the default preset's data (the anatomy dataset at 2 mm, shared plans as the demo
   makes them): patch size and batch size of the 3d_fullres network; its training step (forward,
   backward, SGD, deep supervision) is timed on this CPU;
2. nnU-Net's published A100 epoch time for MSD Task002_Heart 3d_fullres (51.2 s for 250 steps of
   2 x 80 x 192 x 160 voxels; documentation/expected_epoch_times.md of nnU-Net v1, the last table
   nnU-Net published in its repository) is scaled to the preset's patch by voxels per batch (both
   networks have the same 32-320 features; a smaller network uses a GPU less well, so this errs
   on the short side). With ``--heart`` the scale is instead the ratio of the two networks' CPU
   steps, measured here (the Heart step takes minutes on 2 cores);
3. the preset's steps (trainings x epochs x (training + validation iterations)) times that step,
   plus a start-up per training and the predictions, gives the total.

Run: python benchmarks/default_preset_estimate.py [--heart]
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import demo_study, nnunet_tree, save_results  # noqa: E402

A100_HEART_EPOCH_S = 51.17  # nnU-Net v1 expected_epoch_times.md, A100 40GB, Task002_Heart 3d_fullres, 250 steps
HEART_PATCH, HEART_BATCH = (80, 192, 160), 2
STARTUP_S = 20.0  # nnUNetv2_train start-up and data-loader warm-up on a GPU machine (measured 10 s on this CPU)
PREDICTION_S_PER_CASE = 2.0  # sliding window over a 2 mm brain without TTA on a GPU, generous


def step_time(network, batch: int, patch: tuple[int, ...], classes: int, repeats: int = 2) -> float:
    import torch
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

    loss = DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, weight_ce=1,
                          weight_dice=1, dice_class=MemoryEfficientSoftDiceLoss)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.99, nesterov=True)
    x = torch.randn(batch, 1, *patch)
    with torch.no_grad():
        shapes = [o.shape[2:] for o in network(x)]
    targets = [torch.randint(0, classes, (batch, 1, *s)).float() for s in shapes]
    loss = DeepSupervisionWrapper(loss, [1 / 2 ** i for i in range(len(shapes))])
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss(network(x), targets).backward()
        optimizer.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def heart_network(classes: int):
    """The 3d_fullres U-Net of nnU-Net's plan for Task002_Heart (6 stages, 32-320 features, last stride 1x2x2)."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    import torch.nn as nn
    strides = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]
    return PlainConvUNet(1, 6, [32, 64, 128, 256, 320, 320], nn.Conv3d, [[3, 3, 3]] * 6, strides, [2] * 6, classes,
                         [2] * 5, conv_bias=True, norm_op=nn.InstanceNorm3d,
                         norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU,
                         nonlin_kwargs={"inplace": True}, deep_supervision=True)


def main() -> dict:
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    from nnunet_transfer.demo.menu import SOURCES, TARGETS
    from nnunet_transfer.demo.run import DEFAULT
    from nnunet_transfer.planning.plans_file import load_plans, resolved_configuration

    torch.manual_seed(0)
    nnunet_tree()
    names = demo_study(DEFAULT.size.spacing_mm, 6, ["mri_seg_source", "anatomy"], [DEFAULT.configuration])
    cfg = resolved_configuration(load_plans(names["anatomy"], "BenchPlans"), DEFAULT.configuration)
    arch = cfg["architecture"]
    demo_net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                      1, 4, deep_supervision=True)
    patch, batch = tuple(cfg["patch_size"]), cfg["batch_size"]
    demo_cpu = step_time(demo_net, batch, patch, 4)
    print(f"demo network: patch {patch}, batch {batch}, {demo_cpu:.1f} s per step on this CPU", flush=True)
    voxels = batch * math.prod(patch) / (HEART_BATCH * math.prod(HEART_PATCH))
    heart_cpu = step_time(heart_network(2), HEART_BATCH, HEART_PATCH, 2, repeats=1) if "--heart" in sys.argv else None
    scale = demo_cpu / heart_cpu if heart_cpu else voxels
    gpu_step = A100_HEART_EPOCH_S / 250 * scale

    schedule = DEFAULT.schedule
    n_sources, n_targets, n_sizes = len(SOURCES), len(TARGETS), len(DEFAULT.train_sizes)
    trainings = n_sources + n_targets * n_sizes * (n_sources + 1)
    steps = schedule["num_epochs"] * (schedule["num_iterations_per_epoch"] + schedule["num_val_iterations_per_epoch"])
    predictions = n_targets * n_sizes * (n_sources + 1) * DEFAULT.size.n_test
    total_s = trainings * (steps * gpu_step + STARTUP_S) + predictions * PREDICTION_S_PER_CASE
    results = {"patch_size": list(patch), "batch_size": batch, "cpu_step_s": round(demo_cpu, 2),
               "heart_cpu_step_s": heart_cpu and round(heart_cpu, 2), "voxel_ratio_to_heart": round(voxels, 3),
               "scaled_by": "cpu step ratio" if heart_cpu else "voxels per batch",
               "a100_heart_step_s": round(A100_HEART_EPOCH_S / 250, 3),
               "estimated_gpu_step_s": round(gpu_step, 3), "trainings": trainings, "steps_per_training": steps,
               "predictions": predictions, "estimated_hours": round(total_s / 3600, 2),
               "estimated_cpu_hours": round(trainings * (steps * demo_cpu + 10) / 3600, 1)}
    save_results("default_preset_estimate", results)
    return results


if __name__ == "__main__":
    main()
