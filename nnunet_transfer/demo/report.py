"""Dice of the demo's predictions (nnU-Net's own metric code), the comparison table and figure."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pandas as pd

from nnunet_transfer.io import read_json

matplotlib.use("Agg")


def evaluate_predictions(predictions: str | Path, dataset: str) -> pd.DataFrame:
    """Per-case Dice of ``predictions`` against ``<nnUNet_raw>/<dataset>/labelsTs``.

    Uses nnU-Net's ``compute_metrics_on_folder``; writes its summary.json into the
    prediction folder. Returns one row per case: ``case``, ``dice`` (mean over foreground
    classes) and ``dice_<label name>`` per class.
    """
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json
    raw = Path(os.environ["nnUNet_raw"]) / dataset
    dataset_json = read_json(raw / "dataset.json")
    labels = {int(v): k for k, v in dataset_json["labels"].items() if int(v) > 0}
    reader = determine_reader_writer_from_dataset_json(dataset_json)()
    summary = compute_metrics_on_folder(str(raw / "labelsTs"), str(predictions),
                                        str(Path(predictions) / "summary.json"), reader, dataset_json["file_ending"],
                                        sorted(labels), num_processes=1)
    rows = []
    for case in summary["metric_per_case"]:
        row = {"case": Path(case["reference_file"]).name.split(".")[0]}
        for label, metrics in case["metrics"].items():
            row[f"dice_{labels[int(label)]}"] = metrics["Dice"]
        row["dice"] = pd.Series([row[f"dice_{n}"] for n in labels.values()]).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def dice_table(per_case: pd.DataFrame) -> pd.DataFrame:
    """One row per target; per initialisation (each source, and ``scratch``) the mean and sd of
    the per-case Dice, and each source's gain over scratch."""
    stats = per_case.groupby(["target", "initialisation"])["dice"].agg(["mean", "std", "count"])
    inits = [i for i in dict.fromkeys(per_case["initialisation"]) if i != "scratch"] + ["scratch"]
    rows = []
    for target in dict.fromkeys(per_case["target"]):
        row = {"target": target, "n cases": int(stats.loc[(target, "scratch"), "count"])}
        for init in inits:
            row[f"{init} mean"] = stats.loc[(target, init), "mean"]
            row[f"{init} sd"] = stats.loc[(target, init), "std"]
        for init in inits[:-1]:
            row[f"{init} gain"] = row[f"{init} mean"] - row["scratch mean"]
        rows.append(row)
    return pd.DataFrame(rows)


def save_table(table: pd.DataFrame, per_case: pd.DataFrame, folder: str | Path) -> None:
    """CSV + Markdown table, per-case CSV and a grouped bar chart (mean +- sd) in ``folder``."""
    import matplotlib.pyplot as plt
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "dice_table.csv", index=False)
    per_case.to_csv(folder / "dice_per_case.csv", index=False)
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
                   for row in table.itertuples(index=False))
    (folder / "dice_table.md").write_text(header + body, encoding="utf-8")

    inits = [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]
    width = 0.8 / len(inits)
    fig, ax = plt.subplots(figsize=(1.8 + 1.2 * len(table) * max(1, len(inits) / 2), 3.2))
    for j, init in enumerate(inits):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(table))]
        ax.bar(xs, table[f"{init} mean"], width, yerr=table[f"{init} sd"], label=init, capsize=2)
    ax.set_xticks(list(range(len(table))), [t.split("_", 1)[-1] for t in table["target"]])
    ax.set_ylabel("Dice (test cases)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "dice_bars.png", dpi=120)
    plt.close(fig)
