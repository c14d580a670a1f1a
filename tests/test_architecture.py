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
    "environment": {"layout"},
    "hub": {"errors", "io"},
    "nifti": {"names"},
    "transfer": {"errors", "names"},
    "pretext": {"errors"},
    "networks": {"errors"},
    "plans_blocks": {"errors", "names", "transfer", "validation"},
    "trainers": {"errors", "io", "layout", "names", "networks", "plans_blocks", "pretext", "transfer"},
    "planning": {"errors", "hub", "io", "layout", "names", "networks", "plans_blocks", "transfer"},
    "conversion": {"errors", "io", "layout", "names", "nifti", "processes"},
    "evaluation": {"errors", "io", "names", "nifti", "processes"},
    "nnunet_commands": {"environment", "errors", "processes"},
    "pipeline": {"errors", "layout", "names", "nnunet_commands", "planning", "plans_blocks"},
    "study": {"errors", "evaluation", "hub", "io", "layout", "names", "nnunet_commands", "planning", "plans_blocks",
              "processes", "transfer", "validation"},
    "demo": {"errors", "io", "layout", "names", "nnunet_commands", "study"},
    "diagnostics": {"environment", "errors", "io", "layout", "names", "plans_blocks", "trainers", "transfer"},
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


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(parts of ours, top-level third-party modules) that ``path`` imports, anywhere in the file."""
    ours, others = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else \
            [n.name for n in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            top, _, rest = name.partition(".")
            if top == "nnunet_transfer":
                if rest:
                    ours.add(rest.split(".")[0])
            else:
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
