"""A torrent's data checked in a process of its own (``storage.check.CheckProcess``): what it
finds is what the check in a thread finds; a stop, a failure and the child's end are each told,
and the child goes on (or ends) as it should."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.errors import TorrentEngineError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage import check as check_module
from torrent_engine.storage.check import LOOK, CheckAsk, CheckFound, CheckProcess, ProcessEnded, check_files
from torrent_engine.storage.resume import ResumeData


def checked(process: CheckProcess, ask: CheckAsk, stop: threading.Event,
            save: Any = None) -> CheckFound | None:
    """``ask`` checked in ``process``, nothing else asked meanwhile, as a turn's thread does it:
    the stop told once set, the saves handed to ``save``, the failure raised."""
    number = process.send(ask)
    told = False
    while True:
        if not told and stop.is_set():
            process.stop(number)
            told = True
        word = process.answer(LOOK)
        if word is None:
            continue
        assert word[0] == number
        _, kind, value = word
        if kind == "save":
            if save is not None and not stop.is_set():
                save(*value)
        elif kind == "found":
            return value  # type: ignore[return-value]
        else:
            raise TorrentEngineError(str(value))


@pytest.fixture
def process() -> Iterator[CheckProcess]:
    child = CheckProcess()
    try:
        yield child
    finally:
        child.close()


def _on_disk(root: Path, version: str = "v1", pieces: int = 6, bad: int | None = 2) -> Torrent:
    """A torrent of two files whose data is under ``root``, piece ``bad`` of the first wrong."""
    first, second = bytearray(payload(pieces * 16384, 1)), payload(3 * 16384 + 100, 2)
    torrent = make_torrent([(("a.bin",), bytes(first)), (("b.bin",), second)], 16384, version=version,
                           name="two")
    if bad is not None:
        first[bad * 16384] ^= 0xFF
    for path, data in ((("a.bin",), bytes(first)), (("b.bin",), second)):
        target = (root / "two").joinpath(*path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return torrent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # (a zombie until reaped: its state says)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_the_process_finds_what_the_check_in_a_thread_finds(tmp_path: Path, process: CheckProcess,
                                                            version: str) -> None:
    torrent = _on_disk(tmp_path, version)
    ask = CheckAsk(torrent.to_bytes(), str(tmp_path))
    here = check_files(ask, None, lambda: False)
    there = checked(process, ask, threading.Event())
    assert here is not None and there is not None
    assert process.pid != os.getpid()
    assert set(there.have) == set(here.have) and 2 not in set(there.have) and len(there.have) > 0
    assert (there.num_pieces, there.stamps, there.steady, there.roots) == (
        here.num_pieces, here.stamps, here.steady, here.roots)
    assert len(there.roots) == (0 if version == "v1" else 2)
    again = checked(process, ask, threading.Event())  # (one process, one torrent after another)
    assert again is not None and set(again.have) == set(here.have)


def test_a_metainfo_that_cannot_be_read_is_a_failure_of_that_check_alone(tmp_path: Path,
                                                                          process: CheckProcess) -> None:
    with pytest.raises(TorrentEngineError) as caught:
        checked(process, CheckAsk(b"d4:infod6:lengthi-1eee", str(tmp_path)), threading.Event())
    assert "info" in str(caught.value) or "length" in str(caught.value), caught.value
    torrent = _on_disk(tmp_path, bad=None)
    found = checked(process, CheckAsk(torrent.to_bytes(), str(tmp_path)), threading.Event())
    assert found is not None and found.complete  # (the child went on)


def test_a_stop_ends_the_check_between_two_pieces_and_the_saves_come_to_the_parent(
        tmp_path: Path, process: CheckProcess) -> None:
    """Its progress saved every piece: the parent's save is called with it, and a stop set
    there (as a pause would) ends the check before its end; the next ask is answered."""
    torrent = _on_disk(tmp_path, pieces=400, bad=None)
    job = ResumeData(info_hash=torrent.info_hash, save_path=str(tmp_path), have=b"", num_pieces=0)
    ask = CheckAsk(torrent.to_bytes(), str(tmp_path), job, None, save_every=0.0)
    stop = threading.Event()
    saves: list[int] = []

    def save(have: Any, checked_up_to: int, begun: Any) -> bool:
        saves.append(checked_up_to)
        assert set(have) == set(range(checked_up_to))
        stop.set()
        time.sleep(0.2)  # (the child hashes on meanwhile, until it reads the stop)
        return True

    assert checked(process, ask, stop, save) is None
    assert saves == [1]  # (the saves sent after the stop are not made)
    found = checked(process, CheckAsk(torrent.to_bytes(), str(tmp_path)), threading.Event())
    assert found is not None and found.complete


def test_a_check_goes_on_from_the_progress_kept(tmp_path: Path, process: CheckProcess) -> None:
    """What an earlier check saved (its files unchanged) is trusted: the pieces below it are not
    hashed again (piece 2, wrong on disk, is taken as the earlier check left it)."""
    torrent = _on_disk(tmp_path)
    job = ResumeData(info_hash=torrent.info_hash, save_path=str(tmp_path.resolve()), have=b"",
                     num_pieces=0)
    first = check_files(CheckAsk(torrent.to_bytes(), str(tmp_path)), None, lambda: False)
    assert first is not None and 2 not in set(first.have)
    from torrent_engine.storage.resume import set_to_bitfield
    kept = ResumeData(info_hash=torrent.info_hash, save_path=job.save_path,
                      have=set_to_bitfield({0, 1, 2, 3}, first.num_pieces), num_pieces=first.num_pieces,
                      files=first.stamps, checked_up_to=4)
    found = checked(process, CheckAsk(torrent.to_bytes(), str(tmp_path), job, kept), threading.Event())
    assert found is not None and {0, 1, 2, 3} <= set(found.have)


def test_a_child_that_ends_mid_check_is_told_and_the_process_is_closed(tmp_path: Path,
                                                                       process: CheckProcess) -> None:
    torrent = _on_disk(tmp_path, pieces=400, bad=None)
    job = ResumeData(info_hash=torrent.info_hash, save_path=str(tmp_path), have=b"", num_pieces=0)
    ask = CheckAsk(torrent.to_bytes(), str(tmp_path), job, None, save_every=0.0)

    def save(have: Any, checked_up_to: int, begun: Any) -> bool:
        os.kill(process.pid, 9)
        return True

    with pytest.raises(ProcessEnded, match="exit code -9"):
        checked(process, ask, threading.Event(), save)
    assert process.ended and not _alive(process.pid)


def test_the_child_ends_when_closed() -> None:
    child = CheckProcess()
    pid = child.pid
    assert _alive(pid)
    child.close()
    assert not _alive(pid) and child.ended
    child.close()  # (twice: nothing more)


def test_a_process_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(ProcessEnded, match="cannot start a check process"):
        CheckProcess()
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(ProcessEnded, match="ended as it started"):
        CheckProcess()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(ProcessEnded, match="frozen program"):
        CheckProcess()
    monkeypatch.delattr(sys, "frozen")
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexec sleep 30\n")
    silent.chmod(0o755)
    monkeypatch.setattr(check_module, "START_WAIT", 0.5)
    monkeypatch.setattr(sys, "executable", str(silent))
    with pytest.raises(ProcessEnded, match="did not say it started within 0.5 s"):
        CheckProcess()
