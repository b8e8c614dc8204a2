"""The API's guards: the token, the ``Host`` allow-list, the body cap, and SSE tickets.

Every ``/api`` request carries the token in a header (``Authorization: Bearer`` or
``X-Api-Token``; with users, a login's session token or a user's API key there instead:
``access.py``), save ``POST /api/login`` and two kinds of ``GET`` that cannot send headers: an
``EventSource`` (a single-use ticket) and a media player opening a file's stream URL (the job's
read-only stream token, ``api/stream.py``); cookies are never read, so a cross-site form or
script cannot act for the user (no CSRF). The ``Host`` check defeats DNS rebinding: a page on
``evil.example`` that makes its name resolve to 127.0.0.1 still sends ``Host: evil.example`` and is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as ASGIScope

from ..formats.compact import is_ipv6_literal
from ..jobs import JobError, JobNotFound
from .access import TOKEN, AccessDenied, Gate, Principal, acting
from .stream import is_stream_request, stream_token
from .users import Role, Scope

# a job's stream token: that job's stream, read (the route is the only one it opens)
READ_ONLY = Principal("", Role.VIEWER, frozenset({Scope.READ}))

log = logging.getLogger(__name__)

COMPAT_PREFIXES = ("/api/v2/",)  # qBittorrent's WebAPI: its own login (SID cookie) or the Bearer token
TICKET_TTL = 30.0  # seconds an SSE ticket may wait before it is used
MAX_TICKETS = 1024  # outstanding at once; the oldest goes first
OPEN_PATHS = frozenset({"/api/login"})  # what checks its own credentials (a name and a password)
_JOB_PATH = re.compile(r"/api/jobs/([0-9a-f]{16})(?:/.*)?")
_LABEL_CREATION = frozenset({"/api/categories", "/api/tags"})


# what only an admin reads: the cookies sent with .torrent URLs, the daemon's log (every user's jobs)
# (the feeds': their URLs often hold the user's key of the site)
_ADMIN_READS = frozenset({"/api/cookies", "/api/log", "/api/log/peers", "/api/feeds", "/api/feeds/rules",
                          "/api/feeds/rules/matches"})


def route_scope(method: str, path: str) -> Scope:
    """The scope an ``/api`` request needs: reading, adding a torrent, changing one (or the
    categories and tags a user makes), else changing the daemon (admin)."""
    if path == "/api/users" or path.startswith("/api/users/"):
        return Scope.ADMIN  # (the users, their roles and keys: an admin's)
    if method in ("GET", "HEAD"):
        return Scope.ADMIN if path in _ADMIN_READS else Scope.READ
    if path in ("/api/events/ticket", "/api/logout"):
        return Scope.READ
    if path in ("/api/jobs", "/api/metadata") and method == "POST":
        return Scope.ADD  # (a magnet's files looked at before its add: part of adding)
    if path == "/api/jobs/bulk" or _JOB_PATH.fullmatch(path) or \
            (path in _LABEL_CREATION and method == "POST"):
        return Scope.CONTROL
    return Scope.ADMIN


def job_of_path(path: str) -> str | None:
    """The job id an ``/api/jobs/{id}...`` path names, or None."""
    match = _JOB_PATH.fullmatch(path)
    return match.group(1) if match else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def allowed_host_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names (without port) the API answers to."""
    names = {"localhost", "127.0.0.1", "[::1]", "::1"}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(bind_host)
        if ":" in bind_host and not bind_host.startswith("["):
            names.add(f"[{bind_host}]")
    names.update(h.lower() for h in extra)
    return frozenset(n.lower() for n in names)


# letters, digits, '-' and '_' (as in container names), dot-separated
_REG_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header, lower-cased, without its port: ``[::1]:80`` -> ``[::1]``,
    ``a:80`` -> ``a``; None unless the header is exactly a host and an optional numeric port
    (RFC 9110 7.2), so ``127.0.0.1:1.evil.example`` or ``127.0.0.1:abc`` match no allowed name."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        name, port = header[: end + 1], header[end + 1:]
        if end < 0 or not is_ipv6_literal(name[1:-1]):
            return None
    elif is_ipv6_literal(header):  # a bare IPv6 literal (no port can follow one)
        return f"[{header}]"
    else:
        name, colon, port = header.partition(":")
        port = colon + port
        if not _REG_NAME.fullmatch(name):
            return None
    if port and not (port[0] == ":" and _PORT.fullmatch(port[1:]) and int(port[1:]) <= 65535):
        return None
    return name


