"""Our self-supervised pretexts against the authors' code, property by property.

Nothing is downloaded: give the clones (a folder, or the file named) you have.
``--models-genesis``: github.com/MrGiovanni/ModelsGenesis, ``pytorch/utils.py`` (= ``keras/utils.py``)
run on the same [0, 1] cubes as ours (smooth random fields, 64 x 64 x 32 as its config, ``--draws``
each, seeded), probabilities read from ``pytorch/config.py`` (not imported: that creates folders);
their box and window draws are recorded by standing in for the module's ``random``.
``--simmim``: github.com/microsoft/SimMIM, ``data/data_simmim.py`` ``MaskGenerator`` with the
defaults of its ``config.py``. ``--rotnet``: github.com/gidariss/FeatureLearningRotNet,
``dataloader.py`` ``rotate_img``. ``--simclr``: github.com/google-research/simclr, ``data_util.py``
and ``run.py``: TensorFlow is not installed here, so their parameters are read from the code
(``ast``) and compared with the ranges ours draws, not run. Context restoration (Chen et al., 2019):
no code published by the authors, nothing to compare.
Imports of a reference file that are not installed get empty stand-ins (listed in the output); the
compared functions never call them. Verdicts: agree (within the stated tolerance), differs,
deliberate (reason given). Saves benchmarks/results/pretext_fidelity.json; exit 1 when one differs.
Run: python benchmarks/pretext_fidelity.py --models-genesis .../ModelsGenesis --simmim .../SimMIM
     --rotnet .../FeatureLearningRotNet --simclr .../simclr
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import math
import random
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import torch
from scipy import ndimage, stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402

from nnunet_transfer.plans_blocks import PretrainingBlock  # noqa: E402
from nnunet_transfer.pretext import MaskedImageModeling, ModelsGenesis, RotationPrediction, SimCLRViews  # noqa: E402
from nnunet_transfer.pretext.contrastive import MAX_ATTEMPTS  # noqa: E402

ROWS: list[dict] = []
KS_ALPHA = 0.001  # two-sample Kolmogorov-Smirnov: "agree" unless p < 0.001


def fmt(value) -> str:
    return (f"{value:.4g}" if isinstance(value, float) else "(" + ", ".join(fmt(v) for v in value) + ")"
            if isinstance(value, (tuple, list)) else str(value))


def row(pretext: str, prop: str, ours, theirs, tolerance: str = "", agree: bool = True, deliberate: str = "") -> None:
    verdict = "deliberate" if deliberate else "agree" if agree else "differs"
    ROWS.append({"pretext": pretext, "property": prop, "ours": fmt(ours), "theirs": fmt(theirs),
                 "tolerance": tolerance, "verdict": verdict, "reason": deliberate})


def same(pretext: str, prop: str, ours, theirs) -> None:
    row(pretext, prop, ours, theirs, "equal", ours == theirs)


def proportion(pretext: str, prop: str, ours: list[bool], theirs: list[bool]) -> None:
    """Two binomial proportions: agree within 4 standard errors of their difference."""
    a, b = float(np.mean(ours)), float(np.mean(theirs))
    pooled = (np.sum(ours) + np.sum(theirs)) / (len(ours) + len(theirs))
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / len(ours) + 1 / len(theirs)))
    row(pretext, prop, a, b, f"|diff| <= 4 SE = {4 * se:.3f}", abs(a - b) <= 4 * se)


def distribution(pretext: str, prop: str, ours, theirs) -> None:
    """Means shown; agree unless a two-sample KS test rejects at KS_ALPHA."""
    ours, theirs = np.concatenate([np.ravel(v) for v in ours]), np.concatenate([np.ravel(v) for v in theirs])
    p = stats.ks_2samp(ours, theirs).pvalue
    row(pretext, prop + " (mean)", float(ours.mean()), float(theirs.mean()), f"KS p = {p:.2g} >= {KS_ALPHA}",
        p >= KS_ALPHA)


def reference_file(path: Path, candidates: list[str]) -> Path:
    found = [path] if path.is_file() else [path / c for c in candidates if (path / c).is_file()]
    if not found:
        raise SystemExit(f"{path}: none of {candidates} there")
    return found[0]


def described(file: Path, stubbed: list[str], draws: int, **extra) -> dict:
    done = subprocess.run(["git", "-C", str(file.parent), "rev-parse", "HEAD"], capture_output=True, text=True)
    commit = done.stdout.strip() if done.returncode == 0 else "unknown (not a git clone)"
    return {"path": str(file), "commit": commit, "stubbed_imports": stubbed, "draws": draws, **extra}


def load_module(path: Path, name: str) -> tuple[object, list[str]]:
    """Import a reference file; modules it imports that are not installed become stand-ins."""
    stubbed = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        for full in names:
            top = full.split(".")[0]
            if top in sys.modules or importlib.util.find_spec(top) is not None:
                continue
            parts = full.split(".")
            for i in range(1, len(parts) + 1):
                sys.modules.setdefault(".".join(parts[:i]), mock.MagicMock())
            stubbed.append(full)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, sorted(set(stubbed))


def evaluate(node: ast.AST, names: dict):
    """A constant expression of the reference code, with ``names`` (no builtins: a call raises)."""
    return eval(compile(ast.Expression(node), "<reference>", "eval"), {"__builtins__": {}}, dict(names))


def constants(path: Path) -> dict:
    """Every ``target = <constant expression>`` of a file (class attributes, ``_C.DATA.X = ...``)."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            try:
                found[ast.unparse(node.targets[0])] = evaluate(node.value, found)
            except Exception:  # noqa: BLE001 - not a constant (a call, an unknown name): not needed
                pass
    return found


