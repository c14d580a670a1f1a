"""Per-case class labels of a classification source: ``class_labels.json`` next to dataset.json.

``{"class_names": ["a", "b", ...], "labels": {"<case id>": <class index>, ...}}``. Planning copies
the file into the preprocessed folder, so training works where only preprocessed data exist.
"""
from __future__ import annotations

import os
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from nnunet_transfer.layout import CLASS_LABELS_FILE


def read_class_labels(dataset: str) -> tuple[list[str], dict[str, int]]:
    """Class names and case -> class index of ``dataset`` (preprocessed copy first, then raw).

    Raises NnunetTransferError when the file is missing or inconsistent (an index outside the
    class names, a non-integer label).
    """
    candidates = [Path(os.environ[v]) / dataset / CLASS_LABELS_FILE for v in ("nnUNet_preprocessed", "nnUNet_raw")
                  if os.environ.get(v)]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise NnunetTransferError(
            f"{dataset} has no {CLASS_LABELS_FILE} (looked in {', '.join(map(str, candidates)) or 'no folder'}); a "
            f"classification source needs per-case labels: {{\"class_names\": [...], \"labels\": {{case: index}}}}.")
    data = read_json(path)
    names, labels = data.get("class_names"), data.get("labels")
    if not isinstance(names, list) or not names or not isinstance(labels, dict) or not labels:
        raise NnunetTransferError(f"{path} needs a non-empty 'class_names' list and a non-empty 'labels' object.")
    bad = {k: v for k, v in labels.items() if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(names)}
    if bad:
        raise NnunetTransferError(f"{path}: labels must be class indices 0..{len(names) - 1}; offending cases: "
                                  f"{dict(list(bad.items())[:5])}.")
    return [str(n) for n in names], {str(k): int(v) for k, v in labels.items()}
