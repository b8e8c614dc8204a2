"""The cookies sent with the .torrent URLs the service fetches (qBittorrent's ``app/cookies``):
kept in ``STATE_DIR/url_cookies.json`` (mode 0600: a tracker's login is a credential), those with
an expiry only, as qBittorrent keeps them; a session cookie lasts until the service stops, an
expired one is dropped. Values are never logged.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ...net.httpclient.cookies import MAX_COOKIES, Cookie, CookieError, check_cookie, cookie_header
from ..model import InvalidJobRequest, StateNotSaved

log = logging.getLogger(__name__)

COOKIES_FILE = "url_cookies.json"
_MAX_FILE = MAX_COOKIES * 6 * 1024  # (each at most ~5.4 KiB as JSON)


class UrlCookies:
    """The cookies, in memory and (those that outlive the process) in the state folder."""

    def __init__(self, state_dir: Path | None, clock: Callable[[], float]) -> None:
        self.path = state_dir / COOKIES_FILE if state_dir is not None else None
        self._clock = clock
        self._writing = threading.Lock()  # (changes in worker threads: one after the other)
        self._cookies: tuple[Cookie, ...] = self._read()

    def _read(self) -> tuple[Cookie, ...]:
        if self.path is None:
            return ()
        try:
            with open(self.path, "rb") as f:
                rows = json.loads(f.read(_MAX_FILE + 1))
        except FileNotFoundError:
            return ()
        except (OSError, ValueError) as exc:
            log.warning("the URL cookies in %s cannot be read (%s): none are sent", self.path, exc)
            return ()
        out: list[Cookie] = []
        for row in rows if isinstance(rows, list) else [None]:
            try:
                if not isinstance(row, dict):
                    raise CookieError("not an object", "cookie")
                out.append(check_cookie(row.get("name"), row.get("value"), row.get("domain"),
                                        row.get("path"), row.get("expirationDate")))
            except CookieError as exc:  # (the file was edited by hand: that one is passed over)
                log.warning("a URL cookie in %s is passed over: %s", self.path, exc.field)
        now = self._clock()
        return tuple(c for c in out[:MAX_COOKIES] if not c.expired(now))

    def cookies(self) -> list[Cookie]:
        """Those not expired, in the order given."""
        now = self._clock()
        return [c for c in self._cookies if not c.expired(now)]

    def replace(self, cookies: Sequence[Cookie]) -> None:
        """(Blocking: in a worker thread.) The cookies become exactly ``cookies`` (those expired
        dropped), written before this returns (``StateNotSaved`` otherwise, nothing changed);
        ``InvalidJobRequest`` for more than ``MAX_COOKIES``."""
        if len(cookies) > MAX_COOKIES:
            raise InvalidJobRequest(f"at most {MAX_COOKIES} cookies", "cookies")
        now = self._clock()
        kept = tuple(c for c in cookies if not c.expired(now))
        with self._writing:
            if self.path is not None:
                rows = [{"name": c.name, "value": c.value, "domain": c.domain, "path": c.path,
                         "expirationDate": c.expires} for c in kept if c.expires is not None]
                try:
                    self._write(json.dumps(rows, separators=(",", ":")).encode())
                except OSError as exc:
                    raise StateNotSaved(f"cannot save the URL cookies: {exc.strerror or exc}",
                                        str(self.path.parent), full=exc.errno == errno.ENOSPC) from exc
            self._cookies = kept

    def header_for(self, url: str) -> str:
        """The ``Cookie:`` value a GET of ``url`` carries now (``""``: none)."""
        return cookie_header(self._cookies, url, self._clock()) if self._cookies else ""

    def _write(self, data: bytes) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{COOKIES_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
