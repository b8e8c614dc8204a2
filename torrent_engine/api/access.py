"""Who a request acts for, and what that one may see and do: the principal of a request (the
daemon's token, a user by password or session, a user's API key), each job's owner, a user's
folder and quotas, and the failed-login limiter every door shares.

A door (our API's guard, the qBittorrent and Transmission dialects) learns who is asking and
runs the request ``acting(principal)``; what it lists and touches is then narrowed by
``Gate.shows`` and checked by ``Gate.require``/``Gate.job``. Without users the token is the only
way in and it acts as the admin, as before users existed.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hmac
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from ..engine.addtorrent import MagnetLink, Parsed
from ..errors import ConfigError
from ..formats.magnet import MagnetError, parse_magnet
from ..formats.metainfo import Torrent
from ..jobs import (
    FINISHED_STATES,
    AddOptions,
    Job,
    JobConflict,
    JobError,
    JobFeatures,
    JobNotFound,
    JobService,
    SavePathError,
)
from ..net.proxy.settings import parse_proxy_url
from .users import ROLE_SCOPES, Role, Scope, User, UserStore

log = logging.getLogger(__name__)

USERS_FOLDER = "users"  # a user's downloads: DOWNLOAD_ROOT/users/NAME
SESSION_TTL = 24 * 3600.0  # seconds a login's session lasts unused
MAX_SESSIONS = 4096
MAX_ADDRESSES = 10_000  # addresses the limiter remembers at once (the oldest go first)


class AccessDenied(JobError):
    """What the principal may not do (HTTP 403), and why."""


class QuotaExceeded(JobConflict):
    """An add past one of the user's quotas; the message names the quota and the figures."""

    def __init__(self, message: str, quota: str) -> None:
        super().__init__(message)
        self.quota = quota
        self.field = quota


class LoginRefused(JobError):
    """Too many failed logins from one address: ``retry_after`` seconds to wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins from this address: try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: a user (``name``) or the daemon's token (``name`` empty, an
    admin), with the scopes it holds (a key's, within its user's role)."""

    name: str
    role: Role
    scopes: frozenset[Scope]
    max_torrents: int = 0
    max_bytes: int = 0

    @property
    def admin(self) -> bool:
        """Whether it sees and manages every job."""
        return self.role is Role.ADMIN

    @property
    def reads_all(self) -> bool:
        """Whether it sees every job (an admin, a viewer)."""
        return self.role is not Role.USER

    def can(self, scope: Scope) -> bool:
        """Whether it holds ``scope``."""
        return scope in self.scopes

    def describe(self) -> str:
        """How an error names it."""
        return f"user {self.name!r} ({self.role.value})" if self.name else "the API token"


TOKEN = Principal("", Role.ADMIN, frozenset(Scope))
_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal", default=TOKEN)


def current() -> Principal:
    """Who the running request acts for (the token's admin outside any request)."""
    return _current.get()


@contextmanager
def acting(principal: Principal) -> Iterator[None]:
    """Run the block as ``principal`` (what it calls sees it through ``current()``)."""
    reset = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(reset)


def principal_of(user: User, scopes: Iterable[Scope] | None = None) -> Principal:
    """``user`` as a principal (with ``scopes``: a key's, narrowed to the role's)."""
    held = ROLE_SCOPES[user.role] if scopes is None else frozenset(scopes) & ROLE_SCOPES[user.role]
    return Principal(user.name, user.role, held, user.max_torrents, user.max_bytes)


def known_size(sources: Iterable[object]) -> int:
    """The bytes of the torrents among ``sources`` whose metainfo is known before the add (their
    files', not BEP 47 pad files')."""
    return sum(f.length for s in sources if isinstance(s, Parsed) and isinstance(s.torrent, Torrent)
               for f in s.torrent.files if not f.pad)


def known_hashes(sources: Iterable[object]) -> set[str]:
    """The info-hashes (hex) of ``sources`` known before the add (a .torrent's, a magnet's)."""
    out = set()
    for s in sources:
        if isinstance(s, Parsed):
            out.add(s.torrent.info_hash.hex())
        elif isinstance(s, MagnetLink):
            try:
                out.add(parse_magnet(s.uri).info_hash.hex())
            except MagnetError:
                pass  # (the add says what is wrong with it)
    return out


def shown_proxy_url(url: str) -> str:
    """The proxy URL as the current principal is shown it: an admin's whole, anyone else's
    without its password (the daemon's secret, not theirs)."""
    if not url or current().admin:
        return url
    try:
        return parse_proxy_url(url).url(with_password=False)
    except ConfigError:
        return ""


