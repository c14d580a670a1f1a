"""Classification pretraining: a pooled linear head on the encoder, per-case class labels."""
from __future__ import annotations

import math
import warnings
from os.path import join

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, recall_score
from torch import nn

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import write_json_atomic
from nnunet_transfer.names import MODE_CLASSIFICATION
from nnunet_transfer.trainers.base import PretrainingTrainerBase
from nnunet_transfer.trainers.class_labels import read_class_labels
from nnunet_transfer.trainers.heads import EncoderClassifier
from nnunet_transfer.transfer.load import unwrap_model

REPORT_FILE = "classification_report.json"


def classification_scores(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict:
    """Accuracy, balanced accuracy (mean recall over the classes present in ``labels``), recall per
    class (NaN for a class without cases) and the confusion matrix (rows: true class), by scikit-learn."""
    if not len(labels):
        return {"accuracy": math.nan, "balanced_accuracy": math.nan, "recall_per_class": [math.nan] * num_classes,
                "confusion_matrix": np.zeros((num_classes, num_classes), dtype=int).tolist(), "n": 0}
    classes = list(range(num_classes))
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": they are left out, as intended
        warnings.simplefilter("ignore")
        balanced = float(balanced_accuracy_score(labels, predictions))
    recall = recall_score(labels, predictions, labels=classes, average=None, zero_division=np.nan)
    return {"accuracy": float(accuracy_score(labels, predictions)), "balanced_accuracy": balanced,
            "recall_per_class": [float(r) for r in recall],
            "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(), "n": int(len(labels))}


class nnUNetTrainerPretrainClassification(PretrainingTrainerBase):
    """Classification pretraining on the shared plans (2D or 3D, any channel count).

    Global average pooling of the bottleneck (``pretraining.pool_stages`` for several encoder
    stages) -> linear head, cross-entropy (``pretraining.class_weights: "balanced"`` weights classes
    by inverse frequency); the decoder is built but unused, deep supervision is off. Labels come
    from the dataset's ``class_labels.json``, matched to the case keys nnU-Net's loader returns.
    Each epoch logs accuracy and balanced accuracy (balanced accuracy also drives nnU-Net's
    "pseudo dice" curve and best checkpoint); the final segmentation validation is replaced by
    ``classification_report.json``. Checkpoints are self-describing; the head never transfers.
    """

    pretraining_mode = MODE_CLASSIFICATION

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = False
        self.class_weighting = self.pretraining_settings.class_weights
        self.pool_stages = list(self.pretraining_settings.pool_stages)
        self.class_names, self.case_labels = read_class_labels(self.plans_manager.dataset_name)

    def initialize(self):
        super().initialize()
        self.replace_network(EncoderClassifier(unwrap_model(self.network), len(self.class_names), self.pool_stages))
        weight = None
        if self.class_weighting == "balanced":
            counts = np.bincount(list(self.case_labels.values()), minlength=len(self.class_names)).astype(float)
            weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(counts), dtype=torch.float32)
        self.loss = nn.CrossEntropyLoss(weight=weight.to(self.device) if weight is not None else None)

    def _labels(self, keys) -> torch.Tensor:
        missing = [k for k in keys if k not in self.case_labels]
        if missing:
            raise NnunetTransferError(f"No class label for case(s) {missing[:5]} in class_labels.json of "
                                      f"{self.plans_manager.dataset_name}.")
        return torch.tensor([self.case_labels[k] for k in keys], dtype=torch.long)

    def train_step(self, batch: dict) -> dict:
        return super().train_step(dict(batch, target=self._labels(batch["keys"])))

    def validation_step(self, batch: dict) -> dict:
        labels = self._labels(batch["keys"]).to(self.device)
        logits = self.network(batch["data"].to(self.device, non_blocking=True))
        return {"loss": self.loss(logits, labels).detach().cpu().numpy(),
                "pred": logits.argmax(1).cpu().numpy(), "label": labels.cpu().numpy()}

    def on_validation_epoch_end(self, val_outputs: list[dict]):
        labels = np.concatenate([o["label"] for o in val_outputs])
        preds = np.concatenate([o["pred"] for o in val_outputs])
        scores = classification_scores(labels, preds, len(self.class_names))
        self.logger.log("val_losses", float(np.mean([o["loss"] for o in val_outputs])), self.current_epoch)
        self.logger.log("mean_fg_dice", scores["balanced_accuracy"], self.current_epoch)
        self.logger.log("dice_per_class_or_region", scores["recall_per_class"], self.current_epoch)
        for key in ("accuracy", "balanced_accuracy"):
            self.logger.local_logger.my_fantastic_logging.setdefault(key, [])
            self.logger.log(key, scores[key], self.current_epoch)
        self.print_to_log_file(f"accuracy {scores['accuracy']:.4f} balanced accuracy {scores['balanced_accuracy']:.4f}")

    def perform_actual_validation(self, save_probabilities: bool = False):
        """Classify every validation case (all training cases for fold ``all``) and write the report."""
        self.network.eval()
        _, val_keys = self.do_split()
        dataset = self.dataset_class(self.preprocessed_dataset_folder, val_keys)
        labels, preds = [], []
        with torch.no_grad():
            for key in val_keys:
                data = torch.from_numpy(np.asarray(dataset.load_case(key)[0])).float()
                preds.append(int(self._case_logits(data).argmax()))
                labels.append(self.case_labels[key])
        scores = classification_scores(np.array(labels), np.array(preds), len(self.class_names))
        scores.update(class_names=self.class_names, fold=self.fold,
                      cases={k: {"label": t, "prediction": p} for k, t, p in zip(val_keys, labels, preds)})
        if self.local_rank == 0:
            write_json_atomic(scores, join(self.output_folder, REPORT_FILE))
        self.print_to_log_file(f"Classification report ({len(val_keys)} cases): accuracy {scores['accuracy']:.4f}, "
                               f"balanced accuracy {scores['balanced_accuracy']:.4f} -> {REPORT_FILE}")

    def _case_logits(self, data: torch.Tensor) -> torch.Tensor:
        """Mean logits over the patch-sized centre crop (3D) or over all slices (2D network, 3D case)."""
        patch = list(self.configuration_manager.patch_size)
        if len(patch) == 2 and data.ndim == 4:  # (C, Z, Y, X) through a 2D network: slice by slice
            slices = data.permute(1, 0, 2, 3)
            return torch.cat([self.network(_fit(s, patch).to(self.device)) for s in slices.split(16)]).mean(0)
        return self.network(_fit(data, patch).unsqueeze(0).to(self.device))[0]

    def checkpoint_metadata(self) -> dict:
        return dict(super().checkpoint_metadata(), class_names=self.class_names)


def _fit(x: torch.Tensor, patch: list[int]) -> torch.Tensor:
    """Centre-crop or zero-pad the trailing spatial dims of ``x`` to ``patch``."""
    for axis, size in zip(range(x.ndim - len(patch), x.ndim), patch):
        have = x.shape[axis]
        if have > size:
            x = x.narrow(axis, (have - size) // 2, size)
        elif have < size:
            pad = [0, 0] * (x.ndim - axis - 1) + [(size - have) // 2, size - have - (size - have) // 2]
            x = torch.nn.functional.pad(x, pad)
    return x
