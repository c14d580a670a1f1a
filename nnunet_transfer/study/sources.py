"""Sources given as a checkpoint (``[[sources]] checkpoint = ...``): their files are recorded by
SHA-256 when the study starts, in ``<study folder>/external_sources.json`` with what the
checkpoint says of itself (format, architecture, citations), and checked before each fine-tuning:
a file that changed since is an error, never a silent mix of two networks in one table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json, write_json_atomic
from nnunet_transfer.planning.attach import sha256
from nnunet_transfer.study.spec import Source, Study
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, load_checkpoint

RECORD_FILE = "external_sources.json"


def record_path(study: Study) -> Path:
    return study.folder / RECORD_FILE


def _describe(source: Source) -> dict[str, Any]:
    """What the record keeps of one checkpoint (read safely: it is untrusted)."""
    path = source.checkpoint
    if not path.is_file():
        raise NnunetTransferError(f"source {source.label!r}: checkpoint {path} does not exist (the study file's "
                                  f"checkpoint is relative to the study file)")
    checkpoint = load_checkpoint(path)
    meta = checkpoint_metadata(checkpoint, str(path)) or {}
    init = checkpoint.get("init_args") if isinstance(checkpoint.get("init_args"), dict) else {}
    plans = init.get("plans") if isinstance(init.get("plans"), dict) else {}
    return {"checkpoint": str(path), "sha256": sha256(path), "task": source.task, "domain": source.domain,
            "format": meta.get("format") or ("nnU-Net" if plans else "state dict"),
            "trainer": meta.get("trainer") or checkpoint.get("trainer_name"),
            "source_dataset": meta.get("source_dataset") or plans.get("dataset_name"),
            "citations": list(meta.get("citations") or [])}


def record_external_sources(study: Study) -> dict[str, dict[str, Any]]:
    """Record every external source's checkpoint (first start), or check it against the record
    (later starts). Returns the record (source id -> entry). Raises NnunetTransferError naming the
    file when it is missing or differs from the one the study started with."""
    external = [s for s in study.sources if s.external]
    path = record_path(study)
    record = read_json(path) if path.is_file() else {}
    changed = False
    for source in external:
        if source.key in record:
            check_external_source(study, source, record)
        else:
            record[source.key] = _describe(source)
            changed = True
    if changed:
        write_json_atomic(record, path)
    return record


def check_external_source(study: Study, source: Source, record: dict | None = None) -> None:
    """Raise NnunetTransferError unless ``source``'s checkpoint is the file recorded when the study
    started (same path and SHA-256)."""
    path = record_path(study)
    if record is None:
        if not path.is_file():
            raise NnunetTransferError(f"{path} does not exist: external sources are recorded when the study starts "
                                      f"(nnunet_transfer study run / launch); run the study, not one step")
        record = read_json(path)
    entry = record.get(source.key)
    if entry is None:
        raise NnunetTransferError(f"source {source.label!r} is not recorded in {path}; start the study again "
                                  f"(study run / launch) to record it")
    if not source.checkpoint.is_file():
        raise NnunetTransferError(f"source {source.label!r}: checkpoint {source.checkpoint} does not exist any more; "
                                  f"the study started with it (SHA-256 {entry['sha256'][:12]}...)")
    if str(source.checkpoint) != entry["checkpoint"] or sha256(source.checkpoint) != entry["sha256"]:
        raise NnunetTransferError(
            f"source {source.label!r}: checkpoint {source.checkpoint} is not the file the study started with "
            f"({entry['checkpoint']}, SHA-256 {entry['sha256'][:12]}...): it changed since, and runs from two "
            f"different networks would share one row. Restore the file, or start a new study (another output "
            f"folder).")


def sources_markdown(study: Study) -> str:
    """The external sources of the study as Markdown for the results: file, SHA-256, what the
    checkpoint says of itself and the papers it asks to cite; empty without external sources."""
    path = record_path(study)
    record = read_json(path) if path.is_file() else {}
    lines = []
    for source in (s for s in study.sources if s.external and s.key in record):
        entry = record[source.key]
        what = ", ".join(f"{k} {entry[k]}" for k in ("format", "trainer", "source_dataset") if entry.get(k))
        lines.append(f"- **{source.label}**: `{entry['checkpoint']}` (SHA-256 `{entry['sha256']}`; {what})")
        for citation in entry.get("citations") or []:
            papers = citation.get("apa_citations") or citation.get("bibtex_citations") or []
            lines.append(f"  - cite ({citation.get('type', '?')} '{citation.get('name', '?')}'): " + "; ".join(papers))
    return ("\nSources given as checkpoints (not pretrained by this study):\n\n" + "\n".join(lines) + "\n"
            if lines else "")
