"""What ``remote list`` and ``remote show`` print of a job: why it is stuck, why it failed."""

from __future__ import annotations

import time
from typing import Any

from torrent_engine.cli.remote import job_line, show_job


def job(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "0123456789abcdef", "info_hash": "ab" * 20, "name": "x",
                            "state": "downloading", "progress": 0.0, "total_size": 0, "download_rate": 0.0,
                            "upload_rate": 0.0,
                            "peers": 0, "eta": None, "error": None, "stall": None}
    base.update(kw)
    return base


def test_a_stuck_job_says_why_in_list_and_show() -> None:
    stall = {"reason": "no_peer_sources", "message": "no peer sources: no tracker, the DHT is off and no "
             "peer was given", "since": time.time() - 75}
    stuck = job(state="fetching_metadata", stall=stall)
    assert "stalled: no peer sources" in job_line(stuck)
    shown = show_job(stuck)
    assert "stalled since" in shown and "01:1" in shown and "(no_peer_sources)" in shown
    assert "stalled" not in job_line(job())


def test_a_complete_job_that_cannot_reach_its_save_path_says_so_in_list_and_show() -> None:
    stall = {"reason": "not_moved", "message": "complete, but its files stay in /dl/part: they cannot "
             "move to /dl/done: /dl/done/a.bin already exists with other data", "since": time.time() - 5}
    held = job(state="seeding", progress=1.0, stall=stall)
    assert "not moved: complete, but its files stay in /dl/part" in job_line(held)
    assert "stalled" not in job_line(held)
    assert "not moved since" in show_job(held) and "(not_moved)" in show_job(held)


def test_a_failed_job_shows_its_error_in_list() -> None:
    failed = job(state="failed", error="disk full writing piece 3")
    assert "error: disk full writing piece 3" in job_line(failed)
    assert show_job(failed).count("disk full") == 1