class RecordingRandom:
    """Stands in for the ``random`` module inside the authors' file: records ``randint`` draws;
    ``random()`` returns the numbers of ``script`` first, where one is given."""

    def __init__(self, script: list[float] | None = None):
        self.draws, self.script = [], list(script or [])

    def __getattr__(self, name):
        return getattr(random, name)

    def random(self) -> float:
        return self.script.pop(0) if self.script else random.random()

    def randint(self, a: int, b: int) -> int:
        self.draws.append(random.randint(a, b))
        return self.draws[-1]

    def take(self) -> np.ndarray:
        """The draws since the last call, six per window or box (three sides, three starts)."""
        out, self.draws = np.array(self.draws, dtype=int).reshape(-1, 6), []
        return out


def smooth_cubes(n: int, shape=(64, 64, 32), seed: int = 0) -> list[np.ndarray]:
    """[0, 1] cubes (min 0, max 1) of a smoothed random field: neighbouring voxels differ."""
    rng, cubes = np.random.default_rng(seed), []
    for _ in range(n):
        field = ndimage.gaussian_filter(rng.random(shape), 2.0)
        cubes.append((field - field.min()) / (field.max() - field.min()))
    return cubes


def record(out: dict, kind: str, x: np.ndarray, y: np.ndarray, sides=None, starts=None) -> None:
    """The same measurements on both sides: ``x`` before, ``y`` after corruption ``kind``; the
    window / box ``sides`` and ``starts`` (n, 3) drawn."""
    def add(key, value):
        out.setdefault(key, []).append(value)
    if kind == "curve":
        add("curve_mean", float(y.mean())), add("decreasing", bool(np.corrcoef(x.ravel(), y.ravel())[0, 1] < 0))
        return
    add(f"{kind}_count", len(sides))
    add({"shuffle": "displaced", "in": "painted", "out": "kept"}[kind],
        float((y == x).mean()) if kind == "out" else float((y != x).mean()))
    if len(sides):
        add(f"{kind}_sides", sides)
        add(f"{kind}_border", int(min(starts.min(), (np.array(x.shape[-3:]) - starts - sides).min())))


def theirs_models_genesis(ref, cubes: list[np.ndarray], seed: int) -> dict:
    """The authors' four corruptions, each forced on, on every cube."""
    random.seed(seed)
    np.random.seed(seed)
    rec, out = RecordingRandom(), {}
    ref.random = rec
    for cube in cubes:
        x = cube[None]
        draws = (ref.local_pixel_shuffling(x, prob=1.0), rec.take())
        record(out, "shuffle", x, draws[0], draws[1][:, :3], draws[1][:, 3:])
        draws = (ref.image_in_painting(x.copy()), rec.take())
        record(out, "in", x, draws[0], draws[1][:, :3], draws[1][:, 3:])
        draws = (ref.image_out_painting(x.copy()), rec.take())  # they draw the part of each side cut off
        record(out, "out", x, draws[0], np.array(cube.shape) - draws[1][:, :3], draws[1][:, 3:])
        record(out, "curve", x, ref.nonlinear_transformation(x, 1.0))
    ref.random = random
    return out