class Tickets:
    """Single-use, short-lived SSE tickets: an ``EventSource`` cannot send a header, so an
    authenticated ``POST /api/events/ticket`` hands one out for the query string (acting for
    whoever asked for it)."""

    def __init__(self, ttl: float = TICKET_TTL) -> None:
        self.ttl = ttl
        self._clock = time.monotonic
        self._tickets: dict[str, tuple[float, Principal]] = {}

    def issue(self, principal: Principal = TOKEN) -> str:
        """A new ticket valid for ``ttl`` seconds (the oldest are dropped beyond the cap)."""
        now = self._clock()
        self._tickets = {t: v for t, v in self._tickets.items() if v[0] > now}
        while len(self._tickets) >= MAX_TICKETS:
            del self._tickets[next(iter(self._tickets))]
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = (now + self.ttl, principal)
        return ticket

    def redeem(self, ticket: str) -> Principal | None:
        """Use ``ticket`` up: who it was issued to, once, if it has not expired."""
        held = self._tickets.pop(ticket, None)
        return held[1] if held is not None and held[0] > self._clock() else None


async def send_json(send: Send, status: int, body: dict[str, object],
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a whole JSON answer with ``status`` through the ASGI ``send``."""
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"), *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


def route_path(scope: ASGIScope) -> str:
    """The request's path below the prefix the API is mounted at (``root_path``: an application
    that mounts the API under ``/torrents`` passes ``/torrents/api/jobs`` with that root path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class GuardMiddleware:
    """Host allow-list for every request; token (or SSE ticket) for every ``/api`` request;
    a declared body over ``max_body`` bytes refused at once (the routes cap what they read)."""

    def __init__(self, app: ASGIApp, *, token: str, allowed_hosts: frozenset[str], max_body: int,
                 tickets: Tickets, gate: Gate | None = None) -> None:
        self.app = app
        self.token = token.encode()
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body
        self.tickets = tickets
        self.gate = gate

    def _authorised(self, scope: ASGIScope, headers: dict[bytes, bytes]) -> Principal | None:
        given = b""
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        elif b"x-api-token" in headers:
            given = headers[b"x-api-token"].strip()
        if given:
            if hmac.compare_digest(given, self.token):
                return TOKEN
            if self.gate is None:
                return None
            return self.gate.bearer(given.decode("latin-1"))
        path = route_path(scope)
        job_id = is_stream_request(scope["method"], path)
        if job_id is not None:  # a job's read-only stream token, for a media player given the URL
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given_stream = query.get("token", [""])[0].encode("latin-1")
            expected = stream_token(self.token.decode(), job_id).encode()
            good = bool(given_stream) and hmac.compare_digest(given_stream, expected)
            return READ_ONLY if good else None
        if scope["method"] == "GET" and (path == "/api/events" or
                                         (path.startswith("/api/jobs/") and path.endswith("/events"))):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            ticket = query.get("ticket", [""])[0]
            return self.tickets.redeem(ticket) if ticket else None
        return None

    def _allowed(self, principal: Principal, method: str, path: str) -> tuple[int, str, str | None] | None:
        """None if ``principal`` may make this request, else the status and reason (404 for
        another user's job, which is not there for them)."""
        if self.gate is None or (principal.admin and principal.can(Scope.ADMIN)):
            return None
        job_id = job_of_path(path)
        needed = route_scope(method, path)
        try:
            with acting(principal):
                if job_id is not None:
                    self.gate.job(job_id, needed)
                else:
                    self.gate.require(needed)
        except AccessDenied as exc:
            return 403, str(exc), None
        except JobNotFound as exc:  # (as the route says it of a job that does not exist)
            return 404, str(exc), "id"
        except JobError:
            return None  # (the route answers it: the service is starting ...)
        return None

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        """Check Host, token and body size, then pass the request on (or answer 403/401/413)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        raw_host = headers.get(b"host", b"").decode("latin-1")
        host = host_name(raw_host)
        if host is None or host not in self.allowed_hosts:
            why = "not in the allow-list" if host is not None else "not a host and an optional numeric port"
            log.warning("refused a request for Host %r (%s)", raw_host[:200], why)
            await send_json(send, 403, {"error": f"Host header {raw_host[:200]!r} is {why}"})
            return
        path = route_path(scope)
        principal = TOKEN
        if path.startswith("/api") and not path.startswith(COMPAT_PREFIXES) and path not in OPEN_PATHS:
            found = self._authorised(scope, headers)
            if found is None:
                await send_json(send, 401, {"error": "missing or wrong API token"},
                                [(b"www-authenticate", b'Bearer realm="torrent-engine"')])
                return
            principal = found
            refused = self._allowed(principal, scope["method"], path)
            if refused is not None:
                status, message, field = refused
                await send_json(send, status, {"error": message, **({"field": field} if field else {})})
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await send_json(send, 400, {"error": "bad Content-Length"})
                return
            if too_big:
                await send_json(send, 413, {"error": f"request body over {self.max_body} bytes"})
                return
        with acting(principal):
            await self.app(scope, receive, send)
