"""A torrent's data hashed against its kept metainfo with no session (a job's check before it has
any live part: ``jobs.intake.checks``), in the caller's thread or in a process of its own.

``check_files`` is the check: it parses the metainfo, stamps the files before and after, hashes
every piece (going on from what an earlier check saved, when its files did not change) and saves
its progress every ``CheckAsk.save_every`` seconds through its caller.

``CheckProcess`` runs ``check_files`` in a child Python process, one torrent after another, for
one worker thread of its parent, which may ask several ahead: the checks of thousands of small
torrents are mostly Python (the metainfo's parse, the files' paths and stamps, a hashlib call a
piece), and in a thread of the daemon they held the GIL half of the time: the event loop had the
other half, the process used one core of two, a check of 256 KiB took 1.4-2.2 ms where alone it
takes 0.35, and a client's poll waited for both (bench/RESULTS.md, "Checks without a session in a
process of their own"). The child is asked over
a socket pair (``multiprocessing.connection``'s framing: pickles between a parent and the child it
started, nothing from outside); it reads nothing but the asks, the files and its own modules,
writes nothing (the progress saves are sent to the parent, which keeps them), and ends when the
parent closes its end or ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from ..errors import TorrentEngineError
from ..formats.bitfield import Bitfield
from ..formats.metainfo import load_saved_metainfo
from .core import Storage
from .dedup import FileRoot, file_roots
from .descriptors import FileCache
from .resume import FileStamp, ResumeData, check_resume_point, stamp_files
from .verify import piece_ok

__all__ = ["LOOK", "START_WAIT", "CheckAsk", "CheckFound", "CheckProcess", "ProcessEnded", "Progress",
           "SaveProgress", "check_files", "serve"]


START_WAIT = 30.0
"""Seconds a child process is given to start and say so (its imports: 0.1-0.2 s on this machine)."""

LOOK = 0.05
"""Seconds between two looks at a stop while the child checks (an answer wakes the parent sooner)."""
_CHILD = "import sys; from torrent_engine.storage.check import serve; serve(int(sys.argv[1]))"


@dataclass(frozen=True, slots=True)
class CheckAsk:
    """A check asked: the torrent's kept metainfo, where its files are, and, for a check that
    goes on from an earlier one's saved progress and saves its own, the job's resume data
    (``job``: its info-hash and real save path) and what is kept for it now (``kept``)."""

    metainfo: bytes
    data_path: str
    job: ResumeData | None = None
    kept: ResumeData | None = None
    save_every: float = 5.0


@dataclass(frozen=True, slots=True)
class CheckFound:
    """What a check found: the verified pieces of how many, and the files' stamps (``steady``:
    the same before and after the reads, so the stamps vouch for the pieces); ``roots``: the
    torrent's v2 files, as its metainfo read for the check says (``dedup.file_roots``)."""

    have: Bitfield
    num_pieces: int
    stamps: list[FileStamp | None]
    steady: bool
    roots: tuple[FileRoot, ...]

    @property
    def complete(self) -> bool:
        """Every piece verified, and no file changed while they were read."""
        return self.steady and len(self.have) == self.num_pieces


Progress = tuple[Bitfield, int, list[FileStamp | None]]
"""A check's progress, as a save is given it: the pieces verified, every piece below the count
hashed, the files' stamps when the check began."""

SaveProgress = Callable[[Bitfield, int, list[FileStamp | None]], bool]
"""Save that every piece below the count was hashed, the bitfield's verified, the files as the
stamps say they were when the check began; False when it cannot be written (no more are tried)."""


def check_files(ask: CheckAsk, files: FileCache | None, stopped: Callable[[], bool],
                save: SaveProgress | None = None) -> CheckFound | None:
    """(Blocking.) Hash every piece of ``ask``'s torrent from its files; None when ``stopped``
    said so before the end (looked at before each piece). A piece that cannot be read is not
    verified; ``TorrentEngineError`` when the metainfo cannot be read, ``OSError`` when the
    files' folder cannot be."""
    torrent = load_saved_metainfo(ask.metainfo)
    storage = Storage(torrent, ask.data_path, files=files)
    try:
        paths = [storage.file_path(i) for i in range(len(torrent.files))]
        before = stamp_files(paths)
        have = Bitfield(torrent.num_pieces)
        start = 0
        point = None if ask.job is None else check_resume_point(
            ask.kept, info_hash=ask.job.info_hash, num_pieces=torrent.num_pieces,
            save_path=ask.job.save_path, current=before)
        if point is not None:
            known, start = point
            for index in known:
                have.add(index)
        last_save = time.monotonic()
        for index in range(start, torrent.num_pieces):
            if stopped():
                return None
            try:
                data = storage.read_piece_blocking(index)
            except TorrentEngineError:
                data = None
            if data is not None and piece_ok(torrent, index, data):
                have.add(index)
            if save is not None and time.monotonic() - last_save >= ask.save_every and not stopped():
                # (not once it is stopped: the job may be its session's now, which saves its own)
                if not save(have, index + 1, before):
                    save = None
                last_save = time.monotonic()
        after = stamp_files(paths)
    finally:
        storage.close_blocking()
    return CheckFound(have=have, num_pieces=torrent.num_pieces, stamps=after, steady=before == after,
                      roots=tuple(file_roots(torrent)))


class ProcessEnded(OSError):
    """The child process ended (or never started) before it answered: what it was asked is
    not known to be done."""


