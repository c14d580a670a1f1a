"""The layers of documentation/explanation/architecture.md: what each part of the package may import."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nnunet_transfer"

# part -> the parts of ours it may import (documentation/explanation/architecture.md, "Layers")
ALLOWED = {
    "errors": set(),
    "names": set(),
    "validation": set(),
    "processes": set(),
    "io": {"errors"},
    "layout": {"errors", "io"},
    "raw_dataset": {"errors", "io", "layout"},
    "environment": {"layout"},
    "hub": {"errors", "io"},
    "nifti": {"names"},
    "transfer": {"errors", "names"},
    "pretext": {"errors", "names"},
    "networks": {"errors"},
    "plans_blocks": {"errors", "names", "transfer", "validation"},
    "trainers": {"errors", "io", "layout", "names", "networks", "plans_blocks", "pretext", "transfer"},
    "planning": {"errors", "hub", "io", "layout", "names", "networks", "plans_blocks", "transfer"},
    "conversion": {"errors", "io", "layout", "names", "nifti", "processes", "raw_dataset"},
    "evaluation": {"errors", "io", "names", "nifti", "processes"},
    "nnunet_commands": {"environment", "errors", "processes", "warm_workers"},
    "warm_workers": {"errors", "processes"},
    "pipeline": {"errors", "layout", "names", "nnunet_commands", "planning", "plans_blocks"},
    "study": {"errors", "evaluation", "hub", "io", "layout", "names", "nifti", "nnunet_commands", "planning",
              "plans_blocks", "processes", "transfer", "validation"},
    "demo": {"errors", "io", "layout", "names", "nnunet_commands", "raw_dataset", "study"},
    # the trainer is built by nnU-Net's own lookup (nnUNet_extTrainer), as nnUNetv2_train builds it: no trainers import
    "diagnostics": {"environment", "errors", "io", "layout", "names", "plans_blocks", "transfer"},
    "nnunet_ext": {"trainers"},
    "cli": None,  # the command line may call anything
}
# third-party packages a part must not import (transfer / pretext stay pure torch; planning is not a trainer)
FORBIDDEN_LIBRARIES = {"transfer": {"nnunetv2", "SimpleITK", "nibabel"}, "pretext": {"nnunetv2", "SimpleITK"},
                       "names": {"torch", "nnunetv2"}, "plans_blocks": {"torch", "nnunetv2"},
                       "hub": {"torch", "nnunetv2"}}


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    return relative.parts[0]


ROOT = "nnunet_transfer"
ROOT_ATTRIBUTES = {"__version__"}  # defined in the package's own __init__, which imports nothing: any part may


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _imported_modules(source: str, module: str, is_package: bool = False) -> tuple[list[str], list[str]]:
    """(dotted names imported, relative imports as written) by the code of ``module``, in every form:
    ``import a.b``, ``from a.b import c``, ``from nnunet_transfer import part``, relative imports
    (resolved), ``importlib.import_module("a.b")`` / ``__import__`` with a literal name, and
    ``nnunet_transfer.part`` attribute chains; at module level and inside functions alike."""
    names, relative = [], []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [n.name for n in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                relative.append("." * node.level + base)
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import name``: name may be a module of pkg (``from nnunet_transfer import study``)
            names += [base] + [f"{base}.{n.name}" for n in node.names if n.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) \
                and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__"):
            names.append(node.args[0].value)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == ROOT:
            names.append(f"{ROOT}.{node.attr}")
    return names, relative


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(parts of ours, top-level third-party modules) that ``path`` imports, anywhere in the file."""
    names, _ = _imported_modules(path.read_text(), _module_name(path), path.name == "__init__.py")
    ours, others = set(), set()
    for name in names:
        top, _, rest = name.partition(".")
        if top == ROOT:
            part = rest.split(".")[0]
            if part and part not in ROOT_ATTRIBUTES:
                ours.add(part)
        elif top:
            others.add(top)
    return ours, others


FILES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_part_has_a_rule():
    assert {_part(p) for p in FILES} == set(ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    part = _part(path)
    ours, others = _imports(path)
    if ALLOWED[part] is not None:
        assert ours - {part} <= ALLOWED[part], f"{part} may not import {sorted(ours - {part} - ALLOWED[part])}"
    assert not others & FORBIDDEN_LIBRARIES.get(part, set()), f"{part} imports {others & FORBIDDEN_LIBRARIES[part]}"


def test_every_import_form_is_seen():
    source = """
import nnunet_transfer.layout
from nnunet_transfer import study, __version__
from nnunet_transfer.io import write_json_atomic
from . import shared
from ..transfer import driver
import torch.nn

def later():
    from nnunet_transfer.hub import resolve_checkpoint
    importlib.import_module("nnunet_transfer.evaluation.metrics")
    return nnunet_transfer.names.PRETEXTS
"""
    names, relative = _imported_modules(source, "nnunet_transfer.planning.attach")
    parts = {n.split(".")[1] for n in names if n.startswith("nnunet_transfer.")}
    assert parts == {"layout", "study", "__version__", "io", "planning", "transfer", "hub", "evaluation", "names"}
    assert "nnunet_transfer.planning.shared" in names and "nnunet_transfer.transfer.driver" in names
    assert relative == [".", "..transfer"] and "torch.nn" in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_are_absolute(path):
    """nnU-Net imports trainer modules as top-level names: a relative import breaks there (and STYLE.md)."""
    _, relative = _imported_modules(path.read_text(), _module_name(path), path.name == "__init__.py")
    assert not relative, f"relative import(s) {relative}"
