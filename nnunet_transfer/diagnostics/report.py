"""diagnostics.json / .md / .png (and the TransferReport) from the measured numbers, written atomically."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nnunet_transfer.diagnostics.findings import ratio, tail_mean
from nnunet_transfer.io import atomic_path, write_json_atomic, write_text_atomic

FILES = {"json": "diagnostics.json", "markdown": "diagnostics.md", "figure": "diagnostics.png",
         "transfer_report": "transfer_report.json"}


def finite(data: Any) -> Any:
    """``data`` with every NaN / infinite float replaced by None (strict JSON has neither)."""
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def _n(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _activation_rows(stages: list[dict]) -> list[list[str]]:
    rows = []
    for s in stages:
        t, f, w = s["transferred"], s["fresh"], s.get("weights")
        rows.append([s["stage"], f"{w['transferred']}/{w['entries']}" if w else "-",
                     "x".join(map(str, t["shape"][1:])), _n(t["mean"]), _n(f["mean"]), _n(t["sd"]), _n(f["sd"]),
                     _n(s["sd_ratio"], 2), _pct(t["nonpositive"]), _pct(f["nonpositive"])])
    return rows


def _head_section(head: dict, loss: dict) -> list[str]:
    t, f = head["transferred"], head["fresh"]
    reference = t.get("reference_fraction") or [None] * len(t["classes"])
    rows = [[f"{c} {name}", _n(t["mean_probability"][c]), _n(f["mean_probability"][c]),
             _pct(t["predicted_fraction"][c]), _pct(f["predicted_fraction"][c]), _pct(reference[c])]
            for c, name in enumerate(t["classes"])]
    return ([f"Logits: mean {_n(t['logit_mean'])} / SD {_n(t['logit_sd'])} transferred, mean {_n(f['logit_mean'])} / "
             f"SD {_n(f['logit_sd'])} fresh. Loss of this batch (the trainer's loss): {_n(loss['transferred'], 4)} "
             f"transferred, {_n(loss['fresh'], 4)} fresh.", ""]
            + _table(["class", "mean probability (transferred)", "mean probability (fresh)",
                      "predicted voxels (transferred)", "predicted voxels (fresh)", "reference voxels"], rows))


def _gradient_section(g: dict) -> list[str]:
    rows = [[group, _n(pair["transferred"]), _n(pair["fresh"]), _n(ratio(pair["transferred"], pair["fresh"]), 2)]
            for group, pair in g["mean"].items()]
    rows += [[f"**{part}**", _n(pair["transferred"]), _n(pair["fresh"]),
              _n(ratio(pair["transferred"], pair["fresh"]), 2)] for part, pair in g["mean_by_part"].items()]
    k = max(1, g["iterations"] // 4)
    losses = [[arm, _n(v[0], 4), _n(v[-1], 4), _n(tail_mean(v), 4)] for arm, v in g["loss"].items()]
    return (_table(["part", "mean norm (transferred)", "mean norm (fresh)", "ratio"], rows)
            + ["", "Training loss per iteration (the trainer's `train_step`):", ""]
            + _table(["network", "first", "last", f"mean of the last {k}"], losses))


def _curve_section(curves: dict) -> list[str]:
    rows = []
    for key, title in (("finetune", "fine-tuning"), ("baseline", "baseline")):
        c = curves.get(key)
        if not c or not c["epochs"]:
            rows.append([title, f"no checkpoint in `{curves.get(key + '_folder')}`", "-", "-", "-", "-"])
            continue
        rows.append([title, f"`{Path(c['checkpoint']).name}`" + ("" if c["finished"] else " (in progress)"),
                     str(c["epochs"]), f"{_n(c['train_losses'][0])} -> {_n(c['train_losses'][-1])}",
                     f"{_n(c['val_losses'][0])} -> {_n(c['val_losses'][-1])}",
                     f"{_n(c['mean_fg_dice'][-1])} / {_n(c['ema_fg_dice'][-1])}"])
    return _table(["run", "checkpoint", "epochs", "training loss first -> last", "validation loss first -> last",
                   "pseudo-Dice last / moving average"], rows)


def markdown(data: dict) -> str:
    """diagnostics.md: the run, the findings and the tables."""
    first, g = data["first_batch"], data["gradients"]
    counts = (data["transfer"].get("counts_by_part") or {})
    loaded = "; ".join(f"{part}: " + ", ".join(f"{n} {s}" for s, n in c.items() if n) for part, c in counts.items())
    strategy = ", ".join(f"{k}={v}" for k, v in (data.get("strategy") or {}).items()) or "-"
    lines = [f"# Fine-tuning diagnostics: {data['dataset']}, {data['configuration']}, fold {data['fold']}", "",
             f"Trainer `{data['trainer']}` on plans `{data['plans']}`, strategy {strategy}; checkpoint "
             f"`{data['checkpoint']}` (load={data['transfer'].get('load')}: {loaded}). Device {data['device']}, "
             f"seed {data['seed']}, batch {' x '.join(map(str, first['batch_shape']))}. \"Fresh\" is the same network "
             f"as initialised before the transfer; both see the same batches.", "", "## Findings", ""]
    lines += [f"- {f}" for f in data["findings"]] or ["No threshold clearly crossed (see the tables)."]
    lines += ["", "## Activations at the first training batch", "",
              "Per stage output (after its nonlinearity); decoder stage 0 is next to the bottleneck. \"weights\": "
              "entries of the stage the TransferReport loaded or adapted.", ""]
    lines += _table(["stage", "weights", "output", "mean (transferred)", "mean (fresh)", "SD (transferred)",
                     "SD (fresh)", "SD ratio", "<= 0 (transferred)", "<= 0 (fresh)"], _activation_rows(first["stages"]))
    lines += ["", "## Head at the first training batch", ""] + _head_section(first["head"], first["loss"])
    lines += ["", f"## Gradient norms over the first {g['iterations']} iteration(s)", "",
              f"Mean L2 norm per part before nnU-Net's gradient clipping; one epoch has {g['iterations_per_epoch']} "
              f"iterations.", ""] + _gradient_section(g)
    lines += ["", "## Curves per epoch (nnU-Net's logging in the checkpoints)", ""] + _curve_section(data["curves"])
    return "\n".join(lines) + "\n"


def _series(values: list) -> list[float]:
    # None (a diverged number) is a gap in a line
    return [float("nan") if v is None else v for v in values]


def figure(data: dict, path: Path) -> None:
    """diagnostics.png: activation SD per stage, gradient norm per part, loss per iteration, loss and
    pseudo-Dice per epoch, the head's predicted classes."""
    # the Agg canvas on a bare Figure: no pyplot, so no global backend or figure state is touched
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(18, 10), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 3)
    styles = {"transferred": dict(color="tab:red"), "fresh": dict(color="tab:blue", ls="--")}
    stages = data["first_batch"]["stages"]
    for arm, style in styles.items():
        ax[0, 0].plot([s["stage"] for s in stages], _series([s[arm]["sd"] for s in stages]), marker="o", label=arm,
                      **style)
    ax[0, 0].set(title="activation SD per stage, first batch", yscale="log")
    ax[0, 0].tick_params(axis="x", rotation=60)
    g = data["gradients"]
    colours = ["tab:purple", "tab:green", "tab:orange", "tab:gray"]
    for (part, colour) in zip(g["mean_by_part"], colours):
        for arm, style in styles.items():
            values = [v if v else float("nan") for v in g["norms_by_part"][arm][part]]
            ax[0, 1].plot(range(1, len(values) + 1), values, label=f"{part} ({arm})",
                          **{**style, "color": colour})
    ax[0, 1].set(title="gradient norm per part", xlabel="iteration", yscale="log")
    for a in (ax[0, 1], ax[0, 2], ax[1, 0], ax[1, 1]):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    for arm, style in styles.items():
        ax[0, 2].plot(range(1, len(g["loss"][arm]) + 1), _series(g["loss"][arm]), label=arm, **style)
    ax[0, 2].set(title="training loss per iteration", xlabel="iteration")
    runs = {"finetune": dict(color="tab:red"), "baseline": dict(color="tab:blue")}
    for key, style in runs.items():
        c = data["curves"].get(key)
        if c and c["epochs"]:
            ax[1, 0].plot(_series(c["train_losses"]), label=f"{key} train", **style)
            ax[1, 0].plot(_series(c["val_losses"]), label=f"{key} validation", ls=":", **style)
            ax[1, 1].plot(_series(c["mean_fg_dice"]), label=f"{key} pseudo-Dice", ls=":", **style)
            ax[1, 1].plot(_series(c["ema_fg_dice"]), label=f"{key} moving average", **style)
    ax[1, 0].set(title="loss per epoch", xlabel="epoch")
    ax[1, 1].set(title="pseudo-Dice per epoch", xlabel="epoch")
    head = data["first_batch"]["head"]
    x = range(len(head["transferred"]["classes"]))
    ax[1, 2].bar([i - 0.27 for i in x], _series(head["transferred"]["predicted_fraction"]), 0.27,
                 label="transferred", color="tab:red")
    ax[1, 2].bar(list(x), _series(head["fresh"]["predicted_fraction"]), 0.27, label="fresh", color="tab:blue")
    if head["transferred"].get("reference_fraction"):
        ax[1, 2].bar([i + 0.27 for i in x], _series(head["transferred"]["reference_fraction"]), 0.27,
                     label="reference", color="tab:gray")
    ax[1, 2].set(title="voxels per predicted class, first batch", xticks=list(x),
                 xticklabels=head["transferred"]["classes"], ylim=(0, 1))
    for a in ax.flat:
        if a.has_data():
            a.legend(fontsize="small")
        else:
            a.text(0.5, 0.5, "no checkpoint yet", ha="center", va="center", transform=a.transAxes)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)


def write_outputs(data: dict, transfer_report: dict, folder: Path) -> dict[str, Path]:
    """Write the four files into ``folder`` (each atomically); returns their paths by kind."""
    data = finite(data)
    paths = {kind: folder / name for kind, name in FILES.items()}
    write_json_atomic(data, paths["json"])
    write_json_atomic(transfer_report, paths["transfer_report"])
    write_text_atomic(markdown(data), paths["markdown"])
    figure(data, paths["figure"])
    return paths