class CheckProcess:
    """A child process checking torrents for its parent, one after another in the order asked.
    Several may be asked before the first is answered (``send``; ``answer`` gives what comes
    back): the child then goes from one to the next without waiting for the parent, whose
    thread, sharing the GIL with the event loop, may wait milliseconds for it at each call. Its
    calls block: one worker thread uses it at a time; ``close`` may come from any thread."""

    def __init__(self) -> None:
        """Start the child and wait until it says it is ready; ``ProcessEnded`` when it cannot
        be started or does not say so within ``START_WAIT`` seconds."""
        if getattr(sys, "frozen", False):  # (a bundled program: its executable is not an interpreter)
            raise ProcessEnded(f"no Python interpreter to start in a frozen program ({sys.executable})")
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(theirs.fileno())],
                                          pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            raise ProcessEnded(f"cannot start a check process ({sys.executable}): {exc}") from exc
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._lock = threading.Lock()  # (``close``'s, against a second)
        self._closed = False
        self._asked = 0  # (the last ask's number)
        try:
            said = self._conn.recv() if self._conn.poll(START_WAIT) else None
        except (OSError, EOFError) as exc:
            self.close()
            raise ProcessEnded(f"the check process ended as it started ({self._ended()})") from exc
        if said != ("ready", self._proc.pid):
            self.close()
            raise ProcessEnded(f"the check process did not say it started within {START_WAIT:g} s")

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid

    @property
    def ended(self) -> bool:
        """Whether it was closed (or ended while asked)."""
        return self._closed

    def send(self, ask: CheckAsk) -> int:
        """Ask for ``ask`` to be checked after those asked before: its number, which its answer
        names. ``ProcessEnded`` when the child ended (then closed)."""
        self._asked += 1
        self._send(("ask", self._asked, ask))
        return self._asked

    def stop(self, number: int) -> None:
        """The check asked as ``number`` stops between two pieces (or is not begun): its answer
        is ``found`` None, unless it ended first. ``ProcessEnded`` as ``send``."""
        self._send(("stop", number))

    def answer(self, wait: float) -> tuple[int, str, object] | None:
        """(Blocking up to ``wait`` seconds.) The next word from the child: ``(number, kind,
        value)``, kind ``found`` (a ``CheckFound``, None when stopped), ``failed`` (the reason
        it could not read what it needs) or ``save`` (``(have, checked_up_to, stamps)``: its
        progress, for the parent to keep); None when none came. ``RuntimeError`` with the
        child's traceback when the check failed otherwise; ``ProcessEnded`` as ``send``."""
        try:
            if not self._conn.poll(wait):
                return None
            number, kind, value = self._conn.recv()
        except (OSError, EOFError) as exc:
            self.close()
            raise ProcessEnded(f"the check process ended ({self._ended()})") from exc
        if kind == "bug":
            raise RuntimeError(f"the check process failed:\n{value}")
        return number, kind, value

    def close(self) -> None:
        """End the child (the checks asked are dropped) and wait for it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._conn.close()

    def _send(self, message: tuple[object, ...]) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:
            self.close()
            raise ProcessEnded(f"the check process ended ({self._ended()})") from exc

    def _ended(self) -> str:
        code = self._proc.poll()
        return "still running" if code is None else f"exit code {code}"


def serve(fd: int) -> None:
    """The child's loop (``python -c``): check what is asked on the connection ``fd``, in the
    order asked, until the parent closes it. Each answer: ``(number, "found", CheckFound |
    None)``, ``(number, "failed", reason)`` or ``(number, "bug", traceback)``; ``(number,
    "save", (have, checked_up_to, stamps))`` meanwhile."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (a ^C to the daemon's terminal is the parent's)
    child = _Child(Connection(fd))
    child.conn.send(("ready", os.getpid()))
    while True:
        if not child.asked:
            try:
                child.take(child.conn.recv())
            except (EOFError, OSError):
                return
            continue
        number, ask = child.asked.popleft()
        child.current = number
        answer: tuple[str, object]
        if number in child.stops:
            answer = ("found", None)
        else:
            try:
                answer = ("found", check_files(ask, None, child.stopped, child.save))
            except (TorrentEngineError, OSError) as exc:
                answer = ("failed", str(exc))
            except Exception:
                answer = ("bug", traceback.format_exc())
        child.stops.discard(number)
        child.done = number
        try:
            child.conn.send((number, *answer))
        except OSError:
            return


class _Child:
    """The child's side: the checks asked and not begun, the stops told, the one under way."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.asked: deque[tuple[int, CheckAsk]] = deque()
        self.stops: set[int] = set()  # (of checks not answered yet)
        self.current = 0  # (the check under way's number)
        self.done = 0  # (the last answered's)

    def take(self, word: tuple[object, ...]) -> None:
        """A word from the parent: an ask (kept for its turn) or a stop."""
        if word[0] == "ask" and isinstance(word[1], int) and isinstance(word[2], CheckAsk):
            self.asked.append((word[1], word[2]))
        elif word[0] == "stop" and isinstance(word[1], int) and word[1] > self.done:
            self.stops.add(word[1])

    def stopped(self) -> bool:
        """Whether the check under way was told to stop (the words waiting read: a syscall a piece)."""
        try:
            while self.conn.poll():
                self.take(self.conn.recv())
        except (EOFError, OSError):
            raise SystemExit(0) from None  # (the parent went away)
        return self.current in self.stops

    def save(self, have: Bitfield, checked_up_to: int, begun: list[FileStamp | None]) -> bool:
        """The progress of the check under way sent to the parent, which saves it."""
        self.conn.send((self.current, "save", (have, checked_up_to, begun)))
        return True
