"""qbittorrent_creator: torrentcreator/addTask's form read as qBittorrent reads it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from torrent_engine.api.compat.forms import parse_form
from torrent_engine.api.compat.qbittorrent_creator import read_request
from torrent_engine.api.compat.qbittorrent_records import QbtError
from torrent_engine.jobs.intake.creations import CreationRequest


def request_of(root: Path, **fields: str) -> CreationRequest:
    return read_request(root, parse_form("application/x-www-form-urlencoded", urlencode(fields).encode(), ""))


def test_trackers_are_pipe_separated_percent_decoded_and_an_empty_one_breaks_the_tier(tmp_path: Path) -> None:
    r = request_of(tmp_path, sourcePath="share",
                   trackers="|http://a/x%7Cy||http://b/|udp://c:1|||http://d/|",
                   urlSeeds="http://s/|| http://t/ ")
    assert r.tiers == (("http://a/x|y",), ("http://b/", "udp://c:1"), ("http://d/",))
    assert r.web_seeds == ("http://s/", "http://t/")


def test_defaults_as_qbittorrent(tmp_path: Path) -> None:
    r = request_of(tmp_path, sourcePath="share")
    assert (r.source_path, r.version, r.piece_length, r.private, r.skip_hidden, r.start_seeding) == (
        tmp_path / "share", "hybrid", 0, False, True, True)
    r = request_of(tmp_path, sourcePath="share", torrentFilePath="out.torrent", format="V1", private="TRUE")
    assert (r.version, r.private, r.start_seeding, r.torrent_file_path) == (
        "v1", True, False, tmp_path / "out.torrent")  # (startSeeding: true only without a file)


@pytest.mark.parametrize("fields", [{}, {"sourcePath": ""}, {"sourcePath": "/"}, {"sourcePath": "."},
                                    {"sourcePath": "../x"}, {"sourcePath": "a", "format": "v3"},
                                    {"sourcePath": "a", "pieceSize": "16385"}])
def test_refused(tmp_path: Path, fields: dict[str, str]) -> None:
    with pytest.raises(QbtError) as info:
        request_of(tmp_path, **fields)
    assert info.value.status == 400