def ours_models_genesis(cubes: list[np.ndarray], seed: int) -> dict:
    """Ours, each corruption alone (probability 1), on the same cubes."""
    g, out = torch.Generator().manual_seed(seed), {}
    alone = {"shuffle": dict(p_local_shuffle=1), "in": dict(p_painting=1, p_outpainting=0),
             "out": dict(p_painting=1, p_outpainting=1), "curve": dict(p_nonlinear=1)}
    for cube in cubes:
        x = torch.from_numpy(cube).float()[None, None]
        for kind, kwargs in alone.items():
            mg = ModelsGenesis(**{"p_nonlinear": 0, "p_local_shuffle": 0, "p_painting": 0, **kwargs})
            params = mg.sample(x.shape, g)
            y = mg.apply(x, params).input[0].numpy()
            boxes = params["shuffle_boxes" if kind == "shuffle" else "paint_boxes"][0].numpy()
            if kind in ("in", "out"):  # (before the fix: always all boxes, no count)
                boxes = boxes[:int(params.get("paint_count", [len(boxes)])[0])]
            record(out, kind, x[0].numpy(), y, boxes[..., 1] - boxes[..., 0], boxes[..., 0])  # both float32
    return out


def pipelines(ref, config, cubes: list[np.ndarray], seed: int) -> tuple[dict, dict]:
    """Whole corruptions with the default probabilities: which transforms ran, and the outputs."""
    random.seed(seed)
    np.random.seed(seed)
    names = {"nonlinear_transformation": "nonlinear", "local_pixel_shuffling": "shuffle",
             "image_in_painting": "inpaint", "image_out_painting": "outpaint"}
    originals, ran, theirs, ours = {n: getattr(ref, n) for n in names}, {}, {}, {}

    def wrap(name):
        def call(x, *args, **kwargs):
            y = originals[name](x, *args, **kwargs)
            ran[names[name]] = y is not x  # the drawn ones return their input itself when not drawn
            if name == "nonlinear_transformation" and ran["nonlinear"]:
                ran["decreasing"] = np.corrcoef(x.ravel(), y.ravel())[0, 1] < 0
            return y
        return call

    def add(out, flags, values):
        for key in ("nonlinear", "shuffle", "paint"):
            out.setdefault(key, []).append(flags[key])
        for key, given in (("decreasing", "nonlinear"), ("outpaint", "paint")):
            if flags[given]:
                out.setdefault(key, []).append(flags[key])
        out.setdefault("values", []).append(values.ravel().astype(np.float32))

    for name in names:
        setattr(ref, name, wrap(name))
    for cube in cubes:
        ran.clear()
        x, _ = next(ref.generate_pair(cube[None, None], 1, config))
        add(theirs, {**ran, "paint": "inpaint" in ran or "outpaint" in ran, "outpaint": "outpaint" in ran}, x)
    for name, function in originals.items():
        setattr(ref, name, function)
    g, mg = torch.Generator().manual_seed(seed), ModelsGenesis()
    for cube in cubes:
        x = torch.from_numpy(cube).float()[None, None]
        params = mg.sample(x.shape, g)
        add(ours, {k: bool(params[k][0]) for k in ("nonlinear", "decreasing", "shuffle", "paint", "outpaint")},
            mg.apply(x, params).input.numpy())
    return ours, theirs


