"""The engine for programs that are not async: a download that runs on its own event loop in a
background thread, controlled with plain method calls from any thread.

    with te.BackgroundDownload("x.torrent", "downloads") as job:
        while not job.wait(timeout=1.0):
            print(f"{job.status().progress:.0%}")
"""

from __future__ import annotations

import io
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..config import Config
from ..errors import DownloadTimeout
from ..session import Session, SessionStatus
from ..session.reader import FileReader
from .manager import TorrentManager, TorrentSource
from .runtime import _have_uvloop

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

T = TypeVar("T")


class BackgroundDownload:
    """One torrent in a background thread: ``status()``, ``pause()``, ``resume()``,
    ``cancel()``, ``wait()``; ``close()`` (or leaving the ``with`` block) stops it and ends the
    thread. Every method may be called from any thread."""

    def __init__(self, source: TorrentSource, save_path: str | os.PathLike[str], *,
                 config: Config | None = None, peers: tuple[tuple[str, int], ...] = ()) -> None:
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal(
            "asyncio", {"use_uvloop": _have_uvloop()})
        self._portal = self._portal_cm.__enter__()
        self._manager_cm: AbstractContextManager[TorrentManager] | None = None
        try:
            self._manager_cm = self._portal.wrap_async_context_manager(
                TorrentManager(config if config is not None else Config()))
            manager = self._manager_cm.__enter__()
            self._manager = manager
            self.session: Session = self._portal.call(
                lambda: manager.add(source, save_path, peers=peers))
        except BaseException:
            self.close()
            raise

    def status(self) -> SessionStatus:
        """Progress, rates, peers, state, ETA (a snapshot)."""
        return self._portal.call(self.session.status)

    def pause(self) -> None:
        """Stop transferring, keeping everything ready to resume."""
        self._portal.call(self.session.pause)

    def resume(self) -> None:
        """Go on after ``pause()``."""
        self._portal.call(self.session.resume)

    def cancel(self, *, delete_files: bool = False) -> None:
        """Stop the download (and, with ``delete_files``, remove what it wrote)."""
        self._portal.call(lambda: self._manager.remove(self.session, delete_files=delete_files))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every wanted piece is verified (True), or ``timeout`` seconds pass (False).
        ``SessionError`` if the download ended without completing."""
        async def waiting() -> bool:
            with anyio.move_on_after(timeout):
                await self.session.wait_completed()
                return True
            return False

        return self._portal.call(waiting)

    def wait_completed(self, timeout: float) -> None:
        """Like ``wait``, but a download still running after ``timeout`` is a ``DownloadTimeout``."""
        if not self.wait(timeout):
            st = self.status()
            raise DownloadTimeout(f"{st.name} was not complete after {timeout:g} s ({st.progress:.1%})")

    def open_file(self, index: int, *, timeout: float | None = None) -> BlockingFileReader:
        """A blocking, seekable binary file of file ``index`` that returns verified bytes only,
        waiting for them (their pieces are fetched first while it is open; see
        ``Session.open_file``). ``timeout``: the most seconds one read (or the open, for a
        magnet without metadata yet) may wait, else ``DownloadTimeout``."""
        return BlockingFileReader(self._portal, self.session.open_file(index), timeout)

    def close(self) -> None:
        """Stop the download, save its resume data, end the background thread."""
        manager_cm, self._manager_cm = self._manager_cm, None
        try:
            if manager_cm is not None:
                manager_cm.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def __enter__(self) -> BackgroundDownload:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class BlockingFileReader(io.RawIOBase):
    """``FileReader`` for threads: ``read``/``readinto``/``seek``/``tell`` block until the bytes
    are verified (``StreamError`` if the session ends; ``DownloadTimeout`` past ``timeout``).
    Wrap it in ``io.BufferedReader`` for small reads."""

    def __init__(self, portal: BlockingPortal, reader: FileReader, timeout: float | None) -> None:
        super().__init__()
        self._portal = portal
        self._reader = reader
        self._timeout = timeout
        self._call(reader.open)
        self.name = reader.name

    def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        timeout = self._timeout

        async def bounded() -> T:
            try:
                with anyio.fail_after(timeout):
                    return await fn()
            except TimeoutError:
                raise DownloadTimeout(f"{self._reader.name or 'the file'}: no verified bytes after "
                                      f"{timeout:g} s") from None

        return self._portal.call(bounded)

    @property
    def size(self) -> int:
        """The file's length in bytes."""
        return self._reader.size

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer`` (fewer bytes only at the end of the file)."""
        view = memoryview(buffer).cast("B")
        data = self._call(lambda: self._reader.read(len(view)))
        view[:len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when ``size`` < 0 or None)."""
        self._checkClosed()
        return self._call(lambda: self._reader.read(-1 if size is None else size))

    def readall(self) -> bytes:
        """All the rest of the file."""
        return self.read(-1)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (``whence`` as for ``io``); the deadlines follow at once."""
        self._checkClosed()
        return self._portal.call(self._reader.seek, offset, whence)

    def tell(self) -> int:
        """The position."""
        self._checkClosed()
        return self._reader.tell()

    def close(self) -> None:
        """Close the reader: its pieces are no longer deadlines."""
        if not self.closed:
            try:
                self._portal.call(self._reader.aclose)
            finally:
                super().close()


__all__ = ["BackgroundDownload", "BlockingFileReader"]
