"""What ``remote list`` and ``remote show`` print of a job: why it is stuck, why it failed; what
``remote add`` sends, and how a refusal is said."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from torrent_engine.cli.remote import RemoteError, job_line, refusal, show_job, source_of


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


def test_remote_dedup_says_each_folder_and_how_the_walk_goes() -> None:
    from torrent_engine.cli.remote import dedup_lines

    walking = {"mode": "copy", "jobs": 3, "files": 120, "hashed": 80, "walking": True,
               "hashing": {"done": 5, "total": 40}, "walked_at": None, "truncated": False,
               "folders": [{"folder": "/srv/media", "error": None},
                           {"folder": "/mnt/usb", "error": "No such file or directory"}]}
    assert dedup_lines(walking) == [
        "dedup copy: the files of 3 complete jobs known", "  folder /srv/media",
        "  folder /mnt/usb  (cannot be read: No such file or directory)",
        "  120 files in them, 80 hashed; walking now, hashing 5 of 40 new or changed files"]
    done = {**walking, "walking": False, "hashing": None, "walked_at": 0.0, "truncated": True}
    last = dedup_lines(done)[-1]
    assert last.startswith("  120 files in them, 80 hashed; last walked 19") and last.endswith(
        "; stopped at 100 000 files")
    none = {**walking, "folders": [], "walked_at": None, "walking": False}
    assert dedup_lines(none)[-1] == "  no indexed folder"


def test_a_refusal_is_one_line_of_its_error_and_field_for_a_request_and_a_stream_alike() -> None:
    """(``remote watch nope`` printed the JSON body: ``404: {"error":"id: no job 'nope'",...}``.)"""
    said = str(refusal(404, b'{"error": "id: no job \'nope\'", "field": "id"}'))
    assert said == "404: id: no job 'nope' (field id)"
    assert str(refusal(502, b"Bad Gateway")) == "502: Bad Gateway"  # (a proxy's, not the daemon's)


def test_add_sends_a_link_or_a_url_as_given_and_a_file_s_bytes(tmp_path: Path) -> None:
    """(A URL was read as a file's name: "No such file or directory: 'https://...'".)"""
    link = "magnet:?xt=urn:btih:" + "ab" * 20
    assert source_of(link) == link
    assert source_of("https://127.0.0.1:1/x.torrent") == "https://127.0.0.1:1/x.torrent"
    (tmp_path / "x.torrent").write_bytes(b"d4:infod")
    assert base64.b64decode(source_of(str(tmp_path / "x.torrent"))) == b"d4:infod"
    with pytest.raises(RemoteError, match=r"^cannot read '.*absent.torrent': No such file or directory$"):
        source_of(str(tmp_path / "absent.torrent"))
    with pytest.raises(RemoteError, match="^the source is empty"):
        source_of(" ")
