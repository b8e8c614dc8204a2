"""One version: pyproject.toml's, torrent_engine.__version__ and the changelog's newest release."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import torrent_engine

REPO = Path(__file__).resolve().parents[2]


def test_the_package_and_the_distribution_have_one_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["version"] == torrent_engine.__version__


def test_the_changelog_has_a_section_for_the_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert releases[0] == "Unreleased"
    assert releases[1] == torrent_engine.__version__, "the newest release is not the package's version"