class LoginLimiter:
    """Failed logins per client address: once it has ``failures`` of them, each within
    ``window`` seconds of the next, the address is refused (without a password being checked)
    for ``window`` seconds from the last. ``limits``: the two as they are now (the service's
    ``login_max_failures`` and ``login_ban_time``; 0 failures: never refused)."""

    def __init__(self, limits: Callable[[], tuple[int, float]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._failed: dict[str, list[float]] = {}  # address -> its last failures' times

    def wait(self, address: str) -> float:
        """Seconds ``address`` must wait before its next try (0: it may try now)."""
        failures, window = self._limits()
        times = self._recent(address, window)
        if failures <= 0 or len(times) < failures:
            return 0.0
        return max(0.0, times[-1] + window - self._clock())

    def _recent(self, address: str, window: float) -> list[float]:
        """``address``'s failures in a row, each within ``window`` seconds of the next, the last
        within ``window`` of now (the others are forgotten)."""
        times = self._failed.get(address, [])
        if times and self._clock() - times[-1] >= window:
            times = []
        for at in range(len(times) - 1, 0, -1):
            if times[at] - times[at - 1] >= window:
                times = times[at:]
                break
        if times:
            self._failed[address] = times
        else:
            self._failed.pop(address, None)
        return times

    def check(self, address: str) -> None:
        """``LoginRefused`` if ``address`` must wait."""
        wait = self.wait(address)
        if wait > 0:
            raise LoginRefused(wait)

    def failed(self, address: str) -> None:
        """One more failure from ``address`` (none is counted while nothing is refused)."""
        failures, window = self._limits()
        if failures <= 0:
            return
        times = self._recent(address, window)
        if address not in self._failed and len(self._failed) >= MAX_ADDRESSES:
            del self._failed[next(iter(self._failed))]
        self._failed[address] = [*times[-(failures - 1):], self._clock()] if failures > 1 else [self._clock()]

    def succeeded(self, address: str) -> None:
        """A right password from ``address``: its failures are forgotten."""
        self._failed.pop(address, None)


class Gate:
    """The users, the logins and the ownership rules over one service."""

    def __init__(self, service: JobService, *, token: str, users: UserStore | None = None,
                 limiter: LoginLimiter | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.token = token.encode()
        state_dir = service.config.state_dir
        if users is None:
            users = UserStore(Path(state_dir) if state_dir is not None else None)
        self.users = users
        self.limiter = limiter if limiter is not None else LoginLimiter(self._login_limits)
        self._clock = clock
        self._sessions: dict[str, tuple[str, float]] = {}  # session token -> (user name, last use)
        self._owners: dict[str, str] = {}  # job id -> owner ("": the admin's), as last seen
        self._number_owners: dict[int, str] = {}  # job number -> owner, as last seen
        self._add_locks: dict[str, anyio.Lock] = {}

    def _login_limits(self) -> tuple[int, float]:
        """The failed logins that get an address refused, and for how long (the settings' now)."""
        settings = self.service.get_settings()
        return settings.login_max_failures, settings.login_ban_time

    # -- who is asking --------------------------------------------------------------------------
    def is_token(self, given: str | bytes) -> bool:
        """Whether ``given`` is the daemon's API token (constant time)."""
        raw = given.encode("utf-8", "surrogatepass") if isinstance(given, str) else given
        return hmac.compare_digest(raw, self.token)

    def bearer(self, given: str) -> Principal | None:
        """The principal a bearer credential is: the token, a login's session, or a user's key."""
        if not given:
            return None
        if self.is_token(given):
            return TOKEN
        session = self._sessions.get(given)
        if session is not None:
            name, last = session
            user = self.users.find(name)
            if user is not None and self._clock() - last <= SESSION_TTL:
                self._sessions[given] = (name, self._clock())
                return principal_of(user)
            self._sessions.pop(given, None)
            return None
        if given.startswith("te_"):
            found = self.users.check_key(given)
            if found is not None:
                return principal_of(found[0], found[1].scopes)
        return None

    async def password(self, name: str, password: str, address: str) -> Principal | None:
        """The user ``name`` if ``password`` is theirs (scrypt in a worker thread); a failure
        counts against ``address`` (``LoginRefused`` once it has too many)."""
        self.limiter.check(address)
        user = await anyio.to_thread.run_sync(self.users.check_password, name, password)
        if user is None:
            self.limiter.failed(address)
            log.warning("failed login for user %r from %s", name[:64], address)
            return None
        self.limiter.succeeded(address)
        return principal_of(user)

    def again(self, principal: Principal) -> Principal | None:
        """``principal`` as its user is now (role, quotas), None if the user is gone; the token's
        as it is."""
        if not principal.name:
            return principal
        user = self.users.find(principal.name)
        return None if user is None else principal_of(user, principal.scopes)

    def open_session(self, principal: Principal) -> str:
        """A new session token for a logged-in user."""
        now = self._clock()
        self._sessions = {s: v for s, v in self._sessions.items() if now - v[1] <= SESSION_TTL}
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session = secrets.token_urlsafe(32)
        self._sessions[session] = (principal.name, now)
        return session

    def close_session(self, session: str) -> None:
        """The session no longer works."""
        self._sessions.pop(session, None)

    # -- what it may do -------------------------------------------------------------------------
    @staticmethod
    def require(scope: Scope, what: str = "") -> None:
        """``AccessDenied`` unless the current principal holds ``scope``."""
        p = current()
        if not p.can(scope):
            doing = f" ({what})" if what else ""
            raise AccessDenied(f"{p.describe()} may not {_VERBS[scope]}{doing}: it needs the "
                               f"{scope.value!r} scope")

    def owner_of(self, job: Job) -> str:
        """The job's owner ("" for one from before users, or the token's: the admin's)."""
        self._owners[job.id] = self._number_owners[job.number] = job.options.owner
        return job.options.owner

    def shows_number(self, number: int) -> bool:
        """Whether the current principal saw the job numbered ``number`` (Transmission's id;
        one removed: as it was last seen)."""
        p = current()
        return p.reads_all or self._number_owners.get(number) == p.name

    def shows(self, job: Job) -> bool:
        """Whether the current principal sees ``job``."""
        p = current()
        return p.reads_all or self.owner_of(job) == p.name

    def shows_id(self, job_id: str | None) -> bool:
        """Whether the current principal sees job ``job_id`` (one removed: as it was last seen)."""
        p = current()
        if p.reads_all or job_id is None:  # (no job: the service's totals, shown to all)
            return True
        try:
            return self.shows(self.service.get(job_id))
        except JobError:
            return self._owners.get(job_id) == p.name

    def owner_shown(self) -> str | None:
        """The owner whose jobs alone the current principal sees (a user's name), None: all."""
        p = current()
        return None if p.reads_all else p.name

    def client_jobs(self) -> list[Job]:
        """The jobs a download client lists (``JobService.client_jobs``) that the current principal
        sees: a user's made of their own jobs alone, in one page (``visible`` notes their owner)."""
        owner = self.owner_shown()
        if owner is None:
            return self.service.client_jobs()
        return self.visible(next(self.service.client_pages(len(self.service) or 1, owner=owner), []))

    def active(self) -> list[Job]:
        """The unfinished jobs the current principal sees, newest first: a user's made of their
        own jobs alone."""
        owner = self.owner_shown()
        if owner is None:
            return self.service.active()
        page = next(self.service.list_pages(len(self.service) or 1, owner=owner), [])  # (one page)
        return [job for job in self.visible(page) if job.state not in FINISHED_STATES]

    def visible(self, jobs: Iterable[Job]) -> list[Job]:
        """The jobs of ``jobs`` the current principal sees."""
        p = current()
        if p.reads_all:
            return list(jobs)
        return [j for j in jobs if self.owner_of(j) == p.name]

    def job(self, job_id: str, scope: Scope = Scope.READ) -> Job:
        """Job ``job_id`` if the current principal sees it (else ``JobNotFound``: another's job
        is not there for them) and holds ``scope``."""
        job = self.service.get(job_id)
        if not self.shows(job):
            raise JobNotFound(f"no job {job_id!r}", "id")
        self.require(scope)
        return job

    def user_root(self, name: str) -> Path:
        """Where user ``name``'s downloads go."""
        return self.service.download_root / USERS_FOLDER / name

    def confine(self, path: str | None, field: str = "save_path") -> str | None:
        """A user's ``path`` if it is inside their folder (relative: taken from there; None:
        their folder), else ``SavePathError``; anyone else's as given."""
        p = current()
        if p.admin or not p.name:
            return path
        root = self.user_root(p.name)
        if path is None or path == "":
            return str(root)
        given = Path(path)
        resolved = Path(os.path.normpath(root / given if not given.is_absolute() else given))
        if resolved != root and root not in resolved.parents:
            raise SavePathError(f"{path[:200]!r} is outside {p.describe()}'s folder {root}", field)
        return str(resolved)

    def labels(self, categories: Iterable[str], tags: Iterable[str]) -> tuple[list[str], list[str]]:
        """The categories and tags the current principal is shown: all for an admin or a viewer;
        for a user, those they made and those their torrents carry."""
        p = current()
        if p.reads_all:
            return list(categories), list(tags)
        user = self.users.find(p.name)
        held = self.service.holdings_of(p.name)  # (their jobs' records alone: no view of every job)
        mine_c = set(user.categories) | held.categories if user is not None else set(held.categories)
        mine_t = set(user.tags) | held.tags if user is not None else set(held.tags)
        return [c for c in categories if c in mine_c], [t for t in tags if t in mine_t]

    def made_labels(self, *, categories: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Note that the current user made these categories and tags (theirs from then on)."""
        p = current()
        if p.admin or not p.name:
            return
        for c in categories:
            self.users.own_label(p.name, category=c)
        for t in tags:
            self.users.own_label(p.name, tag=t)

    def owns_label(self, *, category: str | None = None, tag: str | None = None) -> bool:
        """Whether the current principal may change or remove this category or tag (an admin:
        any; a user: one they made)."""
        p = current()
        if p.admin:
            return True
        user = self.users.find(p.name) if p.name else None
        if user is None or not p.can(Scope.CONTROL):
            return False
        return (category is None or category in user.categories) and (tag is None or tag in user.tags)

    @staticmethod
    def manages_automatically() -> bool:
        """Whether the current principal's jobs may be managed automatically (saved where their
        category says, outside a user's folder): an admin's or the token's, not a user's."""
        p = current()
        return p.admin or not p.name

    def require_manual(self, features: JobFeatures | None) -> None:
        """``AccessDenied`` for automatic management asked by a principal who may not have it."""
        if features is not None and features.auto_managed and not self.manages_automatically():
            raise AccessDenied(f"{current().describe()} may not manage a torrent automatically: it would "
                               f"be saved outside their folder")

    # -- adding ---------------------------------------------------------------------------------
    @asynccontextmanager
    async def adding(self, options: AddOptions, sources: Sequence[object]) -> AsyncIterator[AddOptions]:
        """The add's options as the current principal may give them (its owner, a user's save
        path inside their folder), once its quotas allow ``sources`` (the bytes of those known
        before the add: ``added`` checks the others') and none of them is another user's
        torrent already (said without naming it or its folder); one add at a time per user, so
        that two cannot both pass the last place."""
        self.require(Scope.ADD, "add a torrent")
        self.require_manual(options.features)
        p = current()
        if not p.admin:
            hashes = known_hashes(sources)
            if hashes and any(self.owner_of(j) != p.name  # (looked up: no view of every job per add)
                              for j in self.service.client_jobs_of(hashes) if not j.finished):
                raise JobConflict("this torrent is already on the daemon for another user")
        count, size = len(sources), known_size(sources)
        confined = dataclasses.replace(
            options, owner=p.name, save_path=self.confine(options.save_path),
            download_path=options.download_path if options.download_path in (None, "")
            else self.confine(options.download_path, "download_path"))
        if not p.max_torrents and not p.max_bytes:
            yield confined
            return
        lock = self._add_locks.setdefault(p.name, anyio.Lock())
        async with lock:
            self._check_quota(p, count, size)
            yield confined

    def _check_quota(self, p: Principal, count: int, size: int) -> None:
        held = self.service.holdings_of(p.name)
        torrents, used = held.jobs, held.bytes
        if p.max_torrents and torrents + count > p.max_torrents:
            raise QuotaExceeded(f"{p.describe()} is at the quota of {p.max_torrents} torrents "
                                f"(has {torrents}, adding {count})", "max_torrents")
        if p.max_bytes and used + size > p.max_bytes:
            raise QuotaExceeded(f"{p.describe()} would be over the quota of {p.max_bytes} bytes "
                                f"(has {used}, adding {size})", "max_bytes")

    async def added(self, job: Job, created: bool) -> Job:
        """Check what an add gave: the same torrent already held for another user is refused
        (``JobConflict``); a new torrent whose size, learnt by the add, passes a byte quota is
        removed with its files and refused (``QuotaExceeded``)."""
        p = current()
        if not created:
            if not p.admin and self.owner_of(job) != p.name:
                raise JobConflict("this torrent is already on the daemon for another user")
            return job
        self._owners[job.id] = p.name
        if p.max_bytes:
            used = self.service.holdings_of(p.name).bytes
            if used > p.max_bytes:
                await self.service.cancel(job.id, delete_files=True)
                await self.service.forget(job.id, delete_files=True)
                raise QuotaExceeded(f"{p.describe()} would be over the quota of {p.max_bytes} bytes "
                                    f"(has {used - job.total_size}, adding {job.total_size})", "max_bytes")
        return job


_VERBS = {Scope.READ: "read", Scope.ADD: "add torrents", Scope.CONTROL: "change torrents",
          Scope.ADMIN: "change the daemon's settings"}
