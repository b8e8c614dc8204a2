"""Shared fixtures: the event loop backend, and access to real third-party programs.

A test that needs a real peer or tracker calls ``require_program`` / ``require_libtorrent``:
locally it is skipped when the program is missing; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import os
import shutil
from types import ModuleType
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not installed")
    pytest.skip(f"{what} is not installed")


def require_program(name: str) -> str:
    """Path of the executable ``name``; skip (or fail in CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        _missing(f"program {name!r}")
    assert path is not None
    return path


def require_libtorrent() -> ModuleType:
    """The libtorrent Python module; skip (or fail in CI) when it cannot be imported."""
    try:
        import libtorrent
    except ImportError:
        _missing("the libtorrent Python module")
        raise
    return libtorrent


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"use_uvloop": True})
