"""TransferReport: what happened to every parameter of the target network."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

LOADED = "loaded"            # copied unchanged from the source
ADAPTED = "adapted"          # copied after a documented change (``how``)
SKIPPED = "skipped"          # a source tensor existed (or the rule excluded the entry); not used (``reason``)
INITIALISED = "initialised"  # no source counterpart: keeps the target's fresh initialisation
STATUSES = (LOADED, ADAPTED, SKIPPED, INITIALISED)


@dataclass
class ParameterRecord:
    """One target parameter or buffer (aliases of the same tensor are listed once)."""

    name: str
    shape: list[int]
    part: str                        # "encoder" | "decoder" | "head"
    status: str                      # one of STATUSES
    source_key: str | None = None
    source_shape: list[int] | None = None
    how: str | None = None           # for ADAPTED
    reason: str | None = None        # for SKIPPED / INITIALISED
    aliases: list[str] = field(default_factory=list)


@dataclass
class TransferReport:
    """Accounts for every target parameter exactly once, plus the source keys nothing used.

    ``to_dict()`` is the JSON written next to the fold's training log; ``summary()`` is the
    short text for the nnU-Net log.
    """

    records: list[ParameterRecord]
    unused_source: dict[str, list[int]]
    load: str
    checkpoint: str | None = None
    source_metadata: dict[str, Any] | None = None
    target_spacing: list[float] | None = None  # the target configuration's spacing (transposed order), when known
    checkpoint_sha256: str | None = None  # of the checkpoint file (the transfer block's, or hashed by preview)
    checkpoint_origin: str | None = None  # a hub checkpoint: hf://OWNER/REPO@COMMIT:FILE it was fetched from

    def by_status(self, status: str) -> list[ParameterRecord]:
        return [r for r in self.records if r.status == status]

    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.records)
        return {s: c.get(s, 0) for s in STATUSES}

    def counts_by_part(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.records:
            out.setdefault(r.part, {s: 0 for s in STATUSES})[r.status] += 1
        return out

    def spacing_note(self) -> str | None:
        """One line when the target is preprocessed at another spacing than the pretraining's (both
        known, or the pretraining recorded that it used none); None otherwise."""
        meta = self.source_metadata or {}
        if self.target_spacing is None or "spacing" not in meta:
            return None
        source = meta["spacing"]
        if source is not None and len(source) == len(self.target_spacing) and all(
                abs(float(a) - float(b)) <= 1e-3 * max(abs(float(b)), 1e-6)
                for a, b in zip(self.target_spacing, source)):
            return None
        shown = "no fixed spacing" if source is None else _mm(source)
        return f"spacing: target {_mm(self.target_spacing)}, pretraining {shown}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "checkpoint_origin": self.checkpoint_origin,
            "load": self.load,
            "counts": self.counts(),
            "counts_by_part": self.counts_by_part(),
            "parameters": [asdict(r) for r in self.records],
            "unused_source_keys": self.unused_source,
            "source": self.source_metadata,
            "target_spacing": self.target_spacing,
        }

    def summary(self, max_lines: int = 8) -> str:
        """A few lines: counts per part and status, then the first non-loaded entries."""
        lines = [f"Transfer from {self.checkpoint or 'state dict'} (load={self.load}): "
                 + ", ".join(f"{n} {s}" for s, n in self.counts().items())]
        if self.checkpoint_origin:
            lines.append(f"  from {self.checkpoint_origin} (SHA-256 {self.checkpoint_sha256})")
        for part, counts in self.counts_by_part().items():
            lines.append(f"  {part}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        spacing = self.spacing_note()
        if spacing:
            lines.append(f"  {spacing}")
        for citation in (self.source_metadata or {}).get("citations") or []:  # nnssl checkpoints name their papers
            papers = citation.get("apa_citations") or citation.get("bibtex_citations") or []
            lines.append(f"  cite ({citation.get('type', '?')} '{citation.get('name', '?')}'): " + "; ".join(papers))
        odd = [r for r in self.records if r.status not in (LOADED,)]
        for r in odd[:max_lines]:
            detail = r.how or r.reason or ""
            lines.append(f"  {r.status:<11} {r.name} {tuple(r.shape)}: {detail}")
        if len(odd) > max_lines:
            lines.append(f"  ... {len(odd) - max_lines} more (see the JSON report)")
        if self.unused_source:
            lines.append(f"  {len(self.unused_source)} source keys unused, e.g. "
                         + ", ".join(list(self.unused_source)[:3]))
        return "\n".join(lines)


def _mm(spacing: list[float]) -> str:
    return " x ".join(f"{float(s):g}" for s in spacing) + " mm"
