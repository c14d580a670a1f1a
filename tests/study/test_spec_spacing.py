"""The ``spacing`` key of a ``[[sources]]`` checkpoint planned like itself (plan-like-checkpoint --spacing)."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.planning.spacing import SpacingRule, parse_spacing_rule
from nnunet_transfer.study.spec import load_study

STUDY = """
[[sources]]
checkpoint = "openmind.pth"
{plan}
{spacing}
[[targets]]
dataset = 3
"""


def _load(tmp_path, spacing, plan='plan = "like_checkpoint"'):
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(plan=plan, spacing=spacing))
    return load_study(path)


@pytest.mark.parametrize("line, value, rule", [
    ("", None, None), ('spacing = "auto"', "auto", None), ('spacing = "checkpoint"', "checkpoint",
                                                           SpacingRule("checkpoint")),
    ('spacing = "none"', "none", SpacingRule("none")),
    ("spacing = [1, 1, 1.5]", (1.0, 1.0, 1.5), SpacingRule("fixed", (1.0, 1.0, 1.5))),
])
def test_spacing_values_reach_the_source_as_plan_like_checkpoint_takes_them(tmp_path, line, value, rule):
    source = _load(tmp_path, line).sources[0]
    assert source.spacing == value and parse_spacing_rule(source.spacing) == rule


@pytest.mark.parametrize("line", ['spacing = "fixed"', "spacing = [1, 1]", "spacing = [1, -1, 1]"])
def test_bad_spacing_values_name_the_key(tmp_path, line):
    with pytest.raises(NnunetTransferError, match=r"'sources\[0\]\.spacing' is .*checkpoint"):
        _load(tmp_path, line)


def test_spacing_needs_a_source_planned_like_its_checkpoint(tmp_path):
    with pytest.raises(NnunetTransferError, match="sources\\[0\\].spacing.*plan = \"like_checkpoint\""):
        _load(tmp_path, 'spacing = "checkpoint"', plan="")
