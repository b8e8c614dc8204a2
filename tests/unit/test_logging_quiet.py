"""A library prints nothing the application did not ask for: the engine's warnings go nowhere
until the application configures logging (no last-resort output on stderr), and importing the
library installs no handler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_QUIET = """
import logging
import torrent_engine as te
te.Session  # the session layer loaded too
logging.getLogger("torrent_engine.session").warning("a warning nobody asked to see")
logging.getLogger("torrent_engine.engine.manager").error("an error nobody asked to see")
assert logging.getLogger().handlers == [], logging.getLogger().handlers
print("ok")
"""

_ASKED = """
import logging
logging.basicConfig(format="%(name)s %(message)s")
import torrent_engine
logging.getLogger("torrent_engine.session").warning("shown")
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_library_prints_nothing_unless_the_application_configures_logging() -> None:
    run = _run(_QUIET)
    assert run.returncode == 0, run.stderr
    assert (run.stdout, run.stderr) == ("ok\n", "")


def test_the_application_sees_the_engines_messages_once_it_configures_logging() -> None:
    run = _run(_ASKED)
    assert run.stderr == "torrent_engine.session shown\n"
