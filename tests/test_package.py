"""The installed package: every code folder is a package (or the trainer lookup folder, shipped as data)."""
from pathlib import Path

from setuptools import find_packages


def test_every_code_folder_is_an_installed_package():
    """A folder without __init__.py is silently left out of a (non-editable) install."""
    root = Path(__file__).resolve().parents[1]
    packages = set(find_packages(str(root), include=["nnunet_transfer", "nnunet_transfer.*"]))
    folders = {".".join(p.parent.relative_to(root).parts) for p in (root / "nnunet_transfer").rglob("*.py")}
    assert folders - packages == {"nnunet_transfer.nnunet_ext"}  # the trainer lookup folder, shipped as data
