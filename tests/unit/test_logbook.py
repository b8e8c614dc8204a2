"""The log book: numbered lines and peer events, bounded, read after the last one seen; what
``logging`` says captured into it while asked, at the levels a client filters by."""

from __future__ import annotations

import logging
import threading

import pytest

from torrent_engine.logbook import PEER_LOGGER, LogBook, LogLevel, peer_event


def test_lines_are_numbered_and_read_after_the_last_one_seen() -> None:
    book = LogBook(clock=lambda: 1234.5)
    for n in range(4):
        assert book.write(LogLevel.NORMAL if n % 2 == 0 else LogLevel.WARNING, f"line {n}") == n
    assert [line.id for line in book.lines()] == [0, 1, 2, 3]
    assert [line.message for line in book.lines(after=1)] == ["line 2", "line 3"]
    assert book.lines(after=3) == [] and book.lines(after=99) == []
    assert [line.id for line in book.lines(levels=frozenset({LogLevel.WARNING}))] == [1, 3]
    assert book.lines(after=2, levels=frozenset({LogLevel.NORMAL})) == []
    assert {line.time for line in book.lines()} == {1234.5}


def test_the_oldest_go_past_the_bound_and_a_reader_behind_gets_what_is_kept() -> None:
    book = LogBook(size=3)
    for n in range(5):
        book.write(LogLevel.INFO, f"line {n}")
        book.write_peer(f"127.0.0.{n}", blocked=True, reason="IP filter")
    assert [line.id for line in book.lines()] == [2, 3, 4]
    assert [line.id for line in book.lines(after=0)] == [2, 3, 4]  # (1 is gone: all that is kept)
    assert [line.id for line in book.lines(after=2)] == [3, 4]
    assert [p.ip for p in book.peers(after=3)] == ["127.0.0.4"]
    with pytest.raises(ValueError, match="at least one line"):
        LogBook(size=0)


def test_writers_on_many_threads_get_every_id_once() -> None:
    book = LogBook()

    def write(k: int) -> None:
        for n in range(500):
            book.write(LogLevel.INFO, f"{k}.{n}")

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [line.id for line in book.lines()] == list(range(2000))


def test_what_the_engine_logs_is_captured_at_its_level_while_asked() -> None:
    book = LogBook()
    parent = logging.getLogger("torrent_engine.test_logbook_parent")
    child = logging.getLogger("torrent_engine.test_logbook_parent.child")
    parent.setLevel(logging.WARNING)
    try:
        with book.capturing(parent):
            child.debug("not kept")
            child.info("an info %d", 1)
            child.warning("a warning")
            child.error("an error")
            try:
                raise OSError(28, "No space left on device")
            except OSError:
                child.exception("a write failed")
            assert parent.level == logging.INFO  # (lowered to INFO for the book)
        child.warning("after: not kept")
        assert parent.level == logging.WARNING  # (put back)
    finally:
        parent.setLevel(logging.NOTSET)
    assert [(line.level, line.message) for line in book.lines()] == [
        (LogLevel.INFO, "an info 1"), (LogLevel.WARNING, "a warning"), (LogLevel.CRITICAL, "an error"),
        (LogLevel.CRITICAL, "a write failed: OSError: [Errno 28] No space left on device")]
    assert book.peers() == []


def test_peer_events_go_to_the_peers_not_the_lines_and_cost_nothing_when_nobody_captures() -> None:
    book = LogBook()
    peer_event("127.0.0.9", "not kept: nobody captures", blocked=True, reason="IP filter")
    engine = logging.getLogger("torrent_engine")
    with book.capturing(engine):
        peer_event("127.0.0.9", "peer 127.0.0.9:6881 not dialed", blocked=True, reason="IP filter")
        peer_event("::1", "peer ::1 banned", blocked=False, reason="sent data that failed the hash check")
        logging.getLogger(PEER_LOGGER).info("a line of the peers' logger that names no peer")
    assert [(p.id, p.ip, p.blocked, p.reason) for p in book.peers()] == [
        (0, "127.0.0.9", True, "IP filter"), (1, "::1", False, "sent data that failed the hash check")]
    assert [line.message for line in book.lines()] == ["a line of the peers' logger that names no peer"]
    peer_event("127.0.0.9", "not kept: the capture ended", blocked=True, reason="IP filter")
    assert len(book.peers()) == 2


def test_a_console_at_its_own_level_does_not_print_what_the_book_takes(
        capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    root.addHandler(console)
    try:
        with LogBook().capturing(logging.getLogger("torrent_engine")):
            logging.getLogger("torrent_engine.test_logbook").info("for the book alone")
            peer_event("127.0.0.9", "for the book alone too", blocked=True, reason="IP filter")
            logging.getLogger("torrent_engine.test_logbook").warning("for both")
    finally:
        root.removeHandler(console)
    err = capsys.readouterr().err
    assert "for both" in err and "for the book alone" not in err
