"""A finished study made of files only, for report tests: raw target datasets with test images and
masks (NIfTI, written with nibabel), each run's predictions, evaluation CSV, plans copy, transfer
report and training log, and the step states. Nothing is trained; predictions are the reference
changed per arm (shifted, a lesion dropped, a false-positive blob added)."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pandas as pd
import torch

from nnunet_transfer.evaluation.lesions import match_lesions
from nnunet_transfer.study import state
from nnunet_transfer.study.grid import expand, runs
from nnunet_transfer.study.paths import activate, evaluation_file, log_path, prediction_folder, run_folder
from nnunet_transfer.study.spec import Study, load_study

SOURCES = ("mri seg", "mri cls", "mri ssl", "natural seg", "natural cls", "natural ssl")
TARGETS = (("stroke", True), ("ms", True), ("anatomy", False))


def study_text(n_sources: int = 2, n_targets: int = 1, folds: str = "[0]") -> str:
    text = f'name = "synthetic"\nnnunet_root = "nn"\nfolds = {folds}\nconfiguration = "3d_fullres"\n'
    for i, label in enumerate(SOURCES[:n_sources]):
        text += f'[[sources]]\ndataset = {i + 1}\nlabel = "{label}"\n'
    for i, (label, lesions) in enumerate(TARGETS[:n_targets]):
        text += f'[[targets]]\ndataset = {101 + i}\nlabel = "{label}"\nlesions = {str(lesions).lower()}\n'
    return text


def blob(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float) -> np.ndarray:
    """A ball in voxel index order (i, j, k)."""
    grid = np.indices(shape, dtype=np.float32)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius ** 2


def write_nifti(array: np.ndarray, path: Path, affine: np.ndarray | None = None) -> None:
    """``array`` in nibabel's voxel order (i, j, k); ``affine`` RAS+ (default 2 mm, i toward the patient's left)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    nibabel.save(nibabel.Nifti1Image(array, affine), str(path))


def _case(rng: np.random.Generator, shape, lesions: bool) -> tuple[np.ndarray, np.ndarray]:
    """A noisy ellipsoid 'head' with a label map: lesion targets 1-3 balls of label 1; anatomy three
    nested shells (labels 1, 2, 3)."""
    centre = [s / 2 for s in shape]
    head = blob(shape, centre, min(shape) * 0.42)
    image = (head * 100 + rng.normal(0, 8, shape)).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    if lesions:
        for _ in range(int(rng.integers(1, 4))):
            c = [rng.uniform(0.3, 0.7) * s for s in shape]
            label[blob(shape, c, rng.uniform(2, 5)) & head] = 1
        image[label > 0] -= 50
    else:
        for value, fraction in ((1, 0.42), (2, 0.3), (3, 0.18)):
            label[blob(shape, centre, min(shape) * fraction)] = value
        image += label * 20
    return image, label


def _prediction(reference: np.ndarray, arm: int, case: int, rng: np.random.Generator) -> np.ndarray:
    """The reference shifted by ``arm`` voxels; arm 1 misses the first lesion, arm 2 adds a blob."""
    out = np.roll(reference, arm % 3, axis=0)
    if arm == 1 and out.any():
        first = np.argwhere(out > 0)[0]
        out[blob(out.shape, first, 6) & (out > 0)] = 0
    if arm == 2:
        out[blob(out.shape, [s * 0.25 for s in out.shape], 2.5)] = 1
    return out


def finished_study(tmp_path: Path, n_sources: int = 2, n_targets: int = 1, n_cases: int = 4,
                   shape: tuple[int, int, int] = (24, 28, 20), failed_step: str | None = None) -> Study:
    """Write the study file and every file of a finished study under ``tmp_path``; activates it
    (sets nnU-Net's variables: call under monkeypatch). ``failed_step``: a step id recorded failed,
    whose run then has no prediction and no evaluation."""
    path = tmp_path / "synthetic.toml"
    path.write_text(study_text(n_sources, n_targets))
    raw = tmp_path / "nn" / "nnUNet_raw"
    for i, label in enumerate(SOURCES[:n_sources]):
        (raw / f"Dataset{i + 1:03d}_Source{i}").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    references = {}
    for i, (label, lesions) in enumerate(TARGETS[:n_targets]):
        folder = raw / f"Dataset{101 + i:03d}_{label.capitalize()}"
        labels = {"background": 0, "lesion": 1} if lesions else {"background": 0, "CSF": 1, "GM": 2, "WM": 3}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1"}, "labels": labels,
                                                         "numTraining": 0, "file_ending": ".nii.gz"}))
        for c in range(n_cases):
            image, reference = _case(rng, shape, lesions)
            write_nifti(image, folder / "imagesTs" / f"case{c}_0000.nii.gz")
            write_nifti(reference, folder / "labelsTs" / f"case{c}.nii.gz")
            references[label, f"case{c}"] = reference
    study = load_study(path)
    activate(study)
    steps = {s.id: s for s in expand(study)}
    failed_run = steps[failed_step].run if failed_step else None
    arms = {}
    for run in runs(study):
        arm = arms.setdefault(run.init, len(arms))
        folder = run_folder(study, run)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"logging": {"ema_fg_dice": [0.1 * arm, 0.3, 0.5 + 0.02 * arm]}}, folder / "checkpoint_final.pth")
        (folder / "training_log_2024_1_1_10_00_00.txt").write_text(
            "2024-01-01 10:00:00.000000: start\n2024-01-01 10:01:30.500000: Epoch time: 9 s\n")
        plans = {"plans_name": "P", "training_schedule": {"num_epochs": 5, "num_iterations_per_epoch": 6, "seed": 0}}
        if run.source is not None:
            plans |= {"plans_name": f"P_from_{run.source.key}", "transfer": {
                "checkpoint": f"/checkpoints/{run.source.key}.pth", "checkpoint_sha256": "ab" * 32,
                "load": "encoder+decoder"}}
            (folder / "transfer_report.json").write_text(json.dumps({
                "counts_by_part": {"encoder": {"loaded": 20, "adapted": 1},
                                   "decoder": {"loaded": 12, "initialised": 2}},
                "unused_source_keys": ["head.weight"],
                "source": {"citations": [{"type": "paper", "name": "Synthetic", "apa_citations": ["Doe (2024)."]}]}}))
        (folder.parent / "plans.json").write_text(json.dumps(plans))
        if failed_run == run:
            continue
        rows = []
        for (label, case), reference in references.items():
            if label != run.target.label:
                continue
            prediction = _prediction(reference, arm, int(case[4:]), rng)
            write_nifti(prediction, prediction_folder(study, run) / f"{case}.nii.gz")
            ref, pred = reference > 0, prediction > 0
            dice = 2 * (ref & pred).sum() / max(1, ref.sum() + pred.sum())
            row = {"case": case, "mDice": dice, "mIoU": dice / (2 - dice)}
            if run.target.lesions:
                row["lesion_TPR"] = match_lesions(ref, pred).detection_rate
            rows.append(row)
        out = evaluation_file(study, run)
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)
    for step_id, step in steps.items():
        if failed_step in step.deps:
            continue  # pending: the scheduler shows it blocked
        status = state.FAILED if step_id == failed_step else state.DONE
        state.mark(study.folder, step_id, status, log=str(log_path(study, step)), seconds=12,
                   **({"error": "nnUNetv2_train exited with code 1"} if status == state.FAILED else {}))
    return study
