"""Shared fixtures: the event loop backend, and access to real third-party programs.

A test that needs a real peer or tracker calls ``require_program`` / ``require_libtorrent``:
locally it is skipped when the program is missing; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.netguard import Guard

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


def require_module(name: str) -> ModuleType:
    """The Python module ``name`` (e.g. a real client library); skip (or fail in CI) without it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"the Python module {name!r}")
        raise


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"use_uvloop": True})


# -- the network guard ---------------------------------------------------------------------
# Tests talk only to loopback: see tests/netguard.py. The guard runs in this process (switched
# on for each test by the fixture below) and in every Python process a test starts (through
# netguard_child/sitecustomize.py on the PYTHONPATH they inherit), which report to a file.

_violations: list[str] = []
_guard = Guard(_violations.append)
sys.addaudithook(_guard.audit)
_child_guard = sys.modules.get("sitecustomize")
if getattr(_child_guard, "TE_NETGUARD", False):  # this very process was started by a test
    _child_guard.disable()  # type: ignore[union-attr]


def _install() -> None:
    from anyio._backends import _asyncio as backend

    import torrent_engine.net.lsd.service as lsd_service
    import torrent_engine.net.utp.socket as utp_socket

    _guard.patch_anyio(backend)
    _guard.patch_utp(utp_socket)
    _guard.patch_lsd(lsd_service)


_install()
_CHILD_DIR = Path(__file__).resolve().parent / "netguard_child"
_fd, _CHILD_LOG = tempfile.mkstemp(prefix="te-netguard-", suffix=".log")
os.close(_fd)
atexit.register(lambda: Path(_CHILD_LOG).unlink(missing_ok=True))
os.environ["TE_NETGUARD_LOG"] = _CHILD_LOG
_NETNS = "/proc/self/ns/net"
os.environ["TE_NETGUARD_NETNS"] = os.readlink(_NETNS) if os.path.exists(_NETNS) else ""
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_CHILD_DIR), os.environ.get("PYTHONPATH", "")]))




@pytest.fixture(autouse=True)
def network_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that tried to reach anything but loopback, whether or not it saw the error."""
    if request.node.get_closest_marker("network_guard_off"):
        yield
        return
    _violations.clear()
    Path(_CHILD_LOG).write_text("")
    _guard.on = True
    try:
        yield
    finally:
        _guard.on = False
    _violations.extend(line for line in Path(_CHILD_LOG).read_text().splitlines() if line)
    if _violations:
        found = list(dict.fromkeys(_violations))
        _violations.clear()
        pytest.fail("non-loopback traffic: " + "; ".join(found), pytrace=False)
