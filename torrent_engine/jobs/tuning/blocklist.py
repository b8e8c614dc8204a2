"""The IP filter the job service keeps: a list file (re-read when it changes: its time is looked
at every ``FILE_CHECK`` seconds at most), a list fetched from a URL (on demand and every
``URL_REFRESH`` seconds; the copy is kept in the state folder, so a restart has it), and the
addresses banned by hand. The three make one ``IpFilter`` that the shared resources hold for
every session (``SharedResources.set_ip_filter``). Parsing is ``ipfilter.parse_list``'s; this
module reads, fetches, times and reports.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ...errors import HttpError
from ...jsonvalue import JSON
from ...net.httpclient import HttpResponse, http_get
from ...policy.ipfilter import IpFilter, IpFilterError, ParsedList, parse_list
from ...storage.resume import write_atomic
from ..model import InvalidJobRequest, JobConflict

if TYPE_CHECKING:
    from .settings import ServiceSettings

log = logging.getLogger("torrent_engine.jobs.blocklist")

FILE_CHECK = 60.0  # seconds between two looks at the list file's time
URL_REFRESH = 24 * 3600.0  # seconds between two fetches of the list URL
URL_RETRY = 3600.0  # seconds before a failed fetch is tried again
FETCH_TIMEOUT = 120.0
MAX_FETCHED_LIST = 64 * 1024 * 1024  # bytes of a list fetched by URL (compressed or not)
FETCHED_FILE = "ipfilter-url.dat"  # the state folder's copy of the list last fetched
FETCHED_URL_FILE = "ipfilter-url.txt"  # ... and the URL it came from

Fetch = Callable[[str], Awaitable[HttpResponse]]


# -- checks (settings) ------------------------------------------------------------------------
def check_filter_path(value: object, name: str, *, on_disk: bool = True) -> str:
    """A list file's path ("" for none): absolute, and a file (``on_disk``: checked now)."""
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a file's path (or \"\" for none)", name)
    if not value:
        return ""
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise InvalidJobRequest(f"{value[:200]!r} is not an absolute path", name)
    if on_disk and not path.is_file():
        raise InvalidJobRequest(f"{value[:200]!r} is not a file", name)
    return str(path)


def check_filter_url(value: object, name: str) -> str:
    """A list's URL ("" for none): http or https."""
    if not isinstance(value, str):
        raise InvalidJobRequest("must be an http(s) URL (or \"\" for none)", name)
    value = value.strip()
    if value and not value[:7].lower() == "http://" and not value[:8].lower() == "https://":
        raise InvalidJobRequest(f"{value[:200]!r} is not an http(s) URL", name)
    return value


def check_addresses(value: object, name: str) -> tuple[str, ...]:
    """IP addresses (a list, or text of one per line), each written as ``ipaddress`` writes it,
    once each, in the order given."""
    items: Sequence[object]
    if isinstance(value, str):
        items = [line.strip() for line in value.splitlines() if line.strip()]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise InvalidJobRequest("must be a list of IP addresses", name)
    out: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            raise InvalidJobRequest(f"{item!r} is not an IP address", name)
        try:
            out[str(ipaddress.ip_address(item.strip()))] = None
        except ValueError:
            raise InvalidJobRequest(f"{item[:60]!r} is not an IP address", name) from None
    return tuple(out)


def banned_filter(addresses: Sequence[str]) -> IpFilter:
    """A filter blocking exactly ``addresses``."""
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for text in addresses:
        ip = ipaddress.ip_address(text)
        (v6 if ip.version == 6 else v4).append((int(ip), int(ip)))
    return IpFilter(v4, v6)


# -- the keeper --------------------------------------------------------------------------------
@dataclass(slots=True)
class ListStatus:
    """What one source (the file, or the URL) gave when last read."""

    source: str  # the path or the URL
    parsed: ParsedList | None = None  # None: nothing read (yet)
    read_at: float | None = None  # wall-clock time it was read (the URL's: fetched)
    error: str | None = None  # why the last read or fetch failed
    stamp: tuple[int, int] | None = field(default=None)  # the file's (mtime_ns, size) when read

    def to_json(self) -> dict[str, JSON]:
        """As the API shows it."""
        p = self.parsed
        return {"source": self.source, "ranges": len(p.filter) if p else 0, "rules": p.rules if p else 0,
                "bad_lines": p.bad_lines if p else 0,
                "first_bad": [{"line": b.line, "reason": b.reason} for b in p.first_bad] if p else [],
                "read_at": self.read_at, "error": self.error}


