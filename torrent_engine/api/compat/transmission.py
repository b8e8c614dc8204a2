"""Transmission's RPC (``/transmission/rpc``, RPC version 17 as in Transmission 4.0) over the job service.

A translator: ``{"method", "arguments", "tag"}`` in, ``{"result", "arguments", "tag"}`` out;
torrents are jobs (Transmission's torrent ``id`` is the job's ``number``, its ``labels`` the
job's tags), statuses and units (KB/s of 1000 bytes) are Transmission's. Authentication is HTTP
Basic with the daemon's API token as the password (any user name unless the daemon is given
one) or ``Authorization: Bearer``; then the ``X-Transmission-Session-Id`` hand-shake (409 with
the id to use) keeps other web sites out. A method or a value the service cannot honour gets
an error ``result`` saying so, never a fake ``success``. A body with ``"jsonrpc": "2.0"`` (or a
batch) is Transmission 4.1's JSON-RPC 2.0: renamed to the old names by transmission_jsonrpc.py,
run by the same methods, answered in 4.1's names. See docs/compat.md.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import ipaddress
import logging
import secrets
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from urllib.parse import urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import __version__
from ...config import MAX_RATE_LIMIT
from ...engine.addtorrent import (
    AddTorrent,
    AddTorrentError,
    MagnetLink,
    Parsed,
    TorrentBytes,
    TorrentUrl,
    encoded_over_the_limit,
    from_text,
    over_the_limit,
    read_add_torrent,
    read_link,
)
from ...errors import TorrentEngineError
from ...formats.metainfo import Torrent
from ...jobs import (
    AddOptions,
    DuplicateJob,
    InvalidJobRequest,
    Job,
    JobConflict,
    JobError,
    JobFile,
    JobNotFound,
    JobService,
    JobState,
    ServiceSettings,
    ServiceStarting,
)
from ...jobs.disk.incomplete import shown_folder
from ...jobs.disk.paths import confine
from ...jobs.model import NO_LIMIT, JobPeer, JobTracker, TorrentFacts, TransferCounts, tracker_host
from ...jobs.organising.features import features_from, shown_comment
from ...jobs.queueing.queue import effective, share_limit_reached
from ...jobs.trackers import Tiers, parse_tier_list, tier_list_text
from ...jobs.tuning.groups import GroupSettings
from ...jobs.tuning.peerlimits import check_job_peers
from ...jobs.tuning.settings import LOGIN_FAILURES, MAX_LOGIN_FAILURES
from ...jsonvalue import JSON, JSONObject, JSONValue, as_float_text, as_str
from ...net.tracker.messages import scrape_url
from .. import jsontext
from .. import pages as paging
from ..access import TOKEN, AccessDenied, Gate, LoginRefused, Principal, acting, current
from ..pages import PartsResponse, array_parts, gather, joined_pages
from ..shutdown import DaemonStop
from ..stream import content_type
from ..users import Scope
from . import network
from . import transmission_jsonrpc as jsonrpc
from .asked import asked_as
from .edits import remove_jobs, rename_torrent_path, transmission_tiers
from .kept import Kept, KeptRecords, KeptRows, SameInputs, encode
from .programs import TR_FIELDS, tr_changes, tr_session
from .proxies import TR_FIELDS as PROXY_FIELDS
from .proxies import tr_changes as proxy_changes
from .proxies import tr_session as proxy_session
from .qbittorrent_records import magnet_uri

log = logging.getLogger(__name__)

RPC_VERSION = 17
RPC_VERSION_MINIMUM = 14
RPC_SEMVER = "5.3.0"
VERSION = f"4.0.6 (torrent_engine {__version__})"
VERSION_41 = f"4.1.0 (torrent_engine {__version__})"  # session_get's version over JSON-RPC
SESSION_HEADER = "X-Transmission-Session-Id"
MAX_KEPT_FIELD_SETS = 16  # the torrent-get field sets whose rows are kept (see _rows)
SCRAPE_ASKS = 4  # a torrent-get of trackerStats for at most this many torrents asks for their scrapes
TR_PARTIAL_SUFFIX = ".part"  # (its incomplete files' suffix: Transmission's rename-partial-files)
# where an answer's kept rows go (no job's text holds it: random, NULs)
ROWS_MARK = f"\x00rows-{secrets.token_hex(8)}\x00"
KILO = 1000  # Transmission 4 counts speed in kB/s of 1000 bytes
# what Transmission shows of a limit or queue that is off and was never set (its defaults): a
# switch turned on alone takes it, as Transmission takes the value it kept (this daemon keeps
# none: a limit is its value, 0 when off)
SPEED_LIMIT_SHOWN = 100  # kB/s: speed-limit-down/-up, and a torrent's limits while the session's are off
DOWNLOAD_QUEUE_SHOWN = 5
SEED_QUEUE_SHOWN = 10
RECENT = 60.0  # seconds: "recently-active"
PORT_TEST_TIMEOUT = 5.0  # seconds: port-test's connection to the daemon's own peer port

STOPPED, CHECK_WAIT, CHECK, DOWNLOAD_WAIT, DOWNLOAD, SEED_WAIT, SEED = range(7)
PRIORITY_OURS = {-1: 1, 0: 4, 1: 7}  # Transmission's low/normal/high as our 0..7
# the methods this daemon does not have, and why (an answer says so: never a fake success)
UNSUPPORTED = {
    "torrent-add-trackers": "",
}


# a method's answer (a torrent-get's rows as the records it keeps, written as their kept JSON)
Record = dict[str, JSON]  # a torrent's fields as torrent-get gives them
Answer = Mapping[str, "JSON | KeptRows[Record]"]
Method = Callable[[JSONObject], Awaitable[Answer]]


class RpcError(Exception):
    """An error ``result`` for the request (the answer is still HTTP 200, as Transmission's);
    over JSON-RPC an error object with ``code`` (Transmission's, else "invalid params")."""

    def __init__(self, message: str, code: int = jsonrpc.INVALID_PARAMS) -> None:
        super().__init__(message)
        self.code = code


class UnknownMethod(RpcError):
    """A method this daemon does not have."""

    def __init__(self, message: str) -> None:
        super().__init__(message, jsonrpc.METHOD_NOT_FOUND)


# -- translation (pure) ------------------------------------------------------------------------
def status(job: Job) -> int:
    """Transmission's status number of a job."""
    complete = job.progress >= 1.0 and job.total_size > 0
    match job.state:
        case JobState.CHECKING:
            return CHECK
        case JobState.QUEUED:
            return SEED_WAIT if complete else DOWNLOAD_WAIT
        case JobState.DOWNLOADING | JobState.FETCHING_METADATA:
            return DOWNLOAD
        case JobState.SEEDING:
            return SEED
    return STOPPED


def error_of(job: Job) -> tuple[int, str]:
    """Transmission's ``error`` and ``errorString``, as its announcer sets them: the job's own
    error (3, local), else the failure reason of a torrent's only tracker whose last answer
    refused the announce (2; with more trackers, one failing is not the torrent's error), else
    the warning a tracker's last answer gave (1); ``(0, "")`` otherwise. An announce that got no
    answer (the tracker not reached) changes neither: Transmission keeps them until the
    tracker's next answer."""
    if job.error:
        return 3, job.error
    trackers = job.trackers
    if len(trackers) == 1 and trackers[0].refusal:
        return 2, trackers[0].refusal
    for t in trackers:
        if t.warning:
            return 1, t.warning
    return 0, ""


def _tr_stats(counts: TransferCounts) -> dict[str, JSON]:
    """``session-stats``' ``current-stats`` or ``cumulative-stats`` (this run's, every run's)."""
    return {"uploadedBytes": counts.uploaded, "downloadedBytes": counts.downloaded,
            "filesAdded": counts.added, "sessionCount": counts.session_count,
            "secondsActive": counts.seconds_active}


def finished(job: Job, settings: ServiceSettings) -> bool:
    """Transmission's ``isFinished``: complete, stopped, and at its share limit (so an *arr may
    remove it)."""
    if status(job) != STOPPED or job.progress < 1.0:
        return False
    f, s = job.features, settings
    return share_limit_reached(job.ratio, job.seeding_time, effective(f.ratio_limit, s.ratio_limit),
                               effective(f.seeding_time_limit, s.seeding_time_limit),
                               idle_time=job.idle_seeding_time,
                               idle_limit=effective(f.idle_seeding_limit, s.idle_seeding_limit))


def our_priority(value: int) -> int:
    """Transmission's -1/0/1 as our 1..7."""
    return PRIORITY_OURS.get(max(-1, min(1, value)), 4)


def their_priority(ours: int) -> int:
    """Our 0..7 as Transmission's -1/0/1."""
    return -1 if ours in (1, 2, 3) else 1 if ours >= 6 else 0


# where a peer came from, as Transmission counts it (``peersFrom``; peers given by the user or
# a magnet's x.pe have no counter there) and marks it (``flagStr``)
_FROM = {"tracker": "fromTracker", "dht": "fromDht", "pex": "fromPex", "lsd": "fromLpd",
         "incoming": "fromIncoming"}
_FLAGS = (("dht", "H"), ("pex", "X"), ("incoming", "I"))


def peers_from(job: Job) -> dict[str, int]:
    """``peersFrom``: the connected peers counted by the first source each was heard from."""
    counts = dict.fromkeys(("fromCache", "fromDht", "fromIncoming", "fromLpd", "fromLtep", "fromPex",
                            "fromTracker"), 0)
    for p in job.peer_list:
        first = next((_FROM[s] for s in p.sources if s in _FROM), None)
        if first is not None:
            counts[first] += 1
    return counts


def flag_str(p: JobPeer) -> str:
    """A peer's ``flagStr``, in Transmission's order: T (uTP), O (our optimistic unchoke), D or d
    (we download from it, or would: interested and unchoked, or choked), U or u (the same the
    other way), K (it unchokes us, we want nothing), ? (we unchoke it, it wants nothing), E
    (RC4), then where it came from: H (DHT), X (PEX), I (incoming)."""
    w = p.wire
    wants, choked, asked, choking = ("am_interested" in w, "peer_choking" in w, "peer_interested" in w,
                                     "am_choking" in w)
    flags = ["T" if p.transport == "utp" else "", "O" if "optimistic" in w else "",
             ("d" if choked else "D") if wants else "", ("u" if choking else "U") if asked else "",
             "K" if not choked and not wants else "", "?" if not choking and not asked else "",
             "E" if "rc4" in w else ""]
    return "".join(flags) + "".join(f for s, f in _FLAGS if s in p.sources)


def peer_json(p: JobPeer) -> dict[str, JSON]:
    """One peer of ``torrent-get``'s ``peers``, as Transmission 3.00 gives it (its address without
    brackets; ``client``: us, ``peer``: it, as Transmission names the two ends)."""
    host, _, port = p.address.rpartition(":")
    w = p.wire
    return {"address": host.strip("[]"), "port": int(port) if port.isdigit() else 0, "clientName": p.client,
            "progress": p.progress, "rateToClient": int(p.download_rate), "rateToPeer": int(p.upload_rate),
            "isEncrypted": "rc4" in w, "isUTP": p.transport == "utp", "isIncoming": "incoming" in p.sources,
            "clientIsChoked": "peer_choking" in w, "clientIsInterested": "am_interested" in w,
            "peerIsChoked": "am_choking" in w, "peerIsInterested": "peer_interested" in w,
            "isDownloadingFrom": "am_interested" in w and "peer_choking" not in w,
            "isUploadingTo": "peer_interested" in w and "am_choking" not in w, "flagStr": flag_str(p)}


def bitfield_b64(states: list[int] | None) -> str:
    """Verified pieces as the base64 bitfield of ``pieces``."""
    if not states:
        return ""
    out = bytearray((len(states) + 7) // 8)
    for i, s in enumerate(states):
        if s == 2:
            out[i // 8] |= 0x80 >> (i % 8)
    return base64.b64encode(bytes(out)).decode()


class TransmissionRpc:
    """The ``/transmission/rpc`` route over one service."""

    def __init__(self, service: JobService, *, token: str, username: str | None, max_body: int,
                 max_torrent_size: int, gate: Gate | None = None,
                 daemon_stop: DaemonStop | None = None) -> None:
        self.service = service
        self.gate = gate if gate is not None else Gate(service, token=token)
        self.daemon_stop = daemon_stop if daemon_stop is not None else DaemonStop()  # session-close
        self.token = token.encode()
        self.username = username
        self.max_body = max_body
        self.max_torrent_size = max_torrent_size
        self.session_id = secrets.token_urlsafe(32)  # one per run; a client learns it from a 409
        self._kept: dict[tuple[str, ...], KeptRecords[Record]] = {}  # torrent-get's rows, per field set
        self._limits: SameInputs[ServiceSettings] = SameInputs(  # (what a row reads of the settings)
            lambda s: (s.ratio_limit, s.seeding_time_limit, s.idle_seeding_limit,
                       s.max_connections_per_torrent))
        # the jobs whose .torrent copy was written (_export; a job removed takes its copy along,
        # and an add of the torrent again is another job)
        self._exported: set[str] = set()
        methods: dict[str, Method] = {
            "session-get": self.session_get, "session-set": self.session_set,
            "session-stats": self.session_stats, "torrent-get": self.torrent_get,
            "torrent-add": self.torrent_add, "torrent-start": self._start(False),
            "torrent-start-now": self._start(True), "torrent-stop": self.torrent_stop,
            "torrent-verify": self._each(self.service.recheck), "torrent-reannounce": self.reannounce,
            "torrent-remove": self.torrent_remove, "torrent-set": self.torrent_set,
            "torrent-set-location": self.set_location, "free-space": self.free_space,
            "queue-move-top": self._queue("top"), "queue-move-bottom": self._queue("bottom"),
            "queue-move-up": self._queue("up"), "queue-move-down": self._queue("down"),
            "torrent-rename-path": self.rename_path,
            "blocklist-update": self.blocklist_update, "port-test": self.port_test,
            "group-get": self.group_get, "group-set": self.group_set,
            "session-close": self.session_close,
        }
        self._methods = methods

    def routes(self) -> list[Route]:
        """The RPC route (``/transmission/rpc``; Transmission also answers ``/transmission/rpc/``)."""
        return [Route("/transmission/rpc", self.handle, methods=["GET", "POST"]),
                Route("/transmission/rpc/", self.handle, methods=["GET", "POST"])]

    # -- plumbing ----------------------------------------------------------------------------
    async def _authorised(self, request: Request) -> Principal | None:
        """Who the request is: the API token (Bearer, or Basic's password), a user's key
        (Bearer), or a user of the daemon by Basic name and password (a failure counts against
        the address: ``LoginRefused`` after too many)."""
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            return self.gate.bearer(value.strip())
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            return None
        address = request.client.host if request.client is not None else ""
        if self.gate.users.any and self.gate.users.find(user) is not None:
            return await self.gate.password(user, password, address)
        self.gate.limiter.check(address)
        good = hmac.compare_digest(password.encode(), self.token)
        if self.username is not None and not hmac.compare_digest(user.encode(), self.username.encode()):
            good = False
        if not good:
            self.gate.limiter.failed(address)
            log.warning("Transmission RPC: refused Basic credentials for user %r from %s", user[:40], address)
            return None
        return TOKEN

    async def handle(self, request: Request) -> Response:
        """Auth (401), session id (409), then one old-protocol call or a JSON-RPC request or batch."""
        try:
            principal = await self._authorised(request)
        except LoginRefused as exc:
            return Response(b"<h1>429: Too Many Requests</h1><p>too many failed logins</p>", status_code=429,
                            media_type="text/html", headers={"Retry-After": str(int(exc.retry_after) + 1)})
        if principal is None:
            return Response(b"<h1>401: Unauthorized</h1>", status_code=401, media_type="text/html",
                            headers={"WWW-Authenticate": 'Basic realm="Transmission"'})
        with acting(principal):
            return await self._handle(request)

    async def _handle(self, request: Request) -> Response:
        session_header = {SESSION_HEADER: self.session_id}
        given = request.headers.get(SESSION_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.session_id.encode()):
            return Response(f"<h1>409: Conflict</h1><p>{SESSION_HEADER}: {self.session_id}</p>".encode(),
                            status_code=409, media_type="text/html",
                            headers={**session_header, jsonrpc.RPC_VERSION_HEADER: jsonrpc.RPC_SEMVER})
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                return Response(b"request too large", status_code=413, headers=session_header)
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            call = jsontext.loads(body or b"{}")
        except ValueError as exc:
            if b'"jsonrpc"' in body:  # (what it meant to be: 4.1's parse error, else the old answer)
                failed = jsonrpc.failure(None, jsonrpc.PARSE_ERROR, f"not JSON: {exc}")
                return self._jsonrpc_response(failed, session_header)
            return await self._legacy_response(None, "the request is not JSON", {}, session_header)
        if jsonrpc.is_jsonrpc(call):
            return self._jsonrpc_response(await self._jsonrpc_body(call), session_header)
        return await self._legacy_call(call, session_header)

    async def _legacy_call(self, call: JSONValue, session_header: dict[str, str]) -> Response:
        """The old protocol: ``{"method", "arguments", "tag"}`` in, ``{"result", "arguments",
        "tag"}`` out, an error as a ``result`` string."""
        tag: JSONValue = None
        answer: Answer = {}
        try:
            if not isinstance(call, dict):
                raise RpcError("the request must be a JSON object")
            tag = call.get("tag")
            method = call.get("method")
            arguments = call.get("arguments") or {}
            if not isinstance(arguments, dict):
                raise RpcError("arguments must be an object")
            answer = await self._run(method, arguments)
            outcome = "success"
        except RpcError as exc:
            outcome = str(exc)
        except (JobError, TorrentEngineError) as exc:
            outcome = str(exc)
        except (ValueError, TypeError) as exc:  # a value of the wrong kind in the arguments
            log.warning("Transmission RPC: refused: %s", exc)
            outcome = f"invalid argument: {exc}"
        if outcome != "success":
            answer = {}
        return await self._legacy_response(tag, outcome, answer, session_header)

    @staticmethod
    async def _legacy_response(tag: JSONValue, outcome: str, answer: Answer,
                               session_header: dict[str, str]) -> Response:
        """An old-protocol answer (a torrent-get's rows are written from their kept JSON, in the
        place a mark holds, joined ``LIST_PAGE`` at a time and sent in those parts, the loop let
        run as they are made)."""
        shown = {k: ROWS_MARK if isinstance(v, KeptRows) else v for k, v in answer.items()}
        result: dict[str, JSON] = {"result": outcome, "arguments": shown}
        if tag is not None:
            result["tag"] = tag
        rows = answer.get("torrents")
        if isinstance(rows, KeptRows):
            before, _, after = encode(result).partition(encode(ROWS_MARK))
            pages = await joined_pages(rows, Kept.json)
            return PartsResponse(array_parts(pages, before + b"[", b"]" + after),
                                 media_type="application/json", headers=session_header)
        return Response(encode(result), media_type="application/json", headers=session_header)

    async def _run(self, method: object, arguments: JSONObject) -> Answer:
        """One method (its old name) on its arguments (old names)."""
        if method in UNSUPPORTED:
            raise UnknownMethod(f"method not supported by this daemon: {method}{UNSUPPORTED[str(method)]}")
        handler = self._methods.get(method) if isinstance(method, str) else None
        if handler is None:
            raise UnknownMethod(f"method name not recognized: {str(method)[:60]}")
        try:
            self.gate.require(_SCOPES.get(str(method), Scope.ADMIN), str(method))
        except AccessDenied as exc:
            raise RpcError(str(exc)) from exc
        try:
            return await handler(arguments)
        except InvalidJobRequest as exc:
            name = _ARGUMENT_NAMES.get((str(method), exc.field or ""))
            if name is None:
                raise
            raise RpcError(f"{name}: {exc.reason}") from exc

    # -- JSON-RPC 2.0 (Transmission 4.1) -----------------------------------------------------------
    @staticmethod
    def _jsonrpc_response(body: JSON, session_header: dict[str, str]) -> Response:
        if body is None:  # (notifications only: nothing to answer, as Transmission: 204)
            return Response(status_code=204, headers=session_header)
        return Response(encode(body), media_type="application/json", headers=session_header)

    async def _jsonrpc_body(self, request: JSONValue) -> JSON:
        """The answer to a request or a batch (an array: answered by an array, without the
        notifications'; None when there is nothing to answer)."""
        if not isinstance(request, list):
            return await self._jsonrpc_call(request)
        if not request:
            return jsonrpc.failure(None, jsonrpc.INVALID_REQUEST, "an empty batch")
        answers = [await self._jsonrpc_call(one) for one in request]
        shown = [a for a in answers if a is not None]
        return shown or None

    async def _jsonrpc_call(self, request: JSONValue) -> dict[str, JSON] | None:
        try:
            call = jsonrpc.read_call(request)
        except jsonrpc.CallError as exc:
            return jsonrpc.failure(exc.id, exc.code, exc.error_string)
        method, arguments = jsonrpc.to_legacy(call.method, call.params)
        known = call.method in jsonrpc.LEGACY and (method in self._methods or method in UNSUPPORTED)
        if call.notification and (call.method in jsonrpc.NO_SIDE_EFFECTS or not known):
            return None
        try:
            if not known:
                raise UnknownMethod(f"method name not recognized: {call.method[:60]}")
            answer = await self._run(method, arguments)
            result = self._snake_answer(method, arguments, answer)
        except RpcError as exc:
            failed = jsonrpc.failure(call.id, exc.code, str(exc))
        except InvalidJobRequest as exc:  # (a bad value the service found: a folder outside the root …)
            failed = jsonrpc.failure(call.id, jsonrpc.INVALID_PARAMS, str(exc))
        except (JobError, TorrentEngineError) as exc:  # (the service cannot do it now)
            failed = jsonrpc.failure(call.id, jsonrpc.SYSTEM_ERROR, str(exc))
        except (ValueError, TypeError) as exc:  # a value of the wrong kind in the params
            log.warning("Transmission RPC: refused: %s", exc)
            failed = jsonrpc.failure(call.id, jsonrpc.INVALID_PARAMS, f"invalid argument: {exc}")
        else:
            return None if call.notification else jsonrpc.success(call.id, result)
        return None if call.notification else failed

    def _snake_answer(self, method: str, arguments: JSONObject, answer: Answer) -> dict[str, JSON]:
        """A method's answer under 4.1's names and values."""
        plain: dict[str, JSON] = {k: [kept.record for kept in v] if isinstance(v, KeptRows) else v
                                  for k, v in answer.items()}
        table = method == "torrent-get" and arguments.get("format") == "table"
        result: dict[str, JSON] = {}
        for key, value in plain.items():
            if table and key == "torrents" and isinstance(value, list):
                result[key] = jsonrpc.table_to_snake(list(value))
            else:
                result[jsonrpc.snake_case(key)] = jsonrpc.to_snake(value, key=key)
        if method == "session-get":  # (what 4.1 reports of itself, where it was asked)
            for key, value in (("rpc_version", jsonrpc.RPC_VERSION),
                               ("rpc_version_semver", jsonrpc.RPC_SEMVER), ("version", VERSION_41)):
                if key in result:
                    result[key] = value
        return result

    async def _recently_active(self) -> tuple[list[Job], list[int]]:
        """The listed jobs changed in the last ``RECENT`` seconds, and the numbers of those no
        longer listed, from the service's change log (the jobs changed, not every job: a job
        that transfers is marked as its numbers move, so one with a rate is among them). Read
        in steps, the loop let run between them: during a mass check or add, nearly every torrent
        changed within the minute, and 10 000 read in one go held the loop 100 ms a poll."""
        changes = await paging.stepped(
            self.service.client_changes_in_steps(None, within=RECENT, page=paging.STEP))
        jobs = self.gate.visible(job for listed in changes.torrents.values() for job in listed)
        return jobs, sorted({n for n in changes.removed_numbers if self.gate.shows_number(n)})

    async def _jobs(self, arguments: JSONObject) -> list[Job]:
        """The listed jobs the principal sees that ``ids`` names (numbers, hash strings,
        ``recently-active``; none = all)."""
        ids = arguments.get("ids")
        if ids == "recently-active":
            return (await self._recently_active())[0]
        if ids is None:
            return self.gate.client_jobs()
        if isinstance(ids, (int, str)):
            ids = [ids]
        if not isinstance(ids, list):
            raise RpcError("ids must be a number, a hash string, a list of them or \"recently-active\"")
        # (looked up: a details view's poll of one torrent makes no view of the others)
        numbers = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
        hashes = {i.strip().lower() for i in ids if isinstance(i, str)}
        return self.gate.visible(self.service.client_jobs_of(hashes, numbers))

    # -- session -------------------------------------------------------------------------------
    async def session_get(self, arguments: JSONObject) -> Answer:
        """``session-get`` (``fields`` narrows it)."""
        values = self._session_values()
        fields = arguments.get("fields")
        if isinstance(fields, list):
            return {k: v for k, v in values.items() if k in fields}
        return values

    def _session_values(self) -> dict[str, JSON]:
        s = self.service.get_settings()
        config = self.service.config
        stats = self.service.stats()
        try:
            free = shutil.disk_usage(self.service.download_root).free
        except OSError:
            free = -1
        values: dict[str, JSON] = {
            "rpc-version": RPC_VERSION, "rpc-version-minimum": RPC_VERSION_MINIMUM,
            "rpc-version-semver": RPC_SEMVER, "version": VERSION, "session-id": self.session_id,
            "download-dir": str(self.service.download_root), "download-dir-free-space": free,
            "incomplete-dir-enabled": s.incomplete_dir_enabled,
            "incomplete-dir": shown_folder(self.service.download_root, s),
            # (the port listened on, kept across starts unless random on start: a new one at each start)
            "peer-port": stats.listen_port or s.listen_port, "peer-port-random-on-start": s.random_port,
            "port-forwarding-enabled": config.port_mapping, "dht-enabled": s.dht_enabled,
            "pex-enabled": s.pex_enabled, "lpd-enabled": s.lsd_enabled,
            "utp-enabled": s.transport != "tcp", "tcp-enabled": s.transport != "utp",
            # (Transmission 4.1's: with both, uTP is tried first; an added torrent is not
            # sequential unless asked; 4.1 names it sequential_download, as a torrent's)
            "preferred_transports": _TRANSPORTS[s.transport],
            "sequentialDownload": False,
            "encryption": _ENCRYPTION[s.encryption],
            # (a limit off shows the value it had, kept: ServiceSettings.kept_limits)
            "speed-limit-down": _speed_shown(s.download_limit or int(s.kept("download_limit") or 0)),
            "speed-limit-down-enabled": s.download_limit > 0,
            "speed-limit-up": _speed_shown(s.upload_limit or int(s.kept("upload_limit") or 0)),
            "speed-limit-up-enabled": s.upload_limit > 0,
            "seedRatioLimit": s.ratio_limit if s.ratio_limit >= 0 else _or(s.kept("ratio_limit"), 2.0),
            "seedRatioLimited": s.ratio_limit >= 0,
            "idle-seeding-limit": _idle_minutes(s.idle_seeding_limit if s.idle_seeding_limit >= 0
                                                else _or(s.kept("idle_seeding_limit"), -1.0)),
            "idle-seeding-limit-enabled": s.idle_seeding_limit >= 0,
            "download-queue-enabled": s.queueing and s.max_active_downloads >= 0,
            "download-queue-size": s.max_active_downloads if s.max_active_downloads >= 0
            else DOWNLOAD_QUEUE_SHOWN,
            "seed-queue-enabled": s.queueing and s.max_active_uploads >= 0,
            "seed-queue-size": s.max_active_uploads if s.max_active_uploads >= 0 else SEED_QUEUE_SHOWN,
            # (stalled: slower than the slow rates, 2 KiB/s each unless changed, for that long)
            "queue-stalled-enabled": s.dont_count_slow_torrents,
            "queue-stalled-minutes": max(1, round(s.slow_torrent_inactive_time / 60)),
            "start-added-torrents": not s.add_paused, "rename-partial-files": bool(s.partial_file_suffix),
            # (an address past the threshold of failed logins is refused for login_ban_time: any door)
            "anti-brute-force-enabled": s.login_max_failures > 0,
            "anti-brute-force-threshold": s.login_max_failures or LOGIN_FAILURES,
            "cache-size-mb": 4,
            "config-dir": str(self.service.state_dir or ""),
            **tr_session(s),
            "default-trackers": tier_list_text(s.default_trackers) if s.default_trackers_enabled else "",
            **network.tr_session(s, self.service.blocklist.list_ranges), **proxy_session(s),
            "units": {"speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"], "speed-bytes": KILO,
                      "size-units": ["kB", "MB", "GB", "TB"], "size-bytes": KILO,
                      "memory-units": ["KiB", "MiB", "GiB", "TiB"], "memory-bytes": 1024},
        }
        return values

    async def session_set(self, arguments: JSONObject) -> Answer:
        """``session-set``: speed limits, the seed ratio limit, the queues and the incomplete
        folder change; any other known key only with its current value (else an error: not a
        fake success). A refused setting is named as the request named it."""
        current = self._session_values()
        try:
            await self.service.update_settings(**self._session_changes(arguments, current))
        except InvalidJobRequest as exc:  # (our setting in brackets)
            key = asked_as(exc.field, arguments, lambda one: self._session_changes(one, current), (RpcError,))
            if key is None:
                raise
            raise RpcError(f"{key}: {exc.reason} (the setting {exc.field})") from exc
        return {}

    def _session_changes(self, a: JSONObject, current: dict[str, JSON]) -> dict[str, object]:
        """The settings' changes a ``session-set`` of ``a`` asks for (``current``: what
        ``session-get`` answers now); ``RpcError`` for a key this daemon cannot change."""
        s = self.service.get_settings()
        changes: dict[str, object] = {}  # (each checked by the service: settings.updated)

        # A value and its switch. A switch turned on alone takes the value session-get shows
        # (the value it had when turned off, kept as Transmission keeps it: kept_limits; its
        # default where none was); a value given with its switch off is kept for when it is on;
        # a value given alone turns its switch on, as torrent-set's downloadLimit and
        # group-set's limits do (a client's spin box, enabled only while its switch is on, sends it
        # alone then). Transmission's GUIs send each change alone: a limit or queue size set that
        # way was lost, and a queue turned on again alone was refused (its size read as -1).
        def switched(value: str, switch: str) -> bool:
            return bool(a[switch]) if switch in a else value in a or bool(current[switch])

        kept = dict(s.kept_limits)  # (the values kept while off: a value given with its switch off)

        def limit(ours: str, value: float, switch: str, name: str, off: float) -> None:
            if switched(name, switch):
                changes[ours] = value
                return
            changes[ours] = off
            if name in a and value != off:
                kept[ours] = value
                changes["kept_limits"] = kept

        if "speed-limit-down" in a or "speed-limit-down-enabled" in a:
            down = _speed(a.get("speed-limit-down", current["speed-limit-down"]), "speed-limit-down")
            limit("download_limit", down, "speed-limit-down-enabled", "speed-limit-down", 0)
        if "speed-limit-up" in a or "speed-limit-up-enabled" in a:
            up = _speed(a.get("speed-limit-up", current["speed-limit-up"]), "speed-limit-up")
            limit("upload_limit", up, "speed-limit-up-enabled", "speed-limit-up", 0)
        if "seedRatioLimit" in a or "seedRatioLimited" in a:
            ratio = as_float_text(a.get("seedRatioLimit", current["seedRatioLimit"]), "seedRatioLimit")
            limit("ratio_limit", ratio, "seedRatioLimited", "seedRatioLimit", -1)
        if "idle-seeding-limit" in a or "idle-seeding-limit-enabled" in a:
            minutes = _whole(a.get("idle-seeding-limit", current["idle-seeding-limit"]), "idle-seeding-limit")
            limit("idle_seeding_limit", minutes * 60.0, "idle-seeding-limit-enabled", "idle-seeding-limit",
                  -1)
        if any(k in a for k in ("download-queue-enabled", "download-queue-size", "seed-queue-enabled",
                                "seed-queue-size")):
            dq = switched("download-queue-size", "download-queue-enabled")
            sq = switched("seed-queue-size", "seed-queue-enabled")
            down_size = _whole(a.get("download-queue-size", current["download-queue-size"]),
                               "download-queue-size")
            seed_size = _whole(a.get("seed-queue-size", current["seed-queue-size"]), "seed-queue-size")
            changes["queueing"] = dq or sq
            # (one queue on and the other off: the other has no maximum, its size is not kept;
            # both off: the queue is off, and both sizes are kept for when one is on again)
            changes["max_active_downloads"] = down_size if dq or not sq else -1
            changes["max_active_uploads"] = seed_size if sq or not dq else -1
            changes["max_active_torrents"] = -1
        if "start-added-torrents" in a:  # (off: new torrents are added paused, unless an add says)
            start = a["start-added-torrents"]
            if not isinstance(start, bool):
                raise RpcError(f"start-added-torrents: expected true or false, got {start!r}")
            changes["add_paused"] = not start
        if "rename-partial-files" in a:  # (the suffix a client of the other dialect chose stays)
            rename = a["rename-partial-files"]
            if not isinstance(rename, bool):
                raise RpcError(f"rename-partial-files: expected true or false, got {rename!r}")
            changes["partial_file_suffix"] = (s.partial_file_suffix or TR_PARTIAL_SUFFIX) if rename else ""
        if "queue-stalled-enabled" in a:  # (stalled jobs are not counted in the queues)
            changes["dont_count_slow_torrents"] = a["queue-stalled-enabled"]
        if "queue-stalled-minutes" in a:
            minutes = _whole(a["queue-stalled-minutes"], "queue-stalled-minutes")
            if minutes < 1:
                raise RpcError("queue-stalled-minutes: must be a whole number of minutes from 1")
            changes["slow_torrent_inactive_time"] = minutes * 60.0
        if "anti-brute-force-enabled" in a or "anti-brute-force-threshold" in a:
            guard: object = a.get("anti-brute-force-enabled", current["anti-brute-force-enabled"])
            if not isinstance(guard, bool):
                raise RpcError(f"anti-brute-force-enabled: expected true or false, got {guard!r}")
            threshold = _whole(a.get("anti-brute-force-threshold", current["anti-brute-force-threshold"]),
                               "anti-brute-force-threshold")
            if not 1 <= threshold <= MAX_LOGIN_FAILURES:
                raise RpcError("anti-brute-force-threshold: must be a whole number from 1 to "
                               f"{MAX_LOGIN_FAILURES}")
            if not guard and threshold != current["anti-brute-force-threshold"]:  # (not kept: said so)
                raise RpcError("anti-brute-force-threshold: kept only with anti-brute-force-enabled "
                               "(one setting here, login_max_failures: 0 while off)")
            changes["login_max_failures"] = threshold if guard else 0
        changes.update(tr_changes(a, s))  # (scripts run on events, the watched folder)
        changes.update(proxy_changes(a))
        changes.update(network.tr_changes(a))  # (the blocklist)
        changes.update(_peer_network_changes(a, current))
        if "incomplete-dir-enabled" in a:
            changes["incomplete_dir_enabled"] = a["incomplete-dir-enabled"]
        if "incomplete-dir" in a:
            changes["incomplete_dir"] = a["incomplete-dir"]
        if "default-trackers" in a:  # (none: turned off, as Transmission's "")
            tiers = parse_tier_list(a["default-trackers"], "default-trackers")
            changes.update(default_trackers=tiers, default_trackers_enabled=bool(tiers))
        handled = {"speed-limit-down", "speed-limit-down-enabled", "speed-limit-up", "speed-limit-up-enabled",
                   "seedRatioLimit", "seedRatioLimited", "idle-seeding-limit", "idle-seeding-limit-enabled",
                   "download-queue-enabled", "download-queue-size", "seed-queue-enabled", "seed-queue-size",
                   "incomplete-dir-enabled", "incomplete-dir", "default-trackers", "queue-stalled-enabled",
                   "start-added-torrents", "anti-brute-force-enabled", "anti-brute-force-threshold",
                   "queue-stalled-minutes", "rename-partial-files",
                   *TR_FIELDS, *PROXY_FIELDS, *network.TR_FIELDS, *_PEER_NETWORK_FIELDS}
        for key, value in a.items():
            if key in handled or key not in current:
                continue
            if value != current[key]:
                raise RpcError(f"{key}: cannot be changed on this daemon (it stays {current[key]!r})")
        return changes

    async def blocklist_update(self, arguments: JSONObject) -> Answer:
        """``blocklist-update``: fetch ``blocklist-url`` now; the rules in force."""
        return {"blocklist-size": await self.service.blocklist.update()}

    async def session_close(self, arguments: JSONObject) -> Answer:
        """``session-close``: the daemon stops, as transmission-daemon does (an admin's; answered
        first)."""
        self.daemon_stop("Transmission's session-close")
        return {}

    async def port_test(self, arguments: JSONObject) -> Answer:
        """``port-test`` (``ip_protocol`` ipv4/ipv6): whether the peer port accepts a TCP
        connection *on this machine* (the listen address, else loopback). Transmission asks a
        test service on the internet; this daemon asks nobody outside, so an open answer does
        not mean the port is reachable from outside (a NAT or firewall is not seen)."""
        protocol = arguments.get("ip_protocol")
        if protocol not in (None, "ipv4", "ipv6"):
            raise RpcError("invalid ip protocol string (ipv4 or ipv6)")
        port = self.service.stats().listen_port
        listen_host = self.service.config.listen_host
        host = listen_host if listen_host not in ("", "0.0.0.0", "::") \
            else "::1" if protocol == "ipv6" else "127.0.0.1"
        shown = protocol or ("ipv6" if ":" in host else "ipv4")
        is_open = False
        if port:
            with anyio.move_on_after(PORT_TEST_TIMEOUT):
                try:
                    stream = await anyio.connect_tcp(host, port)
                except OSError:
                    pass
                else:
                    await stream.aclose()
                    is_open = True
        return {"port-is-open": is_open, "ip_protocol": shown}

    async def session_stats(self, arguments: JSONObject) -> Answer:
        """``session-stats``."""
        stats = self.service.stats()
        if current().reads_all:  # (every job: counted by state, no view of each made)
            states = self.service.client_states()
        else:
            states = Counter(j.state for j in self.gate.client_jobs())
        paused = states[JobState.PAUSED] + states[JobState.ERROR] + states[JobState.FAILED]
        return {"activeTorrentCount": states.total() - paused, "pausedTorrentCount": paused,
                "torrentCount": states.total(), "downloadSpeed": int(stats.download_rate),
                "uploadSpeed": int(stats.upload_rate), "cumulative-stats": _tr_stats(stats.transfer.all_time),
                "current-stats": _tr_stats(stats.transfer.session)}

    # -- torrents ------------------------------------------------------------------------------
    def _fields(self, job: Job, fields: tuple[str, ...], *, live: bool = False) -> Record:
        torrent = self.service.metainfo(job.id) if _METAINFO_FIELDS.intersection(fields) else None
        settings = self.service.get_settings()
        peer_limit = network.tr_peer_limit(job.options.max_peers or settings.max_connections_per_torrent)
        ratio_limit = job.features.ratio_limit
        mode = 0 if ratio_limit is None else 2 if ratio_limit == NO_LIMIT else 1
        idle_limit = job.features.idle_seeding_limit
        idle_mode = 0 if idle_limit is None else 2 if idle_limit == NO_LIMIT else 1
        left = max(0, job.total_size - job.done_size)
        eta = -1 if job.eta is None else int(job.eta)
        files_meta: list[dict[str, JSON]] = []
        if "files" in fields:
            for f in job.files:
                begin, last = torrent.file_span(f.index) if torrent is not None else (0, -1)
                files_meta.append({"name": f.path, "length": f.size,
                                   "bytesCompleted": int(f.progress * f.size), "beginPiece": begin,
                                   "endPiece": last + 1})

        def web_seeds() -> list[dict[str, JSON]]:
            return self._web_seeds(job, torrent)

        @functools.cache  # (pieces and availability: the states made once, not three times)
        def piece_states() -> list[int] | None:
            return self.service.piece_states(job.id)

        @functools.cache
        def piece_counts() -> list[int]:
            return self.service.piece_availability(job.id, piece_states())

        values: dict[str, Callable[[], JSON]] = {
            "id": lambda: job.number, "hashString": lambda: job.info_hash, "name": lambda: job.name,
            "status": lambda: status(job), "error": lambda: error_of(job)[0],
            "errorString": lambda: error_of(job)[1], "eta": lambda: eta,
            "etaIdle": lambda: _eta_idle(job, settings.idle_seeding_limit),
            "isFinished": lambda: finished(job, settings),
            "isStalled": lambda: job.state is JobState.DOWNLOADING and job.download_rate == 0,
            "isPrivate": lambda: bool(torrent.private) if torrent else False,
            "leftUntilDone": lambda: left, "sizeWhenDone": lambda: job.total_size,
            "totalSize": lambda: torrent.total_length if torrent is not None else job.total_size,
            # (nothing wanted, every file skipped: 0, as Transmission's ratio of 0 bytes reads)
            "percentDone": lambda: job.progress if job.total_size else 0.0,
            "percentComplete": lambda: job.progress,
            # (a magnet paused or queued before its metadata came has none either: it said 1)
            "metadataPercentComplete": lambda: 0.0 if job.torrent_size is None else 1.0,
            "haveValid": lambda: job.done_size, "haveUnchecked": lambda: 0,
            "desiredAvailable": lambda: _desired_available(job, torrent, piece_states(), left,
                                                           piece_counts()),
            "corruptEver": lambda: job.corrupt, "rateDownload": lambda: int(job.download_rate),
            "rateUpload": lambda: int(job.upload_rate),
            "uploadRatio": lambda: -1 if job.downloaded == 0 and job.done_size == 0 else round(job.ratio, 4),
            "uploadedEver": lambda: job.uploaded, "downloadedEver": lambda: job.downloaded,
            "addedDate": lambda: int(job.created_at), "startDate": lambda: int(job.started_at),
            "activityDate": lambda: int(job.active_at or 0),  # (when it last sent or received a byte)
            "editDate": lambda: int(job.updated_at),
            # (when a download completed it: none for data whole at its add, as Transmission says)
            "doneDate": lambda: int(job.completed_at or 0) if job.downloaded else 0,
            "downloadDir": lambda: job.options.save_path,
            "peersConnected": lambda: job.peers, "peersGettingFromUs": lambda: sum(
                1 for p in job.peer_list if p.upload_rate > 0),
            "peersSendingToUs": lambda: sum(1 for p in job.peer_list if p.download_rate > 0),
            "peersFrom": lambda: peers_from(job),
            "peers": lambda: [peer_json(p) for p in job.peer_list],
            "queuePosition": lambda: max(0, job.queue_position - 1),
            # (the session's in its mode, as session-get shows it: 2.0 while none is set)
            "seedRatioLimit": lambda: ratio_limit if ratio_limit is not None and ratio_limit >= 0
            else settings.ratio_limit if settings.ratio_limit >= 0 else 2.0,
            "seedRatioMode": lambda: mode, "seedIdleMode": lambda: idle_mode,
            "seedIdleLimit": lambda: _idle_minutes(idle_limit if idle_limit is not None and idle_limit >= 0
                                                   else settings.idle_seeding_limit),
            "downloadLimit": lambda: _job_speed_shown(job, "download_limit", settings),
            "downloadLimited": lambda: job.options.download_limit > 0,
            "uploadLimit": lambda: _job_speed_shown(job, "upload_limit", settings),
            "uploadLimited": lambda: job.options.upload_limit > 0, "honorsSessionLimits": lambda: True,
            "bandwidthPriority": lambda: 0,
            "peer-limit": lambda: peer_limit, "maxConnectedPeers": lambda: peer_limit,
            "labels": lambda: list(job.features.tags),
            "group": lambda: self.service.job_bandwidth_group(job.id),
            "secondsSeeding": lambda: int(job.seeding_time),
            "secondsDownloading": lambda: int(job.downloading_time),
            "recheckProgress": lambda: job.progress if job.state is JobState.CHECKING else 0.0,
            "magnetLink": lambda: magnet_uri(job, TorrentFacts.of(torrent) if torrent is not None else None),
            "comment": lambda: shown_comment(job.features, torrent),
            "creator": lambda: (torrent.created_by or "") if torrent else "",
            "dateCreated": lambda: (torrent.creation_date or 0) if torrent else 0,
            "pieceCount": lambda: torrent.num_pieces if torrent else 0,
            "pieceSize": lambda: torrent.piece_length if torrent else 0,
            "pieces": lambda: bitfield_b64(piece_states()),
            "availability": lambda: _availability(piece_states(), piece_counts()),
            "files": lambda: files_meta, "file-count": lambda: len(job.files),
            "fileStats": lambda: [{"bytesCompleted": int(f.progress * f.size), "wanted": f.selected,
                                   "priority": their_priority(f.priority)} for f in job.files],
            "priorities": lambda: [their_priority(f.priority) for f in job.files],
            "wanted": lambda: [1 if f.selected else 0 for f in job.files],
            "trackers": lambda: [{"announce": t.url, "id": n, "scrape": their_scrape(t.url), "tier": t.tier,
                                  "sitename": their_host(t.url)[1]} for n, t in enumerate(job.trackers)],
            "trackerList": lambda: tier_list_text(_tiers(job)),
            "trackerStats": lambda: self._tracker_stats(job, live),
            "webseeds": lambda: self.service.web_seeds(job.id) if torrent else [],
            "webseedsSendingToUs": lambda: sum(1 for w in web_seeds() if w["is_downloading"]),
            "webseedsEx": web_seeds, "sequentialDownload": lambda: job.options.sequential,
            "manualAnnounceTime": lambda: _manual_announce_time(job),
            "primary-mime-type": lambda: primary_mime_type(job.files),
            "torrentFile": lambda: self._torrent_file(job),
        }
        return {name: values[name]() for name in fields if name in values}

    def _web_seeds(self, job: Job, torrent: Torrent | None) -> list[dict[str, JSON]]:
        """``webseeds_ex``: each BEP 19 web seed of the job (as edited, else the metainfo's http(s)
        ones), ``is_downloading`` while the job's session uses it (not given up, not failing)
        and wants pieces. The engine counts a web seed's bytes, not its rate:
        ``download_bytes_per_second`` is 0."""
        if torrent is None:
            return []
        live = {w.url: w for w in self.service.web_seed_states(job.id)}
        downloading = job.state is JobState.DOWNLOADING
        out: list[dict[str, JSON]] = []
        for url in self.service.web_seeds(job.id):
            state = live.get(url)
            used = state is not None and not state.gave_up and not state.failing
            out.append({"url": url, "is_downloading": downloading and used, "download_bytes_per_second": 0})
        return out

    def _torrent_file(self, job: Job) -> str:
        """The absolute path of a copy of the job's .torrent in the state folder, as Transmission
        gives its own copy's (``_export`` writes it before the rows are made; a magnet's: where it
        goes once the metadata comes, as Transmission names it before it exists); "" without a
        state folder."""
        path = self.service.manager.exported_metainfo_path(job.info_hash)
        return str(path.absolute()) if path is not None else ""

    async def _export(self, jobs: list[Job]) -> None:
        """The .torrent copies ``torrentFile`` names, written (a worker thread) for the jobs whose
        copy this dialect has not written yet: the daemon keeps its metainfo in one database,
        and a client such as FlexGet reads the file."""
        manager = self.service.manager
        if not manager.keeps_saved:
            return
        wanted = {job.info_hash: job.id for job in jobs if job.id not in self._exported}
        if wanted:
            done = await anyio.to_thread.run_sync(manager.export_metainfo, list(wanted))
            self._exported.update(wanted[info_hash] for info_hash in done)

    def _tracker_stats(self, job: Job, live: bool) -> list[dict[str, JSON]]:
        """``trackerStats``; ``live`` (not kept: a details view's), a tracker whose announce waits
        for its answer now is ``announceState`` 3, active, as Transmission shows one."""
        announcing: frozenset[str] = frozenset()
        if live:
            try:
                announcing = self.service.announcing(job.id)
            except JobNotFound:  # (removed since it was listed)
                pass
        return [_tracker_stat(n, t, job.announce_times(t)[0], t.url in announcing)
                for n, t in enumerate(job.trackers)]

    async def _rows(self, jobs: list[Job], fields: tuple[str, ...], *, every: bool) -> KeptRows[Record]:
        """Each job's ``fields``, kept (per set of fields asked) while the job's snapshot and the
        share settings are the same objects; made anew when they include the pieces or the web
        seeds in use (read live from the session, not from the snapshot), or the trackers' stats of
        a details view (``SCRAPE_ASKS`` torrents at most: an announce in flight shown). ``every``:
        ``jobs`` are all the listed jobs. ``STEP`` jobs at a time, the loop let run between two
        once the work has had its turn."""
        pages = [jobs[at:at + paging.STEP] for at in range(0, len(jobs), paging.STEP)]
        if _LIVE_FIELDS.intersection(fields) or ("trackerStats" in fields and len(jobs) <= SCRAPE_ASKS):
            return KeptRows(await gather(pages, lambda page: [
                Kept(job, (), self._fields(job, fields, live=True)) for job in page]))
        kept = self._kept.get(fields)
        if kept is None:
            while len(self._kept) >= MAX_KEPT_FIELD_SETS:  # (clients ask for a few sets each)
                del self._kept[next(iter(self._kept))]
            kept = self._kept[fields] = KeptRecords()
        limits = self._limits(self.service.get_settings())
        make = partial(self._fields, fields=fields)
        if "group" in fields:  # (a job's group may change while its snapshot does not: a rule changed)
            group = self.service.job_bandwidth_group
            rows = KeptRows(await gather(pages, lambda page: [
                kept.get(job, (*limits, group(job.id)), make) for job in page]))
        else:
            rows = KeptRows(await gather(pages, lambda page: [kept.get(job, limits, make) for job in page]))
        if every:
            kept.prune(rows)
        return rows

    async def torrent_get(self, arguments: JSONObject) -> Answer:
        """``torrent-get`` ``fields``, ``ids``, ``format`` (objects or table)."""
        fields = arguments.get("fields")
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise RpcError("torrent-get needs \"fields\": a list of field names")
        wanted = tuple(dict.fromkeys(f for f in fields if isinstance(f, str)))
        recent = arguments.get("ids") == "recently-active"
        removed: list[int] = []
        if recent:  # (and the numbers of those removed lately: one look at the change log)
            listed, removed = await self._recently_active()
        elif arguments.get("ids") is None:
            listed = await gather(self.service.client_pages(paging.STEP, owner=self.gate.owner_shown()),
                                  self.gate.visible)
        else:
            listed = await self._jobs(arguments)
        jobs = sorted(listed, key=lambda j: j.number)
        if "trackerStats" in wanted and len(jobs) <= SCRAPE_ASKS:  # (a details view: scraped if due,
            for job in jobs:  # in the background; a list of every torrent asks for none)
                self.service.scrape_trackers(job.id)
        if "torrentFile" in wanted:
            await self._export(jobs)
        kept = await self._rows(jobs, wanted, every=arguments.get("ids") is None)
        out: dict[str, JSON | KeptRows[Record]]
        if arguments.get("format") == "table":
            rows = [k.record for k in kept]
            names = [f for f in wanted if not rows or f in rows[0]]
            out = {"torrents": [names, *[[row[n] for n in names] for row in rows]]}
        else:
            out = {"torrents": kept}
        if recent:
            out["removed"] = list(removed)
        return out

    async def torrent_add(self, arguments: JSONObject) -> Answer:
        """``torrent-add`` ``filename`` (magnet or http(s) URL) or ``metainfo`` (base64), with
        ``download-dir``, ``paused``, ``files-wanted``/``files-unwanted``,
        ``priority-high``/``-normal``/``-low``, ``labels``: one add, the job's files and their
        priorities its own from its first snapshot."""
        request = self._add_request(arguments)
        for key in ("cookies", "bandwidthPriority", "sequentialDownloadFromPiece"):
            if arguments.get(key) not in ("", 0, None):
                raise RpcError(f"{key} is not supported by this daemon")
        keys = ("files-wanted", "files-unwanted", "priority-high", "priority-normal", "priority-low")
        if isinstance(request, TorrentUrl) and any(arguments.get(k) for k in keys):
            # (the files are named by index: the service fetches the .torrent first, by its policy)
            request = Parsed(await self.service.fetch_metainfo(request.url))
        source = request.torrent if isinstance(request, Parsed) else None
        files: list[int] | None = None
        priorities: dict[int, int] = {}
        wanted = arguments.get("files-wanted")
        unwanted = arguments.get("files-unwanted")
        if isinstance(source, Torrent):
            count = len(source.files)
            if wanted or unwanted:
                chosen = set(_indices(wanted, count)) if wanted else set(range(count))
                chosen -= set(_indices(unwanted, count)) if unwanted else set()
                files = sorted(i for i in chosen if not source.files[i].pad)
            for key, prio in (("priority-low", -1), ("priority-normal", 0), ("priority-high", 1)):
                for i in _indices(arguments.get(key) or [], count):
                    if not source.files[i].pad and (files is None or i in files):
                        priorities[i] = our_priority(prio)
        elif wanted or unwanted:
            raise RpcError("files-wanted/files-unwanted need the metainfo (not a magnet link)")
        labels = arguments.get("labels") or []
        save_path = arguments.get("download-dir") or None
        options = AddOptions(save_path=None if save_path is None else as_str(save_path, "download-dir"),
                             # (absent: start-added-torrents, the settings' add_paused)
                             paused=None if arguments.get("paused") is None else bool(arguments["paused"]),
                             sequential=bool(arguments.get("sequentialDownload", False)),
                             files=None if files is None else tuple(files),
                             file_priorities=tuple(sorted(priorities.items())),
                             features=features_from({"tags": labels}) if labels else None,
                             max_peers=check_job_peers(arguments.get("peer-limit") or 0, "peer-limit"))
        async with self.gate.adding(options, [request]) as options:
            try:
                job, created = await self.service.add(request, options)
            except DuplicateJob as exc:  # (another folder or files asked: the job as it is, as Transmission)
                job, created = self.service.get(exc.job_id), False
            job = await self.gate.added(job, created)
        item: dict[str, JSON] = {"id": job.number, "name": job.name, "hashString": job.info_hash}
        if not created:  # (an unfinished job of it was there, or an add of it in flight)
            return {"torrent-duplicate": item}
        return {"torrent-added": item}

    def _add_request(self, arguments: JSONObject) -> AddTorrent:
        """What ``torrent-add`` asks to add, a .torrent or a magnet link read (a URL: fetched by
        the service), its faults answered as Transmission answers them."""
        metainfo = arguments.get("metainfo")
        filename = arguments.get("filename")
        if isinstance(metainfo, str) and metainfo:
            limit = min(self.max_torrent_size, self.service.get_settings().torrent_file_size_limit)
            refusal = encoded_over_the_limit(len(metainfo), limit)
            if refusal is not None:
                raise RpcError(f"metainfo is too large: {refusal}")
            try:
                data = base64.b64decode(metainfo, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise RpcError(f"invalid or corrupt torrent file: {exc}", jsonrpc.CORRUPT_TORRENT) from exc
            refusal = over_the_limit(len(data), limit)
            if refusal is not None:
                raise RpcError(f"metainfo is too large: {refusal}")
            try:
                return Parsed(read_add_torrent(TorrentBytes(data)))
            except ValueError as exc:  # (an AddTorrentError is a ValueError)
                raise RpcError(f"invalid or corrupt torrent file: {exc}", jsonrpc.CORRUPT_TORRENT) from exc
        if isinstance(filename, str) and filename:
            try:
                request = from_text(filename, files=False)
            except AddTorrentError as exc:
                raise RpcError("filename must be a magnet link or an http(s) URL (a path on the daemon's "
                               "machine is not supported: send the file as metainfo)") from exc
            if isinstance(request, MagnetLink):
                try:
                    return read_link(request)  # (a BEP 46 link: checked, resolved by the add)
                except AddTorrentError as exc:
                    raise RpcError(f"invalid magnet link: {exc}") from exc
            return request
        raise RpcError("no filename or metainfo specified")

    def _start(self, now: bool) -> Method:
        async def start(arguments: JSONObject) -> Answer:
            jobs = await self._jobs(arguments)
            if now:  # "start now": past the queue
                await self.service.set_features([j.id for j in jobs], force_start=True)
            await _quietly(self.service.each((job.id for job in jobs), self.service.resume))
            return {}
        return start

    async def torrent_stop(self, arguments: JSONObject) -> Answer:
        """``torrent-stop``."""
        await _quietly(self.service.each((job.id for job in await self._jobs(arguments)), self.service.pause))
        return {}

    def _each(self, action: Callable[[str], Awaitable[object]]) -> Method:
        async def run(arguments: JSONObject) -> Answer:
            await _quietly(self.service.each((job.id for job in await self._jobs(arguments)), action))
            return {}
        return run

    async def reannounce(self, arguments: JSONObject) -> Answer:
        """``torrent-reannounce``."""
        await _quietly(self.service.each((job.id for job in await self._jobs(arguments)),
                                         self.service.reannounce))
        return {}

    async def torrent_remove(self, arguments: JSONObject) -> Answer:
        """``torrent-remove`` (``delete-local-data``)."""
        delete = bool(arguments.get("delete-local-data", False))
        await remove_jobs(self.service, await self._jobs(arguments), delete_files=delete)
        return {}

    async def torrent_set(self, arguments: JSONObject) -> Answer:
        """``torrent-set``: limits, ratio limit and mode, files wanted and priorities, labels,
        queue position, location; what cannot be honoured is an error (nothing changed)."""
        a = arguments
        jobs = await self._jobs(a)
        # (the trackers of every job, checked before anything changes)
        trackers = {job.id: transmission_tiers(self.service, job, a) for job in jobs}
        if a.get("bandwidthPriority", 0) != 0:
            raise RpcError("bandwidthPriority is not supported by this daemon (only 0, normal)")
        if a.get("honorsSessionLimits", True) is False:
            raise RpcError("honorsSessionLimits false is not supported by this daemon")
        group = a.get("group")
        if group is not None:
            if not isinstance(group, str):
                raise RpcError(f"group: expected a bandwidth group's name, got {group!r}")
            if group and not any(g.name == group for g in self.service.bandwidth_groups()):
                try:
                    await self.service.set_bandwidth_group(group)  # (made on first use, as Transmission does)
                except InvalidJobRequest as exc:
                    raise RpcError(f"group: {exc.reason}") from exc
        if a.get("sequentialDownloadFromPiece"):
            raise RpcError("sequential_download_from_piece is not supported by this daemon (a sequential "
                           "download starts from the first piece)")
        features: dict[str, object] = {}  # (checked whole by features_from before any change)
        if "seedRatioMode" in a or "seedRatioLimit" in a:
            features["ratio_limit"] = _by_mode(a, "seedRatioMode", lambda: as_float_text(
                a.get("seedRatioLimit", 0.0), "seedRatioLimit"))
        if "seedIdleMode" in a or "seedIdleLimit" in a:  # (minutes)
            features["idle_seeding_limit"] = _by_mode(a, "seedIdleMode", lambda: _whole(
                a.get("seedIdleLimit", 0), "seedIdleLimit") * 60.0)
        if "labels" in a:
            features["tags"] = a["labels"] or []
        if features:
            features_from(features)  # (checked before anything changes)
        peer_limit = check_job_peers(a["peer-limit"], "peer-limit") if "peer-limit" in a else None
        settings = self.service.get_settings()
        updates: dict[str, Callable[[], Awaitable[Job]]] = {}  # (worked out before any job is changed)
        for job in jobs:
            limits: dict[str, int] = {}
            kept: dict[str, int] = {}  # (a value sent with its switch off: kept for when it is on)
            for key, ours in (("downloadLimit", "download_limit"), ("uploadLimit", "upload_limit")):
                limited = a.get(key + "ed")
                if key in a or limited is not None:  # (turned on alone: the value torrent-get shows)
                    shown = _job_speed_shown(job, ours, settings)
                    value = _speed(a.get(key, shown), key)
                    on = limited if limited is not None else (getattr(job.options, ours) > 0 or key in a)
                    limits[ours] = value if on else 0
                    if not on and key in a:
                        kept[ours] = value
            # (a file is named by its place in torrent-get's files, which leaves pad files out:
            # the metainfo's index of each place)
            prios: dict[int, int] = {}
            index = [f.index for f in job.files]
            current = {f.index: f.priority for f in job.files}
            for key, prio in (("priority-low", -1), ("priority-normal", 0), ("priority-high", 1)):
                for i in _indices(a.get(key) or [], len(index)):
                    prios[index[i]] = our_priority(prio)
            for i in _indices(a.get("files-wanted") or [], len(index)):
                prios[index[i]] = prios.get(index[i], current[index[i]] or 4) or 4
            for i in _indices(a.get("files-unwanted") or [], len(index)):
                prios[index[i]] = 0
            sequential = bool(a["sequentialDownload"]) if "sequentialDownload" in a else None
            if peer_limit is not None or limits or prios or sequential is not None:
                updates[job.id] = partial(
                    self.service.update, job.id, file_priorities=prios or None, sequential=sequential,
                    download_limit=limits.get("download_limit"), upload_limit=limits.get("upload_limit"),
                    max_peers=peer_limit, kept_download_limit=kept.get("download_limit"),
                    kept_upload_limit=kept.get("upload_limit"))

        async def change(job_id: str) -> None:
            if job_id in updates:
                await updates[job_id]()
            tiers = trackers[job_id]
            if tiers is not None:
                await self.service.set_trackers(job_id, tiers)
            if group is not None:
                await self.service.set_job_group(job_id, group)

        if features:  # (the same for every job: one change of many)
            await self.service.set_features([job.id for job in jobs], **features)
        # many at a time (their records written together: one after the other, 10 000 took seconds)
        await self.service.every((job.id for job in jobs), change)  # (the first refusal raised after)
        for job in jobs:  # (in order: each place taken after the one before)
            if "queuePosition" in a:
                await self._move_to(job, _whole(a["queuePosition"], "queuePosition"))
            if a.get("location"):
                location = str(a["location"])
                await self.service.set_location(job.id, self.gate.confine(location, "location") or location)
        return {}

    async def group_get(self, arguments: JSONObject) -> Answer:
        """``group-get`` (``group``: a name or a list of names, as docs/rpc-spec.md says, or
        ``name`` as libtransmission's groupGet reads it; absent: every group)."""
        key = "group" if "group" in arguments else "name"
        wanted = arguments.get(key)
        if isinstance(wanted, str):
            names: set[str] | None = {wanted}
        elif isinstance(wanted, list) and all(isinstance(n, str) for n in wanted):
            names = {n for n in wanted if isinstance(n, str)}
        elif wanted is None:
            names = None
        else:
            raise RpcError(f"{key}: expected a bandwidth group's name or a list of names, got {wanted!r}")
        return {"group": [transmission_group(g) for g in self.service.bandwidth_groups()
                          if names is None or g.name in names]}

    async def group_set(self, arguments: JSONObject) -> Answer:
        """``group-set``: ``name`` (the group is made when there is none, as Transmission does), its
        speed limits, ``honorsSessionLimits``, and this daemon's ``weight``."""
        name = arguments.get("name")
        if isinstance(name, str):
            name = name.strip()  # (as Transmission's groupSet strips it)
        if not isinstance(name, str) or not name:
            raise RpcError(f"name: no group name given, got {name!r}")
        current = next((g for g in self.service.bandwidth_groups() if g.name == name), None)
        changes: dict[str, object] = {}
        for key, ours in (("speed-limit-down", "download_limit"), ("speed-limit-up", "upload_limit")):
            enabled = arguments.get(key + "-enabled")
            if enabled is not None and not isinstance(enabled, bool):
                raise RpcError(f"{key}-enabled: expected true or false, got {enabled!r}")
            if key in arguments or enabled is not None:
                before = getattr(current, ours) if current is not None else 0
                value = _speed(arguments.get(key, before // KILO), key)
                on = enabled if enabled is not None else (before > 0 or key in arguments)
                changes[ours] = value if on else 0
        if "honorsSessionLimits" in arguments:
            honors = arguments["honorsSessionLimits"]
            if not isinstance(honors, bool):
                raise RpcError(f"honorsSessionLimits: expected true or false, got {honors!r}")
            changes["honors_global"] = honors
        if "weight" in arguments:
            changes["weight"] = arguments["weight"]
        try:
            await self.service.set_bandwidth_group(name, **changes)
        except InvalidJobRequest as exc:
            raise RpcError(f"{exc.field}: {exc.reason}") from exc
        return {}

    async def rename_path(self, arguments: JSONObject) -> Answer:
        """``torrent-rename-path`` ``ids`` (one torrent), ``path``, ``name``: answers ``{id, name,
        path}`` as Transmission 3 and 4 do."""
        jobs = await self._jobs(arguments) if arguments.get("ids") is not None else []
        if len(jobs) != 1:
            raise RpcError("torrent-rename-path requires 1 torrent")
        return await rename_torrent_path(self.service, jobs[0], arguments.get("path"), arguments.get("name"))

    async def _move_to(self, job: Job, position: int) -> None:
        order = self.service.queue_order()
        if job.id not in order:
            return
        if position <= 0:
            await self.service.move_in_queue([job.id], "top", while_off=True)
            return
        steps = order.index(job.id) - min(position, len(order) - 1)
        for _ in range(abs(steps)):
            await self.service.move_in_queue([job.id], "up" if steps > 0 else "down", while_off=True)

    async def set_location(self, arguments: JSONObject) -> Answer:
        """``torrent-set-location`` ``location`` (inside the download root): with ``move`` true
        the files are moved there; without (Transmission's default: ``transmission-remote
        --find``) nothing moves, the data is looked for there and verified."""
        location = arguments.get("location")
        if not isinstance(location, str) or not location:
            raise RpcError("location must be a folder")
        move = arguments.get("move", False)
        if not isinstance(move, bool):
            raise RpcError("move must be a boolean")
        location = self.gate.confine(location, "location") or location
        for job in await self._jobs(arguments):
            await self.service.set_location(job.id, location, move=move)
        return {}

    async def free_space(self, arguments: JSONObject) -> Answer:
        """``free-space`` ``path`` (inside the download root)."""
        path = arguments.get("path")
        if not isinstance(path, str):
            raise RpcError("path must be a string")
        folder = confine(self.service.download_root, path)
        try:
            usage = shutil.disk_usage(folder)
        except OSError as exc:
            raise RpcError(f"{path}: {exc.strerror or exc}") from exc
        return {"path": path, "size-bytes": usage.free, "total_size": usage.total}

    def _queue(self, where: str) -> Method:
        async def move(arguments: JSONObject) -> Answer:
            jobs = await self._jobs(arguments)
            await self.service.move_in_queue([j.id for j in jobs], where, while_off=True)
            return {}
        return move


# a method's arguments by the names of the options they become, where they differ: a value the
# service refuses is named as the request named it ("save_path", "tags" were said)
_ARGUMENT_NAMES = {("torrent-add", "save_path"): "download-dir", ("torrent-add", "tags"): "labels",
                   ("torrent-set", "tags"): "labels", ("torrent-set-location", "save_path"): "location"}

# the fields read from the live session, not from the job's snapshot: never kept
_LIVE_FIELDS = frozenset({"pieces", "webseedsEx", "webseedsSendingToUs"})
_METAINFO_FIELDS = frozenset({"files", "isPrivate", "totalSize", "comment", "creator", "dateCreated",
                              "pieceCount", "pieceSize", "webseeds", "magnetLink", "webseedsEx",
                              "webseedsSendingToUs", "desiredAvailable"})


def _tiers(job: Job) -> Tiers:
    tiers: list[list[str]] = []
    for t in job.trackers:
        while len(tiers) <= t.tier:
            tiers.append([])
        tiers[t.tier].append(t.url)
    return tuple(tuple(tier) for tier in tiers if tier)


# a scheme's port when an announce URL names none, as Transmission 4.0 fills it in (udp: 80 too)
_SCHEME_PORTS = {"ftp": 21, "http": 80, "https": 443, "sftp": 22, "udp": 80}
# second-level labels under which a country's domain names are registered (example.co.uk): with
# them the registrable name is one label further left. (Transmission asks the public suffix list;
# this daemon carries none: the usual cases alone.)
_GENERIC_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "go", "gob", "gov", "ltd", "mil", "ne", "net",
                                   "nic", "nom", "or", "org", "plc", "sch"})


@functools.lru_cache(maxsize=4096)  # (thousands of torrents share a handful of trackers)
def their_host(announce: str) -> tuple[str, str]:
    """A tracker's ``host`` and ``sitename`` as Transmission 4.0 gives them in ``trackerStats``:
    ``host:port`` (the scheme's port when the URL names none; an IPv6 address without its
    brackets), and the name a GUI groups its torrents by — an address as it is, else the
    registrable domain's first label (``tracker.example.co.uk`` -> ``example``). Both "" for a
    URL without a host. (``host`` was the whole announce URL, ``sitename`` always "": a tracker
    filter of Transmission's Qt or GTK client showed one nameless tracker.)"""
    host = tracker_host(announce)  # (the host a list groups jobs by: one owner of that reading)
    try:
        parts = urlsplit(announce)
        port = parts.port
    except ValueError:  # (a port that is none)
        return "", ""
    if not host:
        return "", ""
    if port is None:
        port = _SCHEME_PORTS.get(parts.scheme.lower(), -1)
    try:
        ipaddress.ip_address(host)
        return f"{host}:{port}", host
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(labels) == 1:
        sitename = labels[0]
    elif len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _GENERIC_SECOND_LEVEL:
        sitename = labels[-3]
    else:
        sitename = labels[-2]
    return f"{host}:{port}", sitename


def their_scrape(announce: str) -> str:
    """A tracker's ``scrape`` as Transmission gives it: the announce URL with ``announce`` after
    its last ``/`` made ``scrape`` (BEP 48's rule, whatever the scheme), a ``udp://`` URL without
    one as it is (UDP trackers are scraped at their announce address), and "" for a tracker
    that cannot be scraped."""
    found = scrape_url(announce, any_scheme=True)
    if found is not None:
        return found
    return announce if announce.lower().startswith("udp:") else ""


def _tracker_stat(n: int, t: JobTracker, due: float | None, active: bool = False) -> dict[str, JSON]:
    """A tracker as ``trackerStats`` shows it (``due``: its next announce, ``Job.announce_times``;
    while there is one, ``announceState`` 1, waiting, as Transmission's; ``active``: an announce
    to it waits for its answer now, 3)."""
    ok = t.status == "working"
    scraped = t.downloaded is not None
    host, sitename = their_host(t.url)
    return {"id": n, "tier": t.tier, "announce": t.url, "scrape": their_scrape(t.url), "host": host,
            "sitename": sitename,
            "announceState": 3 if active else 0 if due is None else 1, "hasAnnounced": t.status != "unknown",
            "lastAnnounceSucceeded": ok,
            # (a working tracker's warning in place of "Success", as Transmission's announcer)
            "lastAnnounceResult": (t.warning or "Success") if ok else t.message,
            "lastAnnouncePeerCount": t.peers,
            "lastAnnounceTime": int(t.announced_at or 0), "lastAnnounceStartTime": 0,
            "lastAnnounceTimedOut": False,
            "nextAnnounceTime": int(due or 0),
            "hasScraped": scraped or t.scrape_error is not None,
            "lastScrapeSucceeded": scraped and t.scrape_error is None,
            "lastScrapeResult": t.scrape_error or ("Success" if scraped else ""),
            "lastScrapeTime": 0, "lastScrapeStartTime": 0, "lastScrapeTimedOut": False, "nextScrapeTime": 0,
            "scrapeState": 0, "seederCount": -1 if t.seeds is None else t.seeds,
            "leecherCount": -1 if t.leechers is None else t.leechers,
            "downloadCount": -1 if t.downloaded is None else t.downloaded, "isBackup": False}


def transmission_group(group: GroupSettings) -> dict[str, JSON]:
    """A bandwidth group as group-get describes it (speeds in kB/s; a limit of 0 is "not
    enabled"), with this daemon's ``weight``."""
    return {"name": group.name, "honorsSessionLimits": group.honors_global,
            "speed-limit-down-enabled": group.download_limit > 0,
            "speed-limit-down": group.download_limit // KILO,
            "speed-limit-up-enabled": group.upload_limit > 0, "speed-limit-up": group.upload_limit // KILO,
            "weight": group.weight}


def _by_mode(arguments: JSONObject, mode: str, own: Callable[[], float]) -> float | None:
    """A torrent's share limit as Transmission sets it, a mode and a limit (``seedRatioMode`` and
    ``seedRatioLimit``, ``seedIdleMode`` and ``seedIdleLimit``): 0 the session's (None), 2 none,
    1 its own (``own()``; a limit given alone is its own)."""
    match arguments.get(mode, 1):
        case 0:
            return None
        case 2:
            return NO_LIMIT
        case 1:
            return own()
    raise RpcError(f"{mode} must be 0, 1 or 2")


def primary_mime_type(files: Sequence[JobFile]) -> str:
    """Transmission's ``primary-mime-type``: the media type of its files holding the most bytes
    (each file's as a stream of it is served: ``stream.content_type``, by its extension;
    ``application/octet-stream`` for an unknown one and for no files)."""
    sizes: dict[str, int] = {}
    for f in files:
        name = f.path.rpartition("/")[2]
        dot = name.rfind(".")  # (a name's extension, as os.path.splitext's: none for ".name")
        kind = _mime_of(name[dot:].lower() if dot > 0 else "")
        sizes[kind] = sizes.get(kind, 0) + f.size
    return max(sizes, key=sizes.__getitem__) if sizes else "application/octet-stream"


@functools.cache  # (a few dozen extensions in all: a torrent of 10 000 files looks up one)
def _mime_of(extension: str) -> str:
    return content_type("f" + extension)


def _availability(states: list[int] | None, counts: list[int]) -> list[int]:
    """Transmission's ``availability`` (4.1): per piece, the connected peers that have it, or -1
    for a piece verified here (``states``: the service's piece states, 2 verified; ``counts``:
    its piece availability, empty for a complete job); empty without the metainfo."""
    if states is None:
        return []
    return [-1 if state == 2 else counts[i] if i < len(counts) else 0 for i, state in enumerate(states)]


def _manual_announce_time(job: Job) -> int:
    """Transmission's ``manualAnnounceTime``: while the job announces, when a manual announce is
    allowed again (the end of its trackers' min interval that ends first; 0: now); -1 while it
    announces nothing (paused, queued, no tracker)."""
    if not job.trackers or not job.announcing:
        return -1
    return int(min(job.announce_times(t)[1] or 0.0 for t in job.trackers))


def _eta_idle(job: Job, default_limit: float) -> int:
    """Transmission's ``etaIdle``: while the job seeds under an idle seeding limit (its own, else
    the service's), the seconds left before the limit is reached; else -1."""
    limit = job.features.idle_seeding_limit
    limit = default_limit if limit is None else limit
    if job.state is not JobState.SEEDING or limit < 0:
        return -1
    return max(0, int(limit - job.idle_seeding_time))


def _desired_available(job: Job, torrent: Torrent | None, states: list[int] | None, left: int,
                       counts: list[int]) -> int:
    """Transmission's ``desiredAvailable``: the bytes of the wanted pieces the job lacks that a
    connected peer has (``counts``: per piece, the peers having it; empty once complete), at
    most what is left to download (a piece shared with an unwanted file counts whole)."""
    if torrent is None or states is None or not counts:
        return 0
    wanted = bytearray(len(states))
    for f in job.files:
        if f.selected:
            first, last = torrent.file_span(f.index)
            wanted[first:last + 1] = b"\x01" * (last + 1 - first)
    found = sum(torrent.piece_size(i) for i, state in enumerate(states)
                if state != 2 and wanted[i] and i < len(counts) and counts[i] > 0)
    return min(found, left)


def _speed_shown(limit: int) -> int:
    """A global speed limit in Transmission's kB/s; none: its default, as it shows one off."""
    return limit // KILO if limit > 0 else SPEED_LIMIT_SHOWN


def _job_speed_shown(job: Job, ours: str, settings: ServiceSettings) -> int:
    """A torrent's speed limit ``ours`` (``download_limit``, ``upload_limit``) in kB/s: its own,
    or the value it had when turned off (kept, as a Transmission torrent keeps it:
    ``JobOptions``); none: the session's as ``session-get`` shows it (a Transmission torrent's
    limit starts as the session's)."""
    limit = int(getattr(job.options, ours) or getattr(job.options, f"kept_{ours}"))
    return limit // KILO if limit > 0 else _speed_shown(getattr(settings, ours))


def _or(value: float | None, default: float) -> float:
    return value if value is not None else default


def _idle_minutes(seconds: float) -> int:
    """An idle seeding limit in Transmission's minutes (none: its default, 30, as it shows one off)."""
    return round(seconds / 60) if seconds >= 0 else 30


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2**63:
        raise RpcError(f"{name}: expected a whole number >= 0, got {value!r}")
    return int(value)


def _speed(value: object, name: str) -> int:
    """A speed limit in kB/s (Transmission's unit) as bytes/s; an error naming ``name`` past
    what the engine can take."""
    kilo = _whole(value, name)
    if kilo * KILO > MAX_RATE_LIMIT:
        raise RpcError(f"{name}: at most {MAX_RATE_LIMIT // KILO} kB/s, got {value!r}")
    return kilo * KILO


def _indices(value: object, count: int) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise RpcError("file indices must be a list of numbers")
    indices = [i for i in value if isinstance(i, int)]
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise RpcError(f"no file {bad[0]} (the torrent has {count})", jsonrpc.FILE_IDX_OOR)
    return indices


async def _quietly(changes: Awaitable[dict[str, JobError]]) -> None:
    """An action on several jobs (``JobService.each``): one that does not fit the action's state
    is skipped, as Transmission does."""
    for exc in (await changes).values():
        if isinstance(exc, ServiceStarting) or not isinstance(exc, JobConflict | JobNotFound):
            raise exc  # (refused while the torrents load, as the whole call is; any other: the call's)
        log.debug("Transmission RPC: skipped: %s", exc)


# what each method needs (any other: ``admin``)
_SCOPES: dict[str, Scope] = {
    **dict.fromkeys(("session-get", "session-stats", "torrent-get", "free-space", "group-get"), Scope.READ),
    "torrent-add": Scope.ADD,
    **dict.fromkeys(("torrent-start", "torrent-start-now", "torrent-stop", "torrent-verify",
                     "torrent-reannounce", "torrent-remove", "torrent-set", "torrent-set-location",
                     "queue-move-top", "queue-move-bottom", "queue-move-up", "queue-move-down",
                     "torrent-rename-path"), Scope.CONTROL),
}


# Transmission's encryption names for ours (its "tolerated" is the nearest to our "disable":
# plaintext; ours also refuses MSE peers: docs/compat.md)
_ENCRYPTION = {"prefer": "preferred", "require": "required", "disable": "tolerated"}
_PEER_NETWORK_FIELDS = frozenset({"peer-port", "peer-port-random-on-start", "dht-enabled", "pex-enabled",
                                  "lpd-enabled", "encryption", "utp-enabled", "tcp-enabled",
                                  "preferred_transports"})
# Transmission 4.1's preferred_transports for our transports (the first dialed first)
_TRANSPORTS: dict[str, JSON] = {"any": ["utp", "tcp"], "tcp_first": ["tcp", "utp"], "utp": ["utp"],
                                "tcp": ["tcp"]}


def _transport(a: JSONObject, current: Mapping[str, JSON]) -> str:
    """``session-set``'s transports as our ``transport``: 4.1's ``preferred_transports`` (both,
    the first dialed first, or one alone), else ``utp-enabled`` and ``tcp-enabled`` (both on
    keep the order there is); ``RpcError`` for none."""
    if "preferred_transports" in a:
        asked = a["preferred_transports"]
        for ours, theirs in _TRANSPORTS.items():
            if asked == theirs:
                return ours
        raise RpcError('preferred_transports: must be ["utp", "tcp"] (uTP first, TCP too), ["tcp", "utp"] '
                       '(TCP first, uTP too), ["utp"] or ["tcp"]')
    utp, tcp = a.get("utp-enabled", current["utp-enabled"]), a.get("tcp-enabled", current["tcp-enabled"])
    for name, value in (("utp-enabled", utp), ("tcp-enabled", tcp)):
        if not isinstance(value, bool):
            raise RpcError(f"{name}: must be true or false")
    if not utp and not tcp:
        raise RpcError("utp-enabled, tcp-enabled: at least one of them must stay on")
    if utp and tcp:
        return "tcp_first" if current["preferred_transports"] == _TRANSPORTS["tcp_first"] else "any"
    return "utp" if utp else "tcp"


def _peer_network_changes(a: JSONObject, current: Mapping[str, JSON]) -> dict[str, object]:
    """``session-set``'s port, DHT, PEX, LSD, encryption and transports as our settings'
    changes (each checked by the service; an unknown encryption name here)."""
    changes: dict[str, object] = {}
    if any(name in a for name in ("utp-enabled", "tcp-enabled", "preferred_transports")):
        changes["transport"] = _transport(a, current)
    for theirs, ours in (("dht-enabled", "dht_enabled"), ("pex-enabled", "pex_enabled"),
                         ("lpd-enabled", "lsd_enabled")):
        if theirs in a:
            changes[ours] = a[theirs]
    if "encryption" in a:
        wanted = [ours for ours, name in _ENCRYPTION.items() if name == a["encryption"]]
        if not wanted:
            raise RpcError("encryption: must be preferred, required or tolerated")
        changes["encryption"] = wanted[0]
    if "peer-port-random-on-start" in a:  # (a new free port at each start)
        changes["random_port"] = a["peer-port-random-on-start"]
    if a.get("peer-port", current["peer-port"]) != current["peer-port"]:  # (the port shown: no change)
        changes["listen_port"] = a["peer-port"]
    return changes