def curve_gap(ref, n: int = 200, seed: int = 0) -> tuple[float, float]:
    """Our intensity curve against their ``nonlinear_transformation`` for the same control points
    (their ``random()`` scripted: applied, x1, y1, x2, y2, branch): mean and largest gap."""
    rng, grid = np.random.default_rng(seed), np.linspace(0, 1, 20001)
    mg = ModelsGenesis(p_nonlinear=1, p_local_shuffle=0, p_painting=0)
    x = torch.from_numpy(grid)[None, None, None]
    gaps = []
    for i in range(n):
        inner, decreasing = rng.random((2, 2)), bool(i % 2)
        ref.random = RecordingRandom([0.0, *inner.ravel().tolist(), 0.0 if decreasing else 0.99])
        theirs = ref.nonlinear_transformation(grid, 1.0)
        params = mg.sample(x.shape, torch.Generator().manual_seed(i))
        params["control"][0, 1:3], params["decreasing"][0] = torch.from_numpy(inner), decreasing
        gaps.append(np.abs(mg.apply(x, params).input.numpy().ravel() - theirs))
    ref.random = random
    return float(np.mean(gaps)), float(np.max(gaps))


def compare_models_genesis(path: Path, draws: int) -> tuple[dict, object, SimpleNamespace]:
    utils_path = reference_file(path, ["pytorch/utils.py", "keras/utils.py", "utils.py"])
    ref, stubbed = load_module(utils_path, "models_genesis_reference")
    rates = constants(reference_file(utils_path.parent, ["config.py"]))
    config = SimpleNamespace(save_samples=None, **{k: rates[k] for k in (
        "nonlinear_rate", "paint_rate", "outpaint_rate", "inpaint_rate", "local_rate", "flip_rate")})
    mg, name = ModelsGenesis(), "models_genesis"
    for ours, theirs in (("p_nonlinear", "nonlinear_rate"), ("p_local_shuffle", "local_rate"),
                         ("p_painting", "paint_rate"), ("p_outpainting", "outpaint_rate")):
        same(name, f"default {ours} / {theirs}", getattr(mg, ours), rates[theirs])
    cubes = smooth_cubes(draws)
    ours, theirs = pipelines(ref, config, cubes, seed=1)
    for k, label in (("nonlinear", "P(curve)"), ("decreasing", "P(decreasing | curve)"), ("shuffle", "P(shuffle)"),
                     ("paint", "P(painting)"), ("outpaint", "P(out-painting | painting)")):
        proportion(name, label, ours[k], theirs[k])
    distribution(name, "output, per image", [v.mean() for v in ours["values"]], [v.mean() for v in theirs["values"]])
    distribution(name, "output std, per image", [v.std() for v in ours["values"]], [v.std() for v in theirs["values"]])
    a, b = np.concatenate(ours["values"]), np.concatenate(theirs["values"])
    row(name, "output range", (float(a.min()), float(a.max())), (float(b.min()), float(b.max())), "both in [0, 1]",
        a.min() >= 0 and b.min() >= 0 and a.max() <= 1 and b.max() <= 1)
    half = len(theirs["values"]) // 2  # the noise floor: their own first half against their second half
    hist = [np.histogram(np.concatenate(v), bins=50, range=(0, 1))[0] for v in (
        ours["values"], theirs["values"], theirs["values"][:half], theirs["values"][half:])]
    hist = [h / h.sum() for h in hist]
    tv, floor = 0.5 * float(np.abs(hist[0] - hist[1]).sum()), 0.5 * float(np.abs(hist[2] - hist[3]).sum())
    row(name, "output histogram, total variation distance (50 bins)", tv, 0.0,
        f"<= 2 x theirs half vs half = {2 * floor:.3f}", tv <= 2 * floor)
    mean_gap, max_gap = curve_gap(ref)
    row(name, "curve for the same control points, |ours - theirs| mean / max", (mean_gap, max_gap), (0.0, 0.0),
        "mean <= 1e-5, max <= 0.01", mean_gap <= 1e-5 and max_gap <= 0.01)
    ours, theirs = ours_models_genesis(cubes, seed=2), theirs_models_genesis(ref, cubes, seed=2)
    distribution(name, "curve: mean output", ours["curve_mean"], theirs["curve_mean"])
    proportion(name, "curve: P(decreasing)", ours["decreasing"], theirs["decreasing"])
    same(name, "shuffle: windows per image", sorted(set(ours["shuffle_count"])), sorted(set(theirs["shuffle_count"])))
    for kind in ("shuffle", "in", "out"):
        a, b = np.concatenate(ours[f"{kind}_sides"]), np.concatenate(theirs[f"{kind}_sides"])
        same(name, f"{kind}: side range per axis", [(int(lo), int(hi)) for lo, hi in zip(a.min(0), a.max(0))],
             [(int(lo), int(hi)) for lo, hi in zip(b.min(0), b.max(0))])
        for axis in range(a.shape[1]):
            distribution(name, f"{kind}: side, axis {axis}", a[:, axis], b[:, axis])
    distribution(name, "shuffle: displaced fraction", ours["displaced"], theirs["displaced"])
    for kind, what in (("in", "painted"), ("out", "kept")):
        distribution(name, f"{kind}: boxes per image", ours[f"{kind}_count"], theirs[f"{kind}_count"])
        same(name, f"{kind}: boxes per image, range", (min(ours[f"{kind}_count"]), max(ours[f"{kind}_count"])),
             (min(theirs[f"{kind}_count"]), max(theirs[f"{kind}_count"])))
        same(name, f"{kind}: least distance of a box from the border", min(ours[f"{kind}_border"]),
             min(theirs[f"{kind}_border"]))
        distribution(name, f"{kind}: {what} fraction", ours[what], theirs[what])
    row(name, "order", "shuffle, curve, painting", "flip, shuffle, curve, painting", "the flip apart")
    for prop, ours, theirs, reason in (
            ("flip", "none", f"p = {rates['flip_rate']} per step, up to 3 axes, input and target",
             "an augmentation, not a corruption: nnU-Net's mirroring flips the patch before the pretext"),
            ("input", "any z-scored patch, mapped to [0, 1] per sample and back", "[0, 1] CT cubes",
             "nnU-Net normalises (z-score); the curve, the noise and the ranges are those of [0, 1]"),
            ("channels, dimensions", "any; windows shared by the channels; 2D and 3D", "one channel, 3D",
             "nnU-Net datasets have several channels and 2D configurations"),
            ("short sides", "ranges clamped to 1 .. side, margin shrunk", "raises below ~10 voxels",
             "small 2D / anisotropic nnU-Net patches must not fail"),
            ("random numbers", "one torch.Generator per sample", "Python random + numpy",
             "seeded streams per worker and epoch; distributions compared, not values")):
        row(name, prop, ours, theirs, deliberate=reason)
    return described(utils_path, stubbed, draws), ref, config