class Blocklist:
    """Makes the shared IP filter from the settings (see the module's docstring)."""

    def __init__(self, settings: Callable[[], ServiceSettings], apply: Callable[[IpFilter, bool], None], *,
                 state_dir: Path | None, clock: Callable[[], float] = time.time,
                 fetch: Fetch | None = None) -> None:
        self._settings = settings
        self._apply = apply
        self._state_dir = state_dir
        self._clock = clock
        self._fetch = fetch or (lambda url: http_get(url, max_body=MAX_FETCHED_LIST, timeout=FETCH_TIMEOUT))
        self.file: ListStatus | None = None
        self.url: ListStatus | None = None
        self._file_checked = -math.inf  # clock() when the file's time was last looked at
        self._url_due = -math.inf  # clock() when the URL is fetched next (by the timer)
        self._fetching: anyio.Event | None = None  # a fetch in flight (one at a time)
        self.filter = IpFilter()  # the filter in force
        # what it was made of: (switch, banned addresses), the lists read (held: compared by identity)
        self._in_force: tuple[tuple[bool, tuple[str, ...]], tuple[ParsedList, ...]] | None = None
        self._lock = anyio.Lock()

    @property
    def list_ranges(self) -> int:
        """Ranges of the lists read (file and URL, merged), in force while the filter is on."""
        return len(self._lists_filter())

    def _lists_filter(self) -> IpFilter:
        parts = [st.parsed.filter for st in (self.file, self.url) if st is not None and st.parsed is not None]
        return parts[0].union(*parts[1:]) if parts else IpFilter()

    def status(self) -> dict[str, JSON]:
        """What ``GET /api/ipfilter`` shows."""
        s = self._settings()
        return {"enabled": s.ip_filter_enabled, "trackers": s.ip_filter_trackers,
                "ranges": len(self.filter), "list_ranges": self.list_ranges, "banned": len(s.banned_ips),
                "file": self.file.to_json() if self.file is not None and s.ip_filter_path else None,
                "url": self.url.to_json() if self.url is not None and s.ip_filter_url else None}

    async def refresh(self, *, look_now: bool = False) -> None:
        """Read what changed (the file when its path or time did: its time looked at when
        ``look_now`` or ``FILE_CHECK`` has passed; the URL's kept copy when its URL changed) and
        put the filter in force."""
        async with self._lock:
            s = self._settings()
            now = self._clock()
            if s.ip_filter_enabled and s.ip_filter_path:
                if look_now or self.file is None or self.file.source != s.ip_filter_path \
                        or now - self._file_checked >= FILE_CHECK:
                    self._file_checked = now
                    self.file = await anyio.to_thread.run_sync(_read_file, s.ip_filter_path, self.file, now)
            url = s.ip_filter_url
            if s.ip_filter_enabled and url and (self.url is None or self.url.source != url):
                self.url = await anyio.to_thread.run_sync(self._read_kept, s.ip_filter_url)
                self._url_due = now if self.url.read_at is None else self.url.read_at + URL_REFRESH
            await self._put_in_force(s)

    async def _put_in_force(self, s: ServiceSettings) -> None:
        lists = tuple(st.parsed for st in (self.file, self.url) if st is not None and st.parsed is not None)
        made_of = self._in_force
        same = made_of is not None and made_of[0] == (s.ip_filter_enabled, s.banned_ips) \
            and len(made_of[1]) == len(lists) and all(a is b for a, b in zip(made_of[1], lists, strict=True))
        if not same:  # (else the same filter: a list of 500 000 ranges is not merged again)
            self._in_force = ((s.ip_filter_enabled, s.banned_ips), lists)
            self.filter = await anyio.to_thread.run_sync(self._made, s)  # (merging: off the loop)
        self._apply(self.filter, s.ip_filter_enabled and s.ip_filter_trackers)

    def _made(self, s: ServiceSettings) -> IpFilter:
        in_lists = self._lists_filter() if s.ip_filter_enabled else IpFilter()
        return in_lists.union(banned_filter(s.banned_ips)) if s.banned_ips else in_lists

    def _read_kept(self, url: str) -> ListStatus:
        """The state folder's copy of the list fetched from ``url`` (none: not fetched yet)."""
        status = ListStatus(url)
        if self._state_dir is None:
            return status
        try:
            if (self._state_dir / FETCHED_URL_FILE).read_text(encoding="utf-8") != url:
                return status
            path = self._state_dir / FETCHED_FILE
            data = path.read_bytes()
            status.read_at = path.stat().st_mtime
            status.parsed = parse_list(data)
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError, IpFilterError) as exc:
            status.error = f"the copy kept cannot be read: {exc}"
        return status

    async def update(self) -> int:
        """Fetch the list URL now (one fetch at a time: a second call waits for the first and
        answers as it did), also while the filter is off (the list applies once it is on); the
        ranges of the lists read. ``JobConflict`` when no URL is set or the fetch failed (saying
        why)."""
        s = self._settings()
        if not s.ip_filter_url:
            raise JobConflict("no blocklist URL is set", "ip_filter_url")
        if self._fetching is not None:
            await self._fetching.wait()
        else:
            self._fetching = anyio.Event()
            try:
                await self._fetch_url(s.ip_filter_url)
            finally:
                self._fetching.set()
                self._fetching = None
        if self.url is not None and self.url.error is not None:
            raise JobConflict(f"cannot update the blocklist from {s.ip_filter_url[:80]}: {self.url.error}",
                              "ip_filter_url")
        return self.list_ranges

    async def _fetch_url(self, url: str) -> None:
        now = self._clock()
        self._url_due = now + URL_RETRY
        error: str | None = None
        parsed: ParsedList | None = None
        try:
            response = await self._fetch(url)
            if response.status != 200:
                raise HttpError(f"HTTP {response.status} {response.reason}".strip(), url)
            parsed = await anyio.to_thread.run_sync(parse_list, response.body)
            if parsed.rules == 0 and parsed.bad_lines:
                raise IpFilterError(f"no rule in it; {parsed.bad_lines} lines not understood, the first: "
                                    f"line {parsed.first_bad[0].line}: {parsed.first_bad[0].reason}")
            if self._state_dir is not None:
                await anyio.to_thread.run_sync(self._keep, url, response.body)
        except HttpError as exc:
            error = exc.reason
        except (IpFilterError, OSError) as exc:
            error = str(exc)
        async with self._lock:
            s = self._settings()
            if s.ip_filter_url != url:
                return  # (changed meanwhile: what was fetched is not the list asked for now)
            if error is not None:
                log.warning("blocklist %s: not updated: %s", url, error)
                old = self.url
                self.url = ListStatus(url, old.parsed if old and old.source == url else None,
                                      old.read_at if old and old.source == url else None, error)
            else:
                assert parsed is not None
                self._url_due = now + URL_REFRESH
                self.url = ListStatus(url, parsed, self._clock())
                _report(url, parsed)
            await self._put_in_force(s)

    def _keep(self, url: str, data: bytes) -> None:
        assert self._state_dir is not None
        write_atomic(self._state_dir / FETCHED_FILE, data)
        write_atomic(self._state_dir / FETCHED_URL_FILE, url.encode())

    async def run(self) -> None:
        """The timer: the file's time every ``FILE_CHECK`` s, the URL every ``URL_REFRESH`` s."""
        while True:
            await anyio.sleep(min(FILE_CHECK, 60.0))
            await self.refresh()
            s = self._settings()
            if s.ip_filter_enabled and s.ip_filter_url and self._clock() >= self._url_due \
                    and self._fetching is None:
                try:
                    await self.update()
                except JobConflict as exc:
                    log.debug("blocklist update: %s", exc)


def _read_file(path_text: str, old: ListStatus | None, now: float) -> ListStatus:
    """The list file read again when its (time, size) changed since ``old`` was read."""
    path = Path(path_text)
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if old is not None and old.source == path_text and old.stamp == stamp and old.parsed is not None:
            return old
        parsed = parse_list(path.read_bytes())
    except (OSError, IpFilterError) as exc:
        log.warning("IP filter %s: cannot be read: %s", path, exc)
        kept = old if old is not None and old.source == path_text else None
        return ListStatus(path_text, kept.parsed if kept else None, kept.read_at if kept else None,
                          f"cannot be read: {exc}", kept.stamp if kept else None)
    _report(path_text, parsed)
    return ListStatus(path_text, parsed, now, None, stamp)


def _report(source: str, parsed: ParsedList) -> None:
    if parsed.bad_lines:
        first = "; ".join(f"line {b.line}: {b.reason}" for b in parsed.first_bad)
        log.warning("IP filter %s: %d lines passed over (%s)", source, parsed.bad_lines, first)
    log.info("IP filter %s: %d rules, %d ranges", source, parsed.rules, len(parsed.filter))

