"""``results/report.html``: the study on one self-contained page.

One HTML file that opens from disk with no server and no network: every picture is a ``data:`` URI,
the styles and the few lines of JavaScript that sort the tables are inline. Sections: failed steps
(when there are any, first), the comparison table per training size (sortable by any column, with
its caption and the fairness statement), the figures, a gallery of segmentations per target
(:mod:`nnunet_transfer.study.gallery`), what each arm loaded and how it trained, and the provenance
(:mod:`nnunet_transfer.study.report_facts`).
"""
from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import pandas as pd

from nnunet_transfer.io import write_text_atomic
from nnunet_transfer.names import SCRATCH
from nnunet_transfer.study import state
from nnunet_transfer.study.gallery import (CLASS_COLOURS, FALSE_POSITIVE_RING, MISSED_RING, ORIENTATION,
                                           REFERENCE_OUTLINE, Gallery, arm_colours, galleries)
from nnunet_transfer.study.report_facts import ArmFacts, arm_facts, describe_seconds, provenance, step_rows
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.table import (ALL, ARCHITECTURE_COLUMN, SIZE_COLUMN, _cells, caption, metric_of_key,
                                         table_keys)

REPORT_FILE = "report.html"
FIGURES = (("comparison.png", ("Mean of every table metric per initialisation and training size, error bars the "
                               "between-seed SD or the SD over folds")),
           ("data_efficiency.png", ("Primary metric against the number of training patients, one line per "
                                    "initialisation (scratch dashed), bands the 95 % bootstrap interval")),
           ("learning_curves.png", "Validation pseudo-Dice (EMA) per epoch of every training, one panel per target"))

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1400px;
padding:0 16px 40px;color:#1a1a1a}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
h3{font-size:16px;margin:18px 0 6px}h4{font-size:14px;margin:14px 0 4px}
nav a{margin-right:12px}.muted{color:#555}.failed{background:#fde8e8;border:1px solid #d33;padding:8px 12px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f2f2f2}table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}table.sortable th[aria-sort=descending]::after{
content:" \\25BC"}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figure img{max-width:min(100%,860px);height:auto;border:1px solid #ddd}.panels{display:flex;flex-wrap:wrap;gap:6px}
.panel{margin:0;width:132px;border:3px solid #bbb;padding:2px;background:#fafafa}
.panel img{display:block;width:100%;height:auto;image-rendering:pixelated}
.panel figcaption{font-size:11px;line-height:1.3}.panel .title{font-weight:600}
.frame{position:relative}.lr{position:absolute;top:2px;color:#fff;font:bold 11px sans-serif;
text-shadow:0 0 2px #000}.lr.r{left:3px}.lr.l{right:3px}
.swatch{display:inline-block;width:12px;height:12px;border:1px solid #333;vertical-align:middle;margin:0 4px 0 10px}
code{font-size:12px;word-break:break-all}dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}
dt{font-weight:600}dd{margin:0}
"""

SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], column = th.cellIndex;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    function key(row) {
      var cell = row.cells[column], value = cell.getAttribute("data-value");
      return value === null ? cell.textContent.trim() : (value === "" ? null : parseFloat(value));
    }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _markdown_inline(text: str) -> str:
    """Escaped text with Markdown's **bold** and `code`."""
    out = _e(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _number(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def table_html(study: Study, table: pd.DataFrame, colours: dict) -> str:
    """One sortable table per training size: per target and metric the mean ± spread, Δ [95 % CI]
    against scratch and the Holm-corrected p (as in comparison.md), each cell carrying its number
    for sorting; then the caption."""
    out = []
    several = len(set(table[ARCHITECTURE_COLUMN])) > 1
    for size in dict.fromkeys(table[SIZE_COLUMN]):
        block = table[table[SIZE_COLUMN] == size]
        keys = [k for k in table_keys(block) if not block[f"{k} mean"].isna().all()]
        title = "every training case" if size == ALL else f"{size} training patients"
        out.append(f"<h3>{_e(title)}</h3>")
        header = ["initialisation"] + (["architecture"] if several else []) + [
            h for k in keys for h in (k + (" (lower is better)" if metric_of_key(k).lower_is_better else ""),
                                       f"Δ {k} [95 % CI]", "p (Holm)")]
        out.append(f'<table class="sortable" aria-label="comparison, {_e(title)}"><thead><tr>'
                   + "".join(f'<th scope="col" title="click to sort">{_e(h)}</th>' for h in header)
                   + "</tr></thead><tbody>")
        for _, row in block.iterrows():
            arm = (row[ARCHITECTURE_COLUMN], row["initialisation"])
            colour = colours.get(arm, "#bbb")
            swatch = f'<span class="swatch" style="background:{colour};margin-left:0"></span>'
            cells = [f'<td>{swatch}{_e(row["initialisation"])}</td>'] + ([f"<td>{_e(arm[0])}</td>"] if several else [])
            for k in keys:
                texts = _cells(row, k)
                values = (row[f"{k} mean"], row[f"{k} diff"], row[f"{k} p_holm"])
                cells += [f'<td class="num" data-value="{_number(v)}">{_e(t)}</td>' for t, v in zip(texts, values)]
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
    out.append(f'<p class="muted">{_markdown_inline(caption(study, table))}</p>')
    return "\n".join(out)


def figures_html(results: Path) -> str:
    out = []
    for name, alt in FIGURES:
        path = results / name
        if path.is_file():
            out.append(f'<figure class="figure"><img src="{data_uri(path.read_bytes())}" alt="{_e(alt)}">'
                       f"<figcaption>{_e(alt)} (<code>{_e(name)}</code>)</figcaption></figure>")
    return "\n".join(out) or "<p>No figure was written.</p>"


def _legend(galleries: list[Gallery], colours: dict) -> str:
    several = len({a for a, _ in colours}) > 1
    arms = "".join(f'<span class="swatch" style="background:{c}"></span>{_e(f"{a[1]} ({a[0]})" if several else a[1])}'
                   for a, c in colours.items())
    labels = {v: n for g in galleries for v, n in g.labels.items()}
    classes = "".join(f'<span class="swatch" style="background:{CLASS_COLOURS[(v - 1) % len(CLASS_COLOURS)]}"></span>'
                      f"{_e(n)}" for v, n in sorted(labels.items()))
    marks = (f'<span class="swatch" style="background:{REFERENCE_OUTLINE}"></span>reference outline'
             f'<span class="swatch" style="background:{MISSED_RING}"></span>ring: missed reference lesion'
             f'<span class="swatch" style="background:{FALSE_POSITIVE_RING}"></span>ring: false-positive (FP) lesion. '
             "Under each prediction: its metrics, then (lesion targets) the lesions missed and false positive in "
             "the volume and in this slice (here)")
    return (f"<p><strong>Arms</strong> (panel frame):{arms}</p><p><strong>Labels</strong> (translucent fill of the "
            f"reference and of each prediction):{classes}</p><p>{marks}</p><p class=\"muted\">{_e(ORIENTATION)}</p>")


def gallery_html(galleries: list[Gallery], colours: dict) -> str:
    out = [_legend(galleries, colours)]
    for gallery in galleries:
        out.append(f'<section id="gallery-{_e(re.sub(r"[^A-Za-z0-9]+", "-", gallery.target))}">'
                   f'<h3>{_e(gallery.target)}</h3><p class="muted">{_e(gallery.note)}</p>')
        for case in gallery.cases:
            out.append(f"<h4>{_e(case.rank)}: case {_e(case.case)} (scratch {case.value:.3f}); {_e(case.where)}</h4>"
                       '<div class="panels">')
            for panel in case.panels:
                style = f' style="border-color:{panel.colour}"' if panel.colour else ""
                letters = "" if case.two_d else '<span class="lr r">R</span><span class="lr l">L</span>'
                picture = (f'<div class="frame"><img src="{data_uri(panel.png)}" alt="{_e(panel.alt)}">{letters}</div>'
                           if panel.png else "")
                lines = "".join(f"<br>{_e(line)}" for line in panel.lines)
                out.append(f'<figure class="panel"{style}>{picture}<figcaption><span class="title">{_e(panel.title)}'
                           f"</span>{lines}</figcaption></figure>")
            out.append("</div>")
        out.append("</section>")
    return "\n".join(out)


def arms_html(facts: list[ArmFacts]) -> str:
    rows = []
    for arm in facts:
        if arm.label == SCRATCH:
            loaded = "nothing: nnU-Net's random initialisation"
        elif arm.transfer:
            loaded = "; ".join(f"{k} <code>{_e(v)}</code>" for k, v in arm.transfer.items())
        else:
            loaded = "no trained run yet"
        counts = "<br>".join(f"{_e(part)}: " + ", ".join(f"{n} {_e(s)}" for s, n in c.items() if n)
                             for part, c in arm.counts_by_part.items())
        if arm.unused_source_keys:
            counts += f"<br>unused source keys: {arm.unused_source_keys}"
        cites = "<br>".join(_e(c) for c in arm.citations)
        schedule = ", ".join(f"{_e(k)} {_e(v)}" for k, v in arm.schedule.items())
        rows.append(f"<tr><td>{_e(arm.label)}<br><span class=\"muted\">{_e(arm.architecture)}</span></td>"
                    f"<td>{_e(arm.strategy)}<br><code>{_e(arm.trainer)}</code></td><td>{loaded}</td><td>{counts}</td>"
                    f"<td>{cites}</td><td>{schedule}</td><td>{arm.runs_trained} of {arm.runs_total} trained; "
                    f"{_e(describe_seconds(arm.training_seconds))}</td></tr>")
    return ('<table><thead><tr><th>arm</th><th>strategy / trainer</th><th>transfer block (load rule, checkpoint, '
            "SHA-256, ...)</th><th>TransferReport per part</th><th>citations</th><th>training schedule</th>"
            "<th>runs, training time</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def failed_html(steps: list[dict]) -> str:
    failed = [s for s in steps if s["status"] == state.FAILED]
    if not failed:
        return ""
    items = "".join(f"<li><code>{_e(s['step'])}</code> at {_e(s['time'])}: {_e(s['error'])}<br>log: "
                    f"<code>{_e(s['log'])}</code></li>" for s in failed)
    blocked = sum(s["status"] == "blocked" for s in steps)
    return (f'<div class="failed" role="alert"><strong>{len(failed)} step(s) failed</strong>'
            + (f" ({blocked} blocked behind them)" if blocked else "")
            + f"; their results are missing from this report:<ul>{items}</ul></div>")


def provenance_html(facts: dict[str, str], steps: list[dict]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd><code>{_e(v)}</code></dd>" for k, v in facts.items())
    counts = pd.Series([s["status"] for s in steps]).value_counts().to_dict() if steps else {}
    rows = "".join(f"<tr><td><code>{_e(s['step'])}</code></td><td>{_e(s['status'])}</td><td>{_e(s['time'])}</td>"
                   f"<td>{_e(s['duration'])}</td><td>{_e(s['host'])}</td><td><code>{_e(s['log'])}</code></td>"
                   f"<td>{_e(s['error'])}</td></tr>" for s in steps)
    header = ("<tr><th>step</th><th>status</th><th>time of its last change</th><th>ran for</th><th>host</th>"
              "<th>log</th><th>error</th></tr>")
    return (f"<dl>{items}</dl><details{' open' if any(s['status'] == state.FAILED for s in steps) else ''}>"
            f"<summary>{len(steps)} steps: {_e(', '.join(f'{n} {k}' for k, n in counts.items()))}</summary>"
            f'<table class="sortable" aria-label="steps"><thead>{header}</thead><tbody>{rows}</tbody></table>'
            '</details>')


def write_html(study: Study, path: Path, *, table: pd.DataFrame, per_case: pd.DataFrame, galleries: list[Gallery],
               facts: list[ArmFacts], provenance: dict[str, str], steps: list[dict], fairness: str,
               preface: str | None = None) -> Path:
    """Write the report (atomically) to ``path`` and return it; the figures are read from its folder."""
    colours = arm_colours(per_case)
    nav = ['<a href="#comparison">comparison</a>', '<a href="#figures">figures</a>',
           '<a href="#gallery">segmentations</a>', '<a href="#arms">arms</a>', '<a href="#provenance">provenance</a>']
    head = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{_e(study.name)}: study report</title>'
            f"<style>{STYLE}</style></head><body>")
    title = (f"<h1>Study {_e(study.name)}</h1><p class=\"muted\">{_e(provenance.get('report written', ''))} · "
             f"<code>{_e(study.path)}</code></p><nav>{''.join(nav)}</nav>")
    parts = [head, title,
             failed_html(steps),
             f"<p>{_markdown_inline(preface.strip())}</p>" if preface else "",
             '<h2 id="comparison">Comparison</h2>', table_html(study, table, colours),
             f"<p>{_markdown_inline(fairness)}</p>",
             '<h2 id="figures">Figures</h2>', figures_html(path.parent),
             '<h2 id="gallery">Segmentations</h2>', gallery_html(galleries, colours),
             '<h2 id="arms">What each arm loaded and how it trained</h2>', arms_html(facts),
             '<h2 id="provenance">Provenance</h2>', provenance_html(provenance, steps),
             f"<script>{SCRIPT}</script></body></html>"]
    return write_text_atomic("\n".join(p for p in parts if p), path)


def write_report_html(study: Study, table: pd.DataFrame, per_case: pd.DataFrame, fairness: str,
                      preface: str | None = None) -> Path:
    """Gather the galleries, the arms' facts, the provenance and the steps, and write
    ``<study folder>/results/report.html`` (after the figures, which it embeds); returns its path."""
    path = study.folder / "results" / REPORT_FILE
    return write_html(study, path, table=table, per_case=per_case, galleries=galleries(study, per_case),
                      facts=arm_facts(study), provenance=provenance(study), steps=step_rows(study), fairness=fairness,
                      preface=preface)
