"""The how-to guides run as written: their bash blocks, in order, in a fresh folder."""
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
HOWTO = Path(__file__).resolve().parents[2] / "documentation" / "howto"


def bash_blocks(path: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)


def _downloads(script: str, home: Path) -> None:
    """Miniature copies of the public downloads a guide converts, under ``home/downloads``."""
    from tests.conversion.fixtures import fixture_modules
    for key in dict.fromkeys(re.findall(r"nnunet_transfer convert ([a-z0-9-]+) ", script)):
        fixture_modules()[key].build(home / "downloads")


@pytest.mark.parametrize("guide", sorted(p.name for p in HOWTO.glob("*.md")))
def test_guide_runs_as_written(guide, tmp_path):
    blocks = bash_blocks(HOWTO / guide)
    assert blocks, f"{guide} has no bash commands"
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")  # CPU settings, as for every test here
    script = "set -euo pipefail\n" + "\n".join(blocks)
    if "~/downloads" in script:  # a guide on public datasets runs on miniature copies of them
        _downloads(script, tmp_path)
        env["HOME"] = str(tmp_path)
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{guide} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
