"""Arrows point down: the sans-I/O cores import no shell, socket, clock, event loop or session
layer, and importing one core loads nothing more than it needs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "torrent_engine"

# The sans-I/O cores (DESIGN.md section 1): bytes and values in, bytes and values out.
CORES = [
    "bencode", "metainfo", "magnet", "merkle", "bitfield", "layout", "picker", "choker", "version", "compact",
    "errors", "peer/messages", "peer/wire", "peer/mse", "peer/extensions", "peer/metadata_fetch",
    "peer/buffer", "peer/peer_id", "peer/layer_fetch",
    "tracker/messages", "dht/krpc", "dht/routing", "dht/bep42", "dht/bep44", "dht/tokens",
    "portmap/natpmp", "portmap/upnp", "bep40", "stall", "lsd/codec", "lsd/schedule", "webseed/mapping",
    "webseed/response", "session/smart_ban",
]
# What a core may not import: I/O, clocks, event loops, threads, and the layers above it.
FORBIDDEN = {
    "socket", "ssl", "select", "selectors", "asyncio", "anyio", "trio", "uvloop", "threading",
    "subprocess", "time", "datetime", "tempfile", "shutil", "urllib.request", "http",
    "torrent_engine.session", "torrent_engine.session_state", "torrent_engine.manager",
    "torrent_engine.shared", "torrent_engine.peer_io", "torrent_engine.storage", "torrent_engine.verify",
    "torrent_engine.peer.connection", "torrent_engine.tracker.http", "torrent_engine.tracker.udp",
    "torrent_engine.tracker.coordinator", "torrent_engine.tracker.client", "torrent_engine.dht.node",
    "torrent_engine.dht.transport", "torrent_engine.dht.server", "torrent_engine.dht.lookup",
    "torrent_engine.events", "torrent_engine.runtime", "torrent_engine.cli", "torrent_engine.api",
    "torrent_engine.jobs", "torrent_engine.portmap.service",
}


def _imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    module = "torrent_engine." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _forbidden(name: str) -> str | None:
    for banned in FORBIDDEN:
        if name == banned or name.startswith(banned + "."):
            return banned
    return None


@pytest.mark.parametrize("core", CORES)
def test_a_core_imports_no_shell_clock_or_upper_layer(core: str) -> None:
    path = PACKAGE / f"{core}.py"
    bad = sorted(name for name in _imports(path) if _forbidden(name))
    assert bad == [], f"{core} imports {bad}"


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    assert _forbidden("anyio.abc") == "anyio" and _forbidden("torrent_engine.session.core")
    assert _forbidden("timeit") is None and _forbidden("torrent_engine.sessionx") is None


@pytest.mark.parametrize("module", ["torrent_engine.bencode", "torrent_engine.metainfo",
                                    "torrent_engine.magnet", "torrent_engine.peer.wire",
                                    "torrent_engine.dht.krpc", "torrent_engine.tracker.messages",
                                    "torrent_engine.picker"])
def test_importing_a_core_loads_no_event_loop_and_no_session(module: str) -> None:
    code = (f"import sys, {module}\n"
            "bad = [m for m in sys.modules if m in ('anyio', 'asyncio', 'socket') or "
            "m.startswith(('torrent_engine.session', 'torrent_engine.manager', 'torrent_engine.shared'))]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent, timeout=60)
    assert out.stdout.strip() == "[]", f"import {module} loaded {out.stdout.strip()}"


def test_the_package_root_still_offers_its_public_names() -> None:
    import torrent_engine as te

    for name in te.__all__:
        assert getattr(te, name) is not None
    from torrent_engine import Session, TorrentManager

    assert Session.__name__ == "Session" and TorrentManager.__name__ == "TorrentManager"
    with pytest.raises(AttributeError):
        te.NoSuchThing  # noqa: B018
