"""The study's results: the fairness check, the comparison table, per-case metrics and figures.

``write_report`` first checks that the arms of every comparison differ only in their
initialisation (:mod:`nnunet_transfer.study.fairness`), then writes the table
(:mod:`nnunet_transfer.study.table`), what each row's transfer did, the external sources and the
figures (:mod:`nnunet_transfer.study.figures`) into ``<study folder>/results``, and last the one-page
``report.html`` with a gallery of segmentations (:mod:`nnunet_transfer.study.report_html`).
"""
from __future__ import annotations

from pathlib import Path

from nnunet_transfer.io import write_csv_atomic, write_text_atomic
from nnunet_transfer.study.fairness import check_fairness, transfer_lines
from nnunet_transfer.study.figures import bar_figure, data_efficiency_figure, learning_curves
from nnunet_transfer.study.report_html import write_report_html
from nnunet_transfer.study.sources import RECORD_FILE, record_path, sources_markdown
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.table import collect, comparison_table, markdown

__all__ = ["collect", "comparison_table", "data_efficiency_figure", "markdown", "write_report"]


def write_report(study: Study, preface: str | None = None) -> dict[str, Path]:
    """Check the fairness of every comparison, then write table CSV / Markdown (``preface`` above the
    table; under it the fairness statement, each row's transfer and the external sources), per-case
    CSV, the figures (``data_efficiency.png`` when targets have training sizes) and ``report.html`` into
    ``<study folder>/results``; returns the paths written. Raises NnunetTransferError (naming the
    arm and what differs) when an arm differs from scratch in more than its initialisation."""
    per_case = collect(study)
    fairness = check_fairness(study, per_case)
    table = comparison_table(study, per_case)
    out = study.folder / "results"
    out.mkdir(parents=True, exist_ok=True)
    files = {"table_csv": out / "comparison.csv", "table_md": out / "comparison.md", "per_case": out / "per_case.csv",
             "bars": out / "comparison.png", "curves": out / "learning_curves.png"}
    write_csv_atomic(table, files["table_csv"])
    rows = transfer_lines(study)
    transfers = "\nHow each row was initialised (its plans' transfer block and TransferReport):\n\n" + \
        "\n".join(rows) + "\n" if rows else ""
    write_text_atomic(markdown(study, table, preface) + f"\n{fairness}\n" + transfers + sources_markdown(study),
                      files["table_md"])
    if record_path(study).is_file():  # external sources: their files, hashes and citations next to the table
        files["external_sources"] = out / RECORD_FILE
        write_text_atomic(record_path(study).read_text(encoding="utf-8"), files["external_sources"])
    write_csv_atomic(per_case, files["per_case"])
    bar_figure(study, table, files["bars"])
    learning_curves(study, files["curves"])
    if data_efficiency_figure(study, per_case, out / "data_efficiency.png"):
        files["data_efficiency"] = out / "data_efficiency.png"
    files["report_html"] = write_report_html(study, table, per_case, fairness, preface)  # embeds the figures above
    return files
