"""The engine for programs that are not async: a download that runs on its own event loop in a
background thread, controlled with plain method calls from any thread.

    with te.BackgroundDownload("x.torrent", "downloads") as job:
        while not job.wait(timeout=1.0):
            print(f"{job.status().progress:.0%}")
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from types import TracebackType

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from .config import Config
from .errors import DownloadTimeout
from .manager import TorrentManager, TorrentSource
from .runtime import _have_uvloop
from .session import Session, SessionStatus


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


__all__ = ["BackgroundDownload"]
