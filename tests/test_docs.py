"""The command reference lists every command and option that ``--help`` has, and no other."""
import re
from pathlib import Path

import pytest

from nnunet_transfer.cli import build_parser
from nnunet_transfer.plans_blocks import PretrainingBlock, TrainingSchedule, TransferBlock

DOCS = Path(__file__).resolve().parents[1] / "documentation"


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_command_and_option_is_documented():
    text = (DOCS / "reference" / "cli.md").read_text()
    for name, sub in _subparsers().items():
        section = text.split(f"## `nnunet_transfer {name}")[1].split("\n## ")[0]
        for action in sub._actions:
            for flag in action.option_strings:
                if flag in ("-h", "--help"):
                    continue
                assert f"`{flag}" in section or f"/{flag}" in section or f", `{flag}`" in section, (name, flag)


def test_documented_options_exist():
    text = (DOCS / "reference" / "cli.md").read_text()
    subs = _subparsers()
    for name, sub in subs.items():
        section = text.split(f"## `nnunet_transfer {name}")[1].split("\n## ")[0]
        flags = {f for a in sub._actions for f in a.option_strings}
        rows = "\n".join(line for line in section.splitlines() if line.startswith("| `"))
        for flag in re.findall(r"`(-{1,2}[a-z][a-z0-9-]*)", rows) + re.findall(r"/(--[a-z][a-z0-9-]*)", rows):
            assert flag in flags, (name, flag)


def test_every_trainer_is_documented():
    from nnunet_transfer.trainers.registry import TRAINERS
    text = (DOCS / "reference" / "trainers.md").read_text()
    missing = [n for n in TRAINERS if f"## `{n}`" not in text and f"| `{n}` |" not in text]
    assert not missing


@pytest.mark.parametrize("model", [TrainingSchedule, TransferBlock, PretrainingBlock])
def test_every_plans_key_is_documented(model):
    text = (DOCS / "reference" / "plans.md").read_text()
    assert [key for key in model.model_fields if f"`{key}`" not in text] == []


def test_every_common_convert_option_is_in_the_convert_reference():
    text = (DOCS / "reference" / "convert.md").read_text()
    rows = "\n".join(line for line in text.split("## Options every converter has")[1].split("\n## ")[0].splitlines()
                     if line.startswith("| `"))
    datasets = next(a for a in _subparsers()["convert"]._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for key, parser in datasets.items():
        own = next(g for g in parser._action_groups if g.title == f"{key} options")._group_actions
        common = {f for a in parser._actions if a not in own for f in a.option_strings} - {"-h", "--help"}
        assert common == set(re.findall(r"`(-{1,2}[a-z][a-z0-9-]*)", rows)), key
    assert set(datasets) == set(re.findall(r"^\| `([a-z][a-z0-9-]*)` \|", text, flags=re.M))
