"""libtorrent (``enable_lsd``) and one of our sessions find each other by LSD alone and complete
a download, both ways, inside a network namespace the test makes (multicast stays on lo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_libtorrent
from tests.integration.netns import run_in_netns

pytestmark = [pytest.mark.interop]


@pytest.mark.parametrize("mode", ["lt-seeds", "lt-leeches"])
def test_libtorrent_and_we_find_each_other_by_lsd(tmp_path: Path, mode: str) -> None:
    require_libtorrent()
    done = run_in_netns("tests.integration._lsd_swarm", mode, str(tmp_path), timeout=150)
    assert done.returncode == 0, f"{mode}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["done"] and result["differ"] == []
