"""What an owner tells a session before it starts (``SessionSetup``): the session holds it from
the moment it is made, before it runs or meets a peer, keeps it over its resume data, and says
what it later learns that the owner records (a skipped file a reader opened) as an event."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from torrent_engine import events as ev
from torrent_engine.config import Config
from torrent_engine.errors import SessionError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session, SessionSetup
from torrent_engine.session.setup import TOP_PRIORITY, first_last_pieces
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.resume import ResumeData, save_resume

pytestmark = pytest.mark.anyio


def two_files(tmp_path: Path) -> Torrent:
    payload = tmp_path / "seed" / "p"
    payload.mkdir(parents=True)
    (payload / "a").write_bytes(os.urandom(40_000))
    (payload / "b").write_bytes(os.urandom(70_000))
    return create_torrent(payload, piece_length=16 * 1024, version="v1")


def idle_config() -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False)


async def test_a_session_holds_its_setup_from_the_moment_it_is_made_and_over_its_resume_data(
        tmp_path: Path) -> None:
    torrent = two_files(tmp_path)
    dl = tmp_path / "dl"
    resume_path = tmp_path / "state" / "t.resume"
    # an earlier run in this save path wanted file a alone, and counted other totals
    save_resume(resume_path, ResumeData(info_hash=torrent.info_hash, save_path=str(dl.resolve()),
                                        have=bytes(1), num_pieces=torrent.num_pieces,
                                        file_priorities=[4, 0], downloaded=100, uploaded=50))
    tracker = "http://127.0.0.1:9/announce"
    setup = SessionSetup(download_limit=30_000, upload_limit=20_000, max_peers=7, file_priorities=(0, 4),
                         sequential=True, first_last_piece=True, renamed_files=((1, ("kept", "b")),),
                         trackers=((tracker,),), downloaded=500, uploaded=10, bandwidth_group="films")
    s = Session(torrent, dl, config=idle_config(), resume_path=resume_path, setup=setup)

    def told() -> None:
        assert s.file_priorities == [0, 4]
        assert (s.download_limit.rate, s.upload_limit.rate, s.max_peers) == (30_000, 20_000, 7)
        assert s.bandwidth_group == "films"
        assert s.picker.sequential
        firsts = first_last_pieces(torrent, [0, 4])
        assert firsts and all(s.picker.piece_priority(i) == TOP_PRIORITY for i in firsts)
        assert s.file_parts(1) == ("kept", "b") and s.announcer.tiers() == ((tracker,),)

    told()  # (made, not run: no peer and no check has seen it otherwise)
    assert (s.downloaded, s.uploaded) == (500, 10)
    with anyio.fail_after(20):
        async with s:
            await s.wait_ready()
            told()  # (the resume data's priorities were not applied over the owner's)
            assert s.resumed and (s.downloaded, s.uploaded) == (500, 50)  # (whichever is more)
            assert s.status().total_wanted == 70_000


async def test_a_setup_that_does_not_fit_the_torrent_is_refused(tmp_path: Path) -> None:
    torrent = two_files(tmp_path)
    with pytest.raises(SessionError, match="file priorities given for 3 files"):
        Session(torrent, tmp_path / "dl", config=idle_config(), setup=SessionSetup(file_priorities=(4, 4, 4)))
    with pytest.raises(SessionError, match="download limit"):
        Session(torrent, tmp_path / "dl", config=idle_config(), setup=SessionSetup(download_limit=-1))


async def test_a_reader_of_a_skipped_file_wants_it_and_says_so(tmp_path: Path) -> None:
    """The session downloads the file from now on and publishes ``session.file_wanted`` for an
    owner that records the file priorities (it calls no owner back)."""
    torrent = two_files(tmp_path)
    heard: list[ev.SessionFileWanted] = []
    s = Session(torrent, tmp_path / "dl", config=idle_config(), setup=SessionSetup(file_priorities=(4, 0)))
    s.events.subscribe(ev.SessionFileWanted, heard.append)
    with anyio.fail_after(20):
        async with s:
            await s.wait_ready()
            reader = await s.open_file(1).open()
            assert s.file_priorities == [4, 4]
            await reader.aclose()
            while not heard:
                await anyio.sleep(0.01)
    said = [(e.name, e.info_hash, e.index) for e in heard]
    assert said == [("session.file_wanted", torrent.info_hash.hex(), 1)]
