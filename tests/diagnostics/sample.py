"""A diagnostics result as ``diagnose`` produces it (plain data), small and hand-made, for the
findings and report tests."""
from __future__ import annotations

import copy


def _stats(mean: float, sd: float, nonpositive: float = 0.5) -> dict:
    return {"mean": mean, "sd": sd, "nonpositive": nonpositive, "shape": [2, 4, 8, 8]}


def sample_result() -> dict:
    """Transferred and fresh networks alike everywhere: no finding."""
    head = {"logit_mean": 0.0, "logit_sd": 1.0, "classes": ["background", "lesion"],
            "mean_probability": [0.5, 0.5], "predicted_fraction": [0.6, 0.4], "reference_fraction": [0.97, 0.03]}
    stages = [{"stage": name, "transferred": _stats(0.4, 0.6), "fresh": _stats(0.4, 0.6), "sd_ratio": 1.0,
               "weights": {"transferred": 8, "entries": 8}}
              for name in ("encoder stage 0", "encoder stage 1", "decoder stage 0")]
    norms = {"encoder stage 0": [0.3, 0.2], "encoder stage 1": [0.2, 0.2], "decoder stage 0": [0.5, 0.4],
             "head": [1.0, 0.8]}
    parts = {"encoder": [0.36, 0.28], "decoder": [0.5, 0.4], "head": [1.0, 0.8]}
    curve = {"checkpoint": "/r/fold_0/checkpoint_final.pth", "finished": True, "epochs": 2,
             "train_losses": [0.6, 0.4], "val_losses": [0.5, 0.3], "mean_fg_dice": [0.1, 0.3],
             "ema_fg_dice": [0.1, 0.12]}
    return {
        "dataset": "Dataset911_DemoStroke", "plans": "P_from_S", "configuration": "2d", "fold": 0,
        "trainer": "nnUNetTrainerFinetune", "device": "cpu", "seed": 0, "checkpoint": "/c/checkpoint_final.pth",
        "strategy": {"warmup_epochs": 0, "frozen_encoder_epochs": 0, "encoder_lr_factor": 1.0},
        "batch_size": 2, "patch_size": [8, 8],
        "transfer": {"load": "encoder+decoder", "counts_by_part": {"encoder": {"loaded": 16}, "head": {"skipped": 2}},
                     "weights_by_group": {}},
        "first_batch": {"stages": stages, "head": {"transferred": head, "fresh": copy.deepcopy(head)},
                        "loss": {"transferred": 0.65, "fresh": 0.69}, "batch_shape": [2, 1, 8, 8]},
        "gradients": {"iterations": 2, "iterations_per_epoch": 2,
                      "loss": {"transferred": [0.65, 0.55], "fresh": [0.69, 0.56]},
                      "norms": {"transferred": norms, "fresh": copy.deepcopy(norms)},
                      "mean": {g: {"transferred": sum(v) / 2, "fresh": sum(v) / 2} for g, v in norms.items()},
                      "mean_by_part": {p: {"transferred": sum(v) / 2, "fresh": sum(v) / 2} for p, v in parts.items()},
                      "norms_by_part": {"transferred": parts, "fresh": copy.deepcopy(parts)}},
        "curves": {"finetune": curve, "baseline": copy.deepcopy(curve), "finetune_folder": "/r/fold_0",
                   "baseline_folder": "/b/fold_0"},
        "findings": [],
    }
