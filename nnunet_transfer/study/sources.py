"""Sources given as a checkpoint (``[[sources]] checkpoint = ...``): their files are recorded by
SHA-256 when the study starts, in ``<study folder>/external_sources.json`` with what the
checkpoint says of itself (format, architecture, citations), and checked before each fine-tuning:
a file that changed since is an error, never a silent mix of two networks in one table.

A hub reference (``hf://OWNER/REPO[@REVISION][:FILE]`` or a huggingface.co URL) is fetched into the
cache when the study starts; the record adds its ``reference``, the commit it resolved to
(``revision``), ``filename`` and ``pinned`` (``hf://OWNER/REPO@COMMIT:FILE``), and ``checkpoint`` is
the local file that every fine-tuning attaches. Later starts keep that commit (a moved branch is not
followed) and fetch it again only when the cached file is gone, checking its SHA-256."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.hub import ResolvedCheckpoint, is_hub_reference, resolve_checkpoint
from nnunet_transfer.io import read_json, sha256, write_json_atomic
from nnunet_transfer.study.architectures import check_like_checkpoint_sources
from nnunet_transfer.study.spec import Source, Study
from nnunet_transfer.transfer.checkpoint import checkpoint_metadata, load_checkpoint

RECORD_FILE = "external_sources.json"


def record_path(study: Study) -> Path:
    return study.folder / RECORD_FILE


def is_hub_source(source: Source) -> bool:
    """True for a source whose checkpoint is a hub reference (a str), not a file."""
    return isinstance(source.checkpoint, str) and is_hub_reference(source.checkpoint)


def _describe(source: Source) -> dict[str, Any]:
    """What the record keeps of one checkpoint (read safely: it is untrusted); a hub reference is
    fetched (or found in the cache) first."""
    resolved = resolve_checkpoint(source.checkpoint) if is_hub_source(source) else None
    path = resolved.path.absolute() if resolved else source.checkpoint
    if not path.is_file():
        raise NnunetTransferError(f"source {source.label!r}: checkpoint {path} does not exist (the study file's "
                                  f"checkpoint is relative to the study file)")
    checkpoint = load_checkpoint(path)
    meta = checkpoint_metadata(checkpoint, str(path)) or {}
    init = checkpoint.get("init_args") if isinstance(checkpoint.get("init_args"), dict) else {}
    plans = init.get("plans") if isinstance(init.get("plans"), dict) else {}
    hub = {"reference": resolved.reference, "repo_id": resolved.repo_id, "revision": resolved.revision,
           "filename": resolved.filename, "pinned": resolved.pinned} if resolved else {}
    return {"checkpoint": str(path), "sha256": resolved.sha256 if resolved else sha256(path), **hub,
            "task": source.task, "domain": source.domain,
            "format": meta.get("format") or ("nnU-Net" if plans else "state dict"),
            "trainer": meta.get("trainer") or checkpoint.get("trainer_name"),
            "source_dataset": meta.get("source_dataset") or plans.get("dataset_name"),
            "citations": list(meta.get("citations") or [])}


def record_external_sources(study: Study) -> dict[str, dict[str, Any]]:
    """Record every external source's checkpoint (first start), or check it against the record
    (later starts), and check that sources planned like their checkpoint can be (channels of every
    target). Returns the record (source id -> entry). Raises NnunetTransferError naming the file when
    it is missing or differs from the one the study started with, or naming the source and target."""
    external = [s for s in study.sources if s.external]
    path = record_path(study)
    record = read_json(path) if path.is_file() else {}
    changed = False
    for source in external:
        if source.key in record:
            changed |= _fetch_again(source, record[source.key])
            check_external_source(study, source, record)
        else:
            record[source.key] = _describe(source)
            changed = True
    if changed:
        write_json_atomic(record, path)
    check_like_checkpoint_sources(study)
    return record


def _fetch_again(source: Source, entry: dict[str, Any]) -> bool:
    """A recorded hub file that left the cache is fetched again at its pinned commit (the same
    SHA-256 or an error). Returns True when the entry's local path changed."""
    if not is_hub_source(source) or source.checkpoint != entry.get("reference") or \
            Path(entry["checkpoint"]).is_file():
        return False
    resolved = resolve_checkpoint(entry["pinned"])
    if resolved.sha256 != entry["sha256"]:
        raise NnunetTransferError(f"source {source.label!r}: {entry['pinned']} now has SHA-256 "
                                  f"{resolved.sha256[:12]}..., not {entry['sha256'][:12]}... as when the study "
                                  f"started; start a new study (another output folder).")
    changed = str(resolved.path.absolute()) != entry["checkpoint"]
    entry["checkpoint"] = str(resolved.path.absolute())
    return changed