def compare_simmim(path: Path, draws: int) -> dict:
    file = reference_file(path, ["data/data_simmim.py", "data_simmim.py"])
    ref, stubbed = load_module(file, "simmim_reference")
    cfg = constants(reference_file(file.parent.parent, ["config.py"]))
    ratio, patch = cfg["_C.DATA.MASK_RATIO"], cfg["_C.DATA.MASK_PATCH_SIZE"]
    name = "masked_image_modeling"
    for size, model_patch in ((192, cfg["_C.MODEL.SWIN.PATCH_SIZE"]),  # their Swin pre-training configs: 192 px
                              (cfg["_C.DATA.IMG_SIZE"], cfg["_C.MODEL.VIT.PATCH_SIZE"])):
        theirs = ref.MaskGenerator(size, patch, model_patch, ratio)
        grid = size // patch
        ours = MaskedImageModeling(mask_ratio=ratio, block_size=patch)
        np.random.seed(0)
        a = ours.sample(torch.Size([draws, 1, size, size]), torch.Generator().manual_seed(0))["blocks"]
        a = a.reshape(draws, -1).float().numpy()
        b = np.stack([theirs()[::patch // model_patch, ::patch // model_patch].ravel() for _ in range(draws)])
        same(name, f"{size} px, {patch} px patches, ratio {ratio}: masked patches", sorted(set(a.sum(1).astype(int))),
             sorted(set(b.sum(1).astype(int))))
        se = math.sqrt(ratio * (1 - ratio) / draws)
        worst = [float(np.abs(m.mean(0) - m.sum(1).mean() / grid ** 2).max()) for m in (a, b)]
        row(name, f"{size} px: largest deviation of a patch's masking frequency", worst[0], worst[1],
            f"both <= 5 SE = {5 * se:.3f}", max(worst) <= 5 * se)
    row(name, "default mask patch", "block_size 8 voxels", f"{patch} px of a {cfg['_C.DATA.IMG_SIZE']} px image",
        deliberate="nnU-Net patches are 48-160 voxels a side; 32 leaves a 2 x 2 grid on a small 2D patch "
                   "(set block_size=32 for theirs)")
    row(name, "masked input", "0 (the mean of a z-scored image)", "learned mask token after the patch embedding",
        deliberate="a CNN has no token embedding to replace")
    row(name, "image side not a multiple of the patch", "last block cut", "assertion",
        deliberate="nnU-Net patch sizes are not multiples of the block size")
    return described(file, stubbed, draws)


def compare_rotnet(path: Path, draws: int) -> dict:
    file = reference_file(path, ["dataloader.py"])
    ref, stubbed = load_module(file, "rotnet_reference")
    image = np.random.default_rng(0).random((32, 32, 3))
    x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    for k in range(4):
        ours = RotationPrediction().apply(x, {"k": torch.tensor([k])}).input[0].numpy()
        same("rotation", f"label {k}: the image rotated as theirs by {90 * k} degrees", True,
             bool(np.array_equal(ours, np.ascontiguousarray(ref.rotate_img(image, 90 * k)).transpose(2, 0, 1))))
    labels = RotationPrediction().sample(torch.Size([draws, 1, 8, 8]), torch.Generator().manual_seed(0))["k"]
    freq, se = np.bincount(labels.numpy(), minlength=4) / draws, math.sqrt(3 / 16 / draws)
    row("rotation", "label frequencies", tuple(float(f) for f in freq), (0.25,) * 4, f"each within 4 SE = {4 * se:.3f}",
        bool(np.abs(freq - 0.25).max() <= 4 * se))
    row("rotation", "rotations per image", "one, drawn uniformly", "all four in the same batch",
        deliberate="nnU-Net's transform makes one sample of one; the labels are uniform all the same")
    row("rotation", "non-square plane", "central square", "square images only",
        deliberate="nnU-Net patches need not be square in-plane")
    return described(file, stubbed, draws)


def compare_simclr(path: Path, draws: int) -> dict:
    file, run = reference_file(path, ["data_util.py"]), reference_file(path, ["run.py"])
    tree = ast.parse(file.read_text())

    def calls(function: str, callee: str) -> list[ast.Call]:
        return [c for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == function
                for c in ast.walk(f) if isinstance(c, ast.Call) and ast.unparse(c.func).split(".")[-1] == callee]

    flags = {c.args[0].value: evaluate(c.args[1], {}) for c in ast.walk(ast.parse(run.read_text()))
             if isinstance(c, ast.Call) and ast.unparse(c.func).endswith("DEFINE_float")}
    crop = {k.arg: evaluate(k.value, {"aspect_ratio": 1.0})  # the aspect of the output: square
            for k in calls("crop_and_resize", "distorted_bounding_box_crop")[0].keywords}
    jitter = {t.targets[0].id: evaluate(t.value, {"strength": flags["color_jitter_strength"]})
              for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "color_jitter"
              for t in f.body if isinstance(t, ast.Assign)}
    applies = [evaluate(k.value, {}) for c in calls("_transform", "random_apply") for k in c.keywords if k.arg == "p"]
    size = SimCLRViews().sample(torch.Size([draws, 1, 224, 224]), torch.Generator().manual_seed(0))["crop_size"]
    size = size.double()
    area, aspect = (size / 224).prod(1), size[:, 1] / size[:, 0]
    name, read = "simclr", " (read from their code)"
    low = max(crop["area_range"][0], crop["min_object_covered"])
    high, (a_low, a_high) = crop["area_range"][1], crop["aspect_ratio_range"]
    row(name, "crop area of the image, range" + read, (float(area.min()), float(area.max())), (low, high),
        "within theirs, lower end within 0.02", bool(low <= area.min() <= low + 0.02 and area.max() <= high))
    row(name, "crop aspect ratio, range" + read, (float(aspect.min()), float(aspect.max())), (a_low, a_high),
        "within theirs +- rounding (0.02)", bool(aspect.min() >= a_low - 0.02 and aspect.max() <= a_high + 0.02))
    same(name, "crop attempts" + read, MAX_ATTEMPTS, crop["max_attempts"])
    same(name, "NT-Xent temperature (plans default)" + read, PretrainingBlock().temperature, flags["temperature"])
    row(name, "colour distortion" + read, "gain 0.8-1.2, bias +-0.1, gamma 0.7-1.3, noise std 0.1, every view",
        f"p = {applies[0]}: brightness x {1 - jitter['brightness']:.1f}-{1 + jitter['brightness']:.1f}, contrast, "
        f"saturation, hue {jitter['hue']}, random order, clipped to [0, 1]; grey p = {applies[1]}; blur",
        deliberate="one operation for every channel (MRI has no colour); z-scored input is not in [0, 1]")
    row(name, "flip" + read, "each axis, p = 0.5", "left-right, p = 0.5",
        deliberate="a 3D patch has no canonical left-right axis; nnU-Net mirrors along every axis too")
    row(name, "resize", "bilinear / trilinear", "bicubic", deliberate="torch has no 3D bicubic; no overshoot")
    return described(file, [], draws, note="TensorFlow is not installed: parameters read from the code, not run")


def per_sample_seconds(ref, config, repeats: int) -> dict[str, float]:
    """Mean seconds per 1 x 128^3 sample on one thread, as in nnU-Net's augmentation workers; the
    cases interleaved so that load on the machine hits them alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cube = smooth_cubes(1, (128, 128, 128))[0]
    x = torch.from_numpy(cube).float()[None, None]
    cases = {"ours, default probabilities": lambda g: ModelsGenesis()(x, g),
             "ours, local shuffle alone": lambda g: ModelsGenesis(p_nonlinear=0, p_painting=0, p_local_shuffle=1)(x, g)}
    if ref is not None:
        cases["theirs, generate_pair"] = lambda g: next(ref.generate_pair(cube[None, None], 1, config))
        cases["theirs, local_pixel_shuffling alone"] = lambda g: ref.local_pixel_shuffling(cube[None], prob=1.0)
    times = {k: [] for k in cases}
    random.seed(0)
    np.random.seed(0)
    for r in range(repeats):
        for label, case in cases.items():
            start = time.perf_counter()
            case(torch.Generator().manual_seed(r))
            times[label].append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return {label: round(float(np.mean(t)), 3) for label, t in times.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option, what in (("--models-genesis", "MrGiovanni/ModelsGenesis"), ("--simmim", "microsoft/SimMIM"),
                         ("--rotnet", "gidariss/FeatureLearningRotNet"), ("--simclr", "google-research/simclr")):
        parser.add_argument(option, type=Path, help=f"a clone of github.com/{what} (or the file compared)")
    parser.add_argument("--draws", type=int, default=500, help="draws per property and side (default 500)")
    parser.add_argument("--timing-repeats", type=int, default=10, help="128^3 samples timed per case; 0: none")
    args = parser.parse_args(argv)
    references, ref, config = {}, None, None
    if args.models_genesis:
        references["models_genesis"], ref, config = compare_models_genesis(args.models_genesis, args.draws)
    for option, compare in (("simmim", compare_simmim), ("rotnet", compare_rotnet), ("simclr", compare_simclr)):
        if getattr(args, option):
            references[option] = compare(getattr(args, option), max(args.draws, 2000))
    timing = per_sample_seconds(ref, config, args.timing_repeats) if args.timing_repeats else {}
    failed = [r for r in ROWS if r["verdict"] == "differs"]
    save_results("pretext_fidelity", {"references": references, "rows": ROWS, "differs": len(failed),
                                      "seconds_per_sample_1x128cube_one_thread": timing})
    print("\n| pretext | property | ours | theirs | tolerance | verdict |\n|---|---|---|---|---|---|")
    for r in ROWS:
        print(f"| {r['pretext']} | {r['property']} | {r['ours']} | {r['theirs']} | "
              f"{r['tolerance'] or r['reason']} | {r['verdict']} |")
    for label, seconds in timing.items():
        print(f"{label}: {seconds} s per 1 x 128^3 sample (one thread)")
    if not references:
        print("nothing to compare against: give --models-genesis, --simmim, --rotnet and / or --simclr")
    if failed:
        print(f"{len(failed)} properties differ")
        raise SystemExit(1)
    return {"references": references, "rows": ROWS, "timing": timing}


if __name__ == "__main__":
    main()
