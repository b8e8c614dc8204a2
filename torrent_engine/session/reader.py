"""Reading a torrent's files while they download: ``Session.open_file`` and the readers' deadlines.

A ``FileReader`` reads any byte range of one file. It returns only bytes of pieces that passed
their hash check and are on disk (the picker's ``have``); for the others it waits. While it
waits, and for a read-ahead window past its position sized to the rate it is read at, its pieces
are the picker's deadlines (``PiecePicker.set_deadlines``): fetched before any other, by the
fast peers; the piece it is blocked on is asked of a second peer when it is late. A seek moves
the window at once: the requests of pieces outside every window give way (CANCEL) to it.
``Readers`` (one per session) merges the windows of all open readers, most urgent first and
in turn, so several readers (two players, or one probing the end of a file for its index) are
served together. With no reader open the picker has no deadline: normal picking.

A reader never hangs silently: a session that stops or fails ends its reads with
``StreamError``; the wait is a bounded poll that looks at the session each time.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from ..errors import MissingFiles, StorageError, StreamError
from ..net.peer import messages as m
from ..storage import PieceStorage
from .phases import Loaded, Opened
from .state_table import State

if TYPE_CHECKING:
    from collections.abc import Callable

    from .context import TorrentContext
    from .peer import PeerState

MIN_READAHEAD = 4 * 1024 * 1024  # bytes past the position always wanted first
MAX_READAHEAD = 256 * 1024 * 1024
READAHEAD_SECONDS = 10.0  # the window holds this many seconds at the rate the reader reads
RATE_SPAN = 5.0  # seconds of reads the rate is taken over
LATE_AFTER = 0.5  # a request of a piece a reader waits on older than this: ask a second peer
FAST_SHARE = 0.5  # a peer at least this share of the fastest peer's rate takes deadline pieces
POLL = 0.2  # seconds between looks at the session while a read waits


class Readers:
    """The open readers of one session and the deadlines they make (a session part)."""

    def __init__(self, context: TorrentContext, *,
                 pick_requests: Callable[[PeerState], list[tuple[int, int, int]]]) -> None:
        self._ctx = context
        self._pick_requests = pick_requests  # what a peer should be asked for now (the peer handler's)
        self._open: list[FileReader] = []
        self._changed: anyio.Event | None = None  # (made when a read waits: most torrents have none)
        self._fast_floor = 0.0
        self._fast_at = -1.0
        self.active = False  # whether any reader is open (a plain field: read once a refill)

    @property
    def open_readers(self) -> list[FileReader]:
        """The open readers."""
        return list(self._open)

    def piece_passed(self, index: int) -> None:
        """A piece passed and is on disk: wake the readers."""
        if self._open:
            self.wake()

    def wake(self) -> None:
        """Wake every waiting read (it looks at the session again)."""
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def wait_change(self, timeout: float) -> None:
        """Until something a waiting read looks at changed, or ``timeout`` seconds."""
        changed = self._changed
        if changed is None:
            changed = self._changed = anyio.Event()
        with anyio.move_on_after(timeout):
            await changed.wait()

    def add(self, reader: FileReader) -> None:
        """A reader opened: its window goes first."""
        self._open.append(reader)
        self.active = True
        self.update(moved=True)

    def remove(self, reader: FileReader) -> None:
        """A reader closed (no deadlines left when it was the last)."""
        if reader in self._open:
            self._open.remove(reader)
            self.active = bool(self._open)
            self.update()

    def is_fast(self, peer: PeerState) -> bool:
        """Whether ``peer`` may take deadline pieces: at least ``FAST_SHARE`` of the fastest
        connected peer's download rate (every peer while none has a rate yet)."""
        now = time.monotonic()
        if now - self._fast_at > 0.5:
            best = max((p.down_rate for p in self._ctx.peers.values()), default=0.0)
            self._fast_floor = best * FAST_SHARE
            self._fast_at = now
        return peer.down_rate >= self._fast_floor

    def update(self, *, moved: bool = False) -> None:
        """Give the picker the deadlines of the open readers; ``moved`` (a reader opened or
        seeked): the peers' requests outside them give way now, and the peers are asked for the
        new window at once."""
        phase = self._ctx.phase
        if not isinstance(phase, Loaded):
            return
        picker = phase.parts.picker
        windows = [r.window() for r in self._open]
        order = [i for group in itertools.zip_longest(*windows) for i in group if i is not None]
        waiting = [r.waiting for r in self._open if r.waiting is not None]
        picker.set_deadlines(order, waiting=waiting, late_after=LATE_AFTER)
        if moved and order:
            self.refill(give_way=True)

    def refill(self, *, give_way: bool = False) -> None:
        """Ask every peer for what it should fetch now (deadline pieces first), in one write per
        peer; with ``give_way`` withdraw its requests of pieces outside the deadlines first."""
        ctx = self._ctx
        if ctx.state is not State.DOWNLOADING or not isinstance(ctx.phase, Loaded):
            return
        picker = ctx.phase.parts.picker
        now = time.monotonic()
        for peer in list(ctx.peers.values()):
            if peer.closed:
                continue
            out = bytearray()
            if give_way:
                for b in picker.give_way(peer.key):
                    out += m.Cancel(b.index, b.begin, b.length).to_bytes()
            requests = self._pick_requests(peer)
            if requests:
                out += m.encode_requests(requests)
            if out:
                try:
                    peer.link.write(bytes(out))
                except Exception as exc:  # its connection has ended (its own task reports why)
                    peer.close(f"send failed: {exc}")
                else:
                    peer.last_sent = now


