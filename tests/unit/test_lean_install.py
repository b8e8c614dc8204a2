"""``pip install torrent-engine`` installs the library alone: what only the command line and the
daemon use (rich, Starlette, uvicorn, the Prometheus client) is an extra, so the library's
imports must not need it, and the command line names the extra when it is missing."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTRAS_ONLY = ("rich", "starlette", "uvicorn", "prometheus_client")

# The extras' modules made unimportable, as on a machine that installed the library alone.
_WITHOUT_EXTRAS = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in EXTRAS_ONLY)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _WITHOUT_EXTRAS + code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_the_library_imports_without_the_extras() -> None:
    run = _run("import torrent_engine as te\n"
               "for name in te.__all__: getattr(te, name)\n"
               "import torrent_engine.storage, torrent_engine.jobs\n"
               "print('ok')\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "ok\n"


def test_the_extras_hold_what_only_the_command_line_and_daemon_use() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = " ".join(project["dependencies"])
    for name in ("rich", "starlette", "uvicorn", "prometheus-client"):
        assert name not in required
    extras = project["optional-dependencies"]
    assert any(d.startswith("rich") for d in extras["cli"])
    assert {"starlette", "uvicorn", "prometheus-client"} <= {d.split(">")[0] for d in extras["daemon"]}
    assert extras["all"] == ["torrent-engine[cli,daemon]"]


def test_the_command_line_without_its_extra_says_which_to_install() -> None:
    run = _run("from torrent_engine.cli import main\nsys.exit(main(['daemon', '--help']))\n")
    assert run.returncode == 1, run.stdout
    assert "pip install 'torrent-engine[daemon]'" in run.stderr and "Traceback" not in run.stderr


def test_the_least_anyio_declared_hands_peers_sockets_on_and_wraps_the_engines_own() -> None:
    """A peer's TCP connection is handed from its anyio stream to the engine's protocol on a
    ``dup`` of its socket, and the stream closed: anyio 4.16's ``aclose`` aborts the socket, where
    4.15 and earlier shut the connection's sending side down first, which ended every peer
    connection right after its handshake (``tests/unit/peer/test_connection.py``: 22 of 31 fail
    with anyio 4.4, and with each of 4.10 to 4.15). The engine also wraps sockets it bound
    itself with ``from_socket`` (anyio 4.10). The package asked for ``anyio>=4.4``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = next(d for d in project["dependencies"] if d.startswith("anyio"))
    floor = re.search(r">=\s*(\d+)\.(\d+)", declared)
    assert floor is not None, f"no least version in {declared!r}"
    assert (int(floor[1]), int(floor[2])) >= (4, 16), declared
