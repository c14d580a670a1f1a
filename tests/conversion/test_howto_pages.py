"""Each converter's how-to page runs as written on its miniature download (HOME = a temporary folder)."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from nnunet_transfer.conversion.registry import converters
from tests.conversion.fixtures import fixture_modules

PAGES = Path(__file__).resolve().parents[2] / "documentation" / "howto" / "convert"


def test_every_converter_has_a_page_and_a_fixture():
    keys = set(converters())
    assert keys == {p.stem for p in PAGES.glob("*.md")}
    assert keys == set(fixture_modules())


def test_every_dataset_option_is_in_its_page():
    from nnunet_transfer.cli import build_parser
    convert = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction").choices["convert"]
    datasets = next(a for a in convert._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for key, parser in datasets.items():
        group = next(g for g in parser._action_groups if g.title == f"{key} options")
        rows = "\n".join(line for line in (PAGES / f"{key}.md").read_text().splitlines() if line.startswith("| `"))
        documented = set(re.findall(r"`(--[a-z][a-z0-9-]*)", rows))
        assert documented == {f for a in group._group_actions for f in a.option_strings}, key


@pytest.mark.parametrize("key", sorted(fixture_modules()))
def test_page_runs_as_written(key, tmp_path):
    fixture_modules()[key].build(tmp_path / "downloads")
    blocks = re.findall(r"```bash\n(.*?)```", (PAGES / f"{key}.md").read_text(), flags=re.S)
    assert blocks, f"{key}.md has no bash commands"
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(HOME=str(tmp_path), nnUNet_def_n_proc="1")
    out = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, f"{key}.md failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert list((tmp_path / "nnUNet_raw").glob("Dataset*/dataset.json")), "the page wrote no dataset"
