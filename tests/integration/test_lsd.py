"""Two of our managers find each other by LSD alone and complete a download; a private torrent
is never announced. Each runs in a network namespace the test makes (multicast stays on lo)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.netns import run_in_netns


def _run(mode: str, tmp_path: Path, *, ipv6: bool = False) -> dict[str, object]:
    done = run_in_netns("tests.integration._lsd_swarm", mode, str(tmp_path), timeout=150, ipv6=ipv6)
    assert done.returncode == 0, f"{mode}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_two_managers_find_each_other_by_lsd_and_download(tmp_path: Path) -> None:
    result = _run("ours", tmp_path)
    assert result["done"] and result["differ"] == []


def test_private_torrent_is_never_announced(tmp_path: Path) -> None:
    result = _run("private", tmp_path)
    assert not result["done"]
    assert result["seeder"] == {"sent": 0, "received": 0, "peers_found": 0, "families": [4]}


def test_two_managers_find_each_other_over_the_ipv6_group(tmp_path: Path) -> None:
    result = _run("ours-v6", tmp_path, ipv6=True)
    assert result["done"] and result["differ"] == []
    assert result["seeder"]["families"] == [6] and result["leecher"]["families"] == [6]  # type: ignore[index]
    assert result["leecher_peers"] == ["fd00::1"]  # the announcer's IPv6 source address


def test_cli_download_with_lsd_finds_the_seeder(tmp_path: Path) -> None:
    result = _run("cli", tmp_path)
    assert result["exit"] == 0 and result["differ"] == []