class FileReader:
    """Reads one file of a session's torrent, waiting for verified pieces (``Session.open_file``).

    ``async with session.open_file(index) as f: f.seek(n); data = await f.read(65536)``. A
    magnet's reader opens once the metadata has come. ``StreamError`` when the file does not
    exist, the reader is closed, or the session ends or fails while a read waits.
    """

    def __init__(self, context: TorrentContext, readers: Readers, index: int, *,
                 want_file: Callable[[int], None]) -> None:
        self._ctx = context
        self._readers = readers  # the torrent's open readers (this one joins them)
        self._want_file = want_file  # a skipped file that is read is wanted again (its owner's word)
        self.index = index
        self._pos = 0
        self._offset = 0  # the file's start in the piece space
        self._size = 0
        self._piece_length = 1
        self._opened = False
        self._closed = False
        self.waiting: int | None = None  # the piece a read is blocked on now
        self._reads: deque[tuple[float, int]] = deque()  # (when, bytes) of recent reads
        self.name = ""

    # -- life ------------------------------------------------------------------------------
    async def open(self) -> FileReader:
        """Wait for the metadata (a magnet), check the file, and start its deadlines. A file
        the user skipped (priority 0) is wanted again: reading it means downloading it."""
        ctx = self._ctx
        while not isinstance(ctx.phase, Loaded):
            self._check_alive()
            await self._readers.wait_change(POLL / 4)
        parts = ctx.phase.parts
        files = parts.torrent.files
        index = self.index
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(files):
            raise StreamError(f"{ctx.name} has no file {self.index!r} (it has {len(files)})")
        entry = files[self.index]
        if entry.pad:
            raise StreamError(f"file {self.index} of {ctx.name} is a pad file")
        self._offset, self._size = entry.offset, entry.length
        self._piece_length = parts.torrent.piece_length
        self.name = "/".join(entry.path)
        if parts.file_priorities[self.index] == 0:
            self._want_file(self.index)
        self._opened = True
        self._readers.add(self)
        return self

    async def aclose(self) -> None:
        """Close the reader: its pieces are no longer deadlines."""
        if not self._closed:
            self._closed = True
            self._readers.remove(self)

    async def __aenter__(self) -> FileReader:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # -- position ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """The file's length in bytes."""
        self._check_open()
        return self._size

    def tell(self) -> int:
        """The position the next read starts at."""
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (``whence`` 0: from the start, 1: from here, 2: from the end); a
        position in another piece moves the deadlines there at once (forward within the read-ahead
        window too: the pieces before it are no longer wanted first, and their requests give way)."""
        self._check_open()
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            pos = self._size + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence!r}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        window = self.window()
        self._pos = pos
        self._reads.clear()  # the rate read so far says nothing about the new place
        new = self.window()
        moved = bool(new) and (not window or new[0] != window[0])
        self._readers.update(moved=moved)
        return pos

    # -- reading ---------------------------------------------------------------------------
    def rate(self) -> float:
        """Bytes per second this reader has read lately."""
        if len(self._reads) < 2:
            return 0.0
        span = self._reads[-1][0] - self._reads[0][0]
        return sum(n for _, n in itertools.islice(self._reads, 1, None)) / span if span > 0 else 0.0

    def window(self) -> list[int]:
        """The pieces wanted first for this reader: from its position through its read-ahead
        (``MIN_READAHEAD`` .. ``MAX_READAHEAD``, ``READAHEAD_SECONDS`` at its rate)."""
        if not self._opened or self._closed or self._pos >= self._size:
            return []
        ahead = int(min(MAX_READAHEAD, max(MIN_READAHEAD, self.rate() * READAHEAD_SECONDS)))
        start = self._offset + self._pos
        end = self._offset + min(self._size, self._pos + ahead)
        pl = self._piece_length
        return list(range(start // pl, (end - 1) // pl + 1))

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes from the position (all the rest when ``n`` < 0; less only at the
        end of the file), once every piece they lie in is verified."""
        self._check_open()
        end = self._size if n < 0 else min(self._size, self._pos + n)
        out = bytearray()
        while self._pos < end:
            chunk = await self._read_piece_part(end)
            out += chunk
            self._pos += len(chunk)
            now = time.monotonic()
            self._reads.append((now, len(chunk)))
            while self._reads and now - self._reads[0][0] > RATE_SPAN:
                self._reads.popleft()
            self._readers.update()
        return bytes(out)

    async def _read_piece_part(self, end: int) -> bytes:
        """The bytes from the position to ``end`` or to the end of its piece, whichever first."""
        pl = self._piece_length
        at = self._offset + self._pos
        index, begin = divmod(at, pl)
        length = min(end - self._pos, pl - begin)
        while True:
            await self._wait_for(index)
            try:  # (through the uploader: a piece whose file changed is verified again first)
                data = await self._ctx.parts.uploader.read_block(index, begin, length)
            except StorageError as exc:
                if isinstance(exc, MissingFiles):
                    self._ctx.fail(exc)  # (as a peer's read would: the torrent's files are gone)
                self._check_alive()
                raise StreamError(f"reading file {self.index} of {self._ctx.name}: {exc}") from exc
            if data is not None:
                return data
            # (lost: its file changed under it and it failed its hash; fetched again)

    async def _wait_for(self, index: int) -> PieceStorage:
        while True:
            self._check_open()
            phase = self._ctx.phase
            if isinstance(phase, Opened) and phase.parts.picker.has_piece(index):
                if self.waiting is not None:
                    self.waiting = None
                    self._readers.update()
                return phase.storage
            self._check_alive()
            if self.waiting != index:
                self.waiting = index
                self._readers.update()
            self._readers.refill()  # (peers with room: ask for it now, a second peer once it is late)
            await self._readers.wait_change(POLL)

    def _check_open(self) -> None:
        ctx = self._ctx
        if self._closed:
            raise StreamError(f"the reader of file {self.index} of {ctx.name} is closed")
        if not self._opened:
            raise StreamError(f"the reader of file {self.index} of {ctx.name} is not open yet")

    def _check_alive(self) -> None:
        ctx = self._ctx
        if ctx.run.finished.is_set() or ctx.state in (State.STOPPED, State.ERROR):
            error = ctx.phase.error
            why = f": {error}" if error else ""
            raise StreamError(f"the session of {ctx.name} has ended ({ctx.state.value}){why}")