def _entry(study: Study, source: Source, record: dict | None = None) -> dict[str, Any]:
    """The record's entry of ``source``; NnunetTransferError when the study has not recorded it."""
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
    return entry


def check_external_source(study: Study, source: Source, record: dict | None = None) -> None:
    """Raise NnunetTransferError unless ``source``'s checkpoint is the file recorded when the study
    started (same path and SHA-256; a hub source: the same reference, and its recorded local file)."""
    entry = _entry(study, source, record)
    hub = is_hub_source(source)
    file = Path(entry["checkpoint"]) if hub else source.checkpoint
    if hub and source.checkpoint != entry.get("reference"):
        raise NnunetTransferError(
            f"source {source.label!r}: checkpoint {source.checkpoint} is not the one the study started with "
            f"({entry.get('reference') or entry['checkpoint']}, SHA-256 {entry['sha256'][:12]}...): runs from two "
            f"different networks would share one row. Restore the study file's reference, or start a new study "
            f"(another output folder).")
    if not file.is_file():
        again = f"; start the study again to fetch {entry['pinned']} again" if hub else ""
        raise NnunetTransferError(f"source {source.label!r}: checkpoint {file} does not exist any more; "
                                  f"the study started with it (SHA-256 {entry['sha256'][:12]}...){again}")
    if str(file) != entry["checkpoint"] or sha256(file) != entry["sha256"]:
        raise NnunetTransferError(
            f"source {source.label!r}: checkpoint {file} is not the file the study started with "
            f"({entry['checkpoint']}, SHA-256 {entry['sha256'][:12]}...): it changed since, and runs from two "
            f"different networks would share one row. Restore the file, or start a new study (another output "
            f"folder).")


def external_checkpoint(study: Study, source: Source) -> Path | ResolvedCheckpoint:
    """What a fine-tuning from an external source attaches: its file, or for a hub reference the
    file, commit and SHA-256 recorded when the study started (no network). Raises
    NnunetTransferError when a hub source is not recorded yet."""
    if not is_hub_source(source):
        return source.checkpoint
    entry = _entry(study, source)
    return ResolvedCheckpoint(Path(entry["checkpoint"]), entry["reference"], entry["sha256"], entry["repo_id"],
                              entry["revision"], entry["filename"])


def sources_markdown(study: Study) -> str:
    """The external sources of the study as Markdown for the results: file, SHA-256, what the
    checkpoint says of itself and the papers it asks to cite; empty without external sources."""
    path = record_path(study)
    record = read_json(path) if path.is_file() else {}
    lines = []
    for source in (s for s in study.sources if s.external and s.key in record):
        entry = record[source.key]
        what = ", ".join(f"{k} {entry[k]}" for k in ("format", "trainer", "source_dataset") if entry.get(k))
        where = f"`{entry['pinned']}`, cached as " if entry.get("pinned") else ""
        lines.append(f"- **{source.label}**: {where}`{entry['checkpoint']}` (SHA-256 `{entry['sha256']}`; {what})")
        for citation in entry.get("citations") or []:
            papers = citation.get("apa_citations") or citation.get("bibtex_citations") or []
            lines.append(f"  - cite ({citation.get('type', '?')} '{citation.get('name', '?')}'): " + "; ".join(papers))
    return ("\nSources given as checkpoints (not pretrained by this study):\n\n" + "\n".join(lines) + "\n"
            if lines else "")
