"""The HTTP API's routes (Starlette) over one ``JobService``, and the web UI's files.

Every answer is JSON; every error is ``{"error": ..., "field"?: ...}`` with its status, never a
traceback. Lists come as ``{"jobs": [...]}``; a single job as the job itself (with detail).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
from collections.abc import Awaitable, Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from .. import __version__
from ..engine import fdlimit
from ..engine.addtorrent import (
    AddTorrentError,
    MagnetLink,
    Parsed,
    TorrentBytes,
    TorrentUrl,
    encoded_over_the_limit,
    over_the_limit,
    read_add_torrent,
    read_link,
)
from ..errors import MagnetError, MetainfoError, TorrentEngineError
from ..feeds import FeedReader
from ..formats.endpoint import EndpointError, split_host_port
from ..jobs import (
    AddOptions,
    InvalidJobRequest,
    Job,
    JobConflict,
    JobError,
    JobNotFound,
    JobService,
    JobState,
    Lease,
    LeaseNotFound,
    ServiceStarting,
    StateNotSaved,
)
from ..jobs.organising.features import features_from
from ..jobs.trackers import check_url_of
from ..jobs.tuning.mail import MailNotSent
from ..jsonvalue import JSON, JSONObject, JSONValue
from ..logbook import LogBook
from ..net.peer.extensions import DEFAULT_MAX_METADATA_SIZE
from . import jsontext
from . import pages as paging
from .access import AccessDenied, Gate, LoginRefused, current
from .compat import QbittorrentApi, TransmissionRpc
from .creation_routes import CreationApi
from .dedup_routes import DedupApi
from .features import FEATURE_FIELDS, FeatureApi, add_features, query_count, query_flag
from .feed_routes import FeedApi
from .folder_routes import FolderApi
from .groups import GroupApi
from .history import StatsHistory
from .job_edits import JobEditApi
from .jobjson import JobJson
from .log_routes import LogApi
from .metrics import Metrics, RequestTimer
from .openapi import METHOD_NOT_ALLOWED, openapi_json
from .pages import PartsResponse, gather
from .security import GuardMiddleware, Tickets
from .shutdown import DaemonStop
from .sse import DEFAULT_HEARTBEAT, EventLog
from .stream import METADATA_WAIT, StreamApi
from .user_routes import UserApi, user_error_status
from .users import MAX_PASSWORD, UserError
from .users import Scope as AccessScope

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MAX_TORRENT_SIZE = DEFAULT_MAX_METADATA_SIZE  # a .torrent larger than the metadata we accept
JSON_OVERHEAD = 64 * 1024
MAX_JSON_DEPTH = 16  # our bodies are flat objects holding lists and maps of scalars
EVENT_ID = re.compile(r"-?[0-9]+")  # a Last-Event-ID (int() would also take " 1", "+1", "1_0")
BULK_ACTIONS = ("pause", "resume", "recheck", "reannounce", "cancel", "forget", "update")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


class ApiError(Exception):
    """A request the API refuses: the HTTP ``status``, a message and the offending field, if any."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    """A JSON error answer ``{"error": message, "field": field}`` that is never cached."""
    body: dict[str, str] = {"error": message}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})


def _job_error_status(exc: JobError) -> int:
    if isinstance(exc, JobNotFound | LeaseNotFound):
        return 404
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, LoginRefused):
        return 429
    if isinstance(exc, ServiceStarting):  # (the torrents are loading: ask again in a moment)
        return 503
    if isinstance(exc, JobConflict):
        return 409
    if isinstance(exc, StateNotSaved):  # (the change was not made: the state folder is full, or failing)
        return 507 if exc.full else 503
    if isinstance(exc, MailNotSent):  # (the mail server could not be reached, or refused it)
        return 502
    return 400


# seconds a client is told to wait when the descriptor limit refused its request
DESCRIPTORS_RETRY_AFTER = 30


def _descriptors_exhausted(request: Request, exc: Exception) -> Response:
    """503 naming the descriptor limit (whether the engine refused the work before it began, or
    an ``open``/``accept`` failed for want of a descriptor), and a log line saying why."""
    seen: BaseException | None = exc
    for _ in range(8):  # (a chain of causes, not a loop)
        if seen is None or isinstance(seen, fdlimit.DescriptorLimitReached):
            break
        seen = seen.__cause__ or seen.__context__
    if not isinstance(seen, fdlimit.DescriptorLimitReached):
        seen = fdlimit.limit_reached(f"{request.method} {request.url.path} failed")
        log.warning("%s (%s)", seen, exc)
    response = error_response(503, str(seen))
    response.headers["retry-after"] = str(DESCRIPTORS_RETRY_AFTER)
    return response


async def _handle_exception(request: Request, exc: Exception) -> Response:
    if fdlimit.exhausted(exc):
        return _descriptors_exhausted(request, exc)
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, exc.field)
    if isinstance(exc, ServiceStarting):  # (its torrents are loading: ask again in a moment)
        response = error_response(503, str(exc))
        response.headers["retry-after"] = str(exc.retry_after)
        return response
    if isinstance(exc, LoginRefused):  # (too many failed logins from this address)
        response = error_response(429, str(exc))
        response.headers["retry-after"] = str(int(exc.retry_after) + 1)
        return response
    if isinstance(exc, JobError):
        return error_response(_job_error_status(exc), str(exc), getattr(exc, "field", None))
    if isinstance(exc, UserError):
        return error_response(user_error_status(exc), str(exc), exc.field)
    if isinstance(exc, HTTPException):
        response = error_response(exc.status_code, str(exc.detail))
        if exc.status_code == 405:  # RFC 9110 15.5.6: say what the path does take
            response.headers["allow"] = ", ".join(_allowed_methods(request))
        return response
    if isinstance(exc, MagnetError | MetainfoError):
        return error_response(400, str(exc), "source")
    if isinstance(exc, TorrentEngineError):
        return error_response(400, str(exc))
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error (see the daemon's log)")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (several routes may share a path,
    each with its own methods, so no one route's list will do)."""
    matching = [route for route in request.app.routes
                if isinstance(route, Route) and route.methods and route.name != METHOD_NOT_ALLOWED
                and route.matches(request.scope)[0] is not Match.NONE]
    # (a fixed path, /api/jobs/bulk, is not the template it also matches, /api/jobs/{job_id})
    fixed = [route for route in matching if not route.param_convertors]
    methods: set[str] = set()
    for route in fixed or matching:
        methods |= route.methods or set()
    return sorted(methods)


def _bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ApiError(400, f"{name} must be true or false", name)


def _int_or_none(value: object, name: str, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ApiError(400, f"{name} must be an integer >= {minimum}", name)
    return value


def parse_peer(text: object) -> tuple[str, int]:
    """Parse a peer given as ``HOST:PORT`` (IPv6 hosts in brackets, ``formats.endpoint``);
    ``ApiError`` 400 otherwise."""
    if not isinstance(text, str):
        raise ApiError(400, f"peers: expected \"host:port\", got {text!r}", "peers")
    try:
        return split_host_port(text)
    except EndpointError as exc:
        raise ApiError(400, f"peers: {text[:80]!r}: {exc}", "peers") from None


def parse_source(source: object, max_size: int) -> Parsed | MagnetLink | TorrentUrl:
    """A magnet link, an http(s) URL of a .torrent (fetched by the add, with the service's
    proxy and cookies) or a base64 .torrent, read here so that a bad one says so (400); a BEP 46
    link is checked here and resolved by the add."""
    if not isinstance(source, str) or not source:
        raise ApiError(400, "source must be a magnet link, a .torrent's URL or a base64-encoded .torrent",
                       "source")
    if source.lstrip()[:8].lower().startswith(("http://", "https://")):
        try:
            return TorrentUrl(check_url_of(source, "source", ".torrent URL", ("http", "https")))
        except InvalidJobRequest as exc:
            raise ApiError(400, exc.reason, "source") from exc
    if source.startswith("magnet:"):
        try:
            return read_link(MagnetLink(source))
        except AddTorrentError as exc:
            raise ApiError(400, f"bad magnet link: {exc}", "source") from exc
    refusal = encoded_over_the_limit(len(source), max_size)
    if refusal is not None:
        raise ApiError(413, refusal, "source")
    try:
        data = base64.b64decode(source.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "source is neither a magnet link nor valid base64", "source") from exc
    return parse_torrent(data, max_size)


def parse_torrent(data: bytes, max_size: int) -> Parsed:
    """Read an uploaded .torrent of at most ``max_size`` bytes; ``ApiError`` 413/400 otherwise."""
    refusal = over_the_limit(len(data), max_size)
    if refusal is not None:
        raise ApiError(413, refusal, "source")
    try:
        return Parsed(read_add_torrent(TorrentBytes(data)))
    except AddTorrentError as exc:
        raise ApiError(400, f"not a valid .torrent: {exc}", "source") from exc


def parse_file_priorities(raw: JSONValue) -> dict[int, int]:
    """``{"index": priority 0..7}`` as indices and priorities (``ApiError`` 400 naming the entry)."""
    if not isinstance(raw, dict):
        raise ApiError(400, "file_priorities must be an object {index: priority}", "file_priorities")
    priorities: dict[int, int] = {}
    for key, value in raw.items():
        index_ok = key.isascii() and key.isdigit()
        if not (index_ok and isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7):
            raise ApiError(400, f"file_priorities: bad entry {key!r}: {value!r} (index: 0..7)",
                           "file_priorities")
        priorities[int(key)] = value
    return priorities


async def read_body(request: Request, cap: int) -> bytes:
    """The body, refused with 413 once it passes ``cap`` (also without a Content-Length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiError(413, f"request body over {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, cap: int) -> JSONObject:
    """The request's JSON object body (at most ``cap`` bytes; empty body = ``{}``); ``ApiError`` otherwise."""
    body = await read_body(request, cap)
    if not body:
        return {}
    try:
        value = jsontext.loads(body, whole_floats=True)  # (675.0: the document's integer 675)
    except ValueError as exc:  # (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        raise ApiError(400, f"malformed JSON: {exc}", "body") from exc
    except RecursionError as exc:  # the decoder's own guard, far past MAX_JSON_DEPTH
        raise ApiError(400, f"JSON nested more than {MAX_JSON_DEPTH} levels deep", "body") from exc
    if not isinstance(value, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    if _nested_deeper_than(value, MAX_JSON_DEPTH):
        raise ApiError(400, f"JSON nested more than {MAX_JSON_DEPTH} levels deep", "body")
    field = _lone_surrogate_at(value)
    if field is not None:
        raise ApiError(400, f"{field}: a lone surrogate (\\ud800-\\udfff) is not a character", field)
    return value


def _lone_surrogate_at(body: JSONObject) -> str | None:
    """The top-level field holding a string (or a key) with a lone UTF-16 surrogate, which JSON's
    ``\\uXXXX`` escapes can carry but no UTF-8 file name, log line or answer can ("body" for a
    top-level key); None when there is none."""
    for key, value in body.items():
        if _has_surrogate(key):
            return "body"
        stack: list[object] = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str) and _has_surrogate(item):
                return key
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _nested_deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` holds containers more than ``limit`` deep (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_multipart(content_type: str, body: bytes) -> tuple[bytes | None, dict[str, str]]:
    """(the uploaded file, the text fields) of a multipart/form-data body."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ApiError(400, "malformed multipart body", "body")
    upload: bytes | None = None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None or name == "torrent":
            upload = payload
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return upload, fields


class Api:
    """The route handlers; one per app, over one service."""

    def __init__(self, service: JobService, events: EventLog, tickets: Tickets, *,
                 max_torrent_size: int, heartbeat: float, history: StatsHistory, gate: Gate,
                 job_json: JobJson | None = None, daemon_stop: DaemonStop | None = None) -> None:
        self.service = service
        self.gate = gate
        self.daemon_stop = daemon_stop if daemon_stop is not None else DaemonStop()
        self.history = history
        self.events = events
        self.tickets = tickets
        self.max_torrent_size = max_torrent_size
        self.max_json = (max_torrent_size * 4) // 3 + JSON_OVERHEAD
        self.heartbeat = heartbeat
        self.job_json = job_json if job_json is not None else JobJson(service)

    # -- reading -----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """``GET /api/health``: status (``starting``, with HTTP 503 for readiness probes, while the
        torrents are loaded after a start: the jobs are listed from their records, a change waits
        until the start is over, up to a minute), version and the job records that could not be
        loaded."""
        lost = [{"record": record, "reason": reason} for record, reason in self.service.lost]
        ready = self.service.ready
        return JSONResponse({"status": "ok" if ready else "starting", "version": __version__,
                             "lost_jobs": lost}, status_code=200 if ready else 503,
                            headers={} if ready else {"retry-after": "2"})

    async def stats(self, request: Request) -> Response:
        """``GET /api/stats``: the service's totals and rates, and the free space where the
        downloads go (``free_space``, bytes; null when the folder cannot be read)."""
        out = self.service.stats().to_json()
        try:
            out["free_space"] = shutil.disk_usage(self.service.download_root).free
        except OSError:
            out["free_space"] = None
        return JSONResponse(out)

    async def stats_history(self, request: Request) -> Response:
        """``GET /api/stats/history``: the last hour of rates and peers (the UI's charts)."""
        return JSONResponse(self.history.to_json())

    async def shutdown(self, request: Request) -> Response:
        """``POST /api/shutdown``: stop the daemon as its SIGTERM does (every job saved; an
        admin's); answered ``202`` before it stops, ``409`` when no daemon serves the API."""
        self.daemon_stop("POST /api/shutdown")
        return JSONResponse({"status": "stopping"}, status_code=202)

    async def list_jobs(self, request: Request) -> Response:
        """``GET /api/jobs``: every job, or those in ``?state=``; a page of them with ``?limit=``
        and ``?offset=`` (newest first). Each answer carries the change log's ``cursor``; with
        ``?since=<cursor>`` only the jobs changed after it and the ids removed (every job, with
        ``"full": true``, when the cursor is not known: too old, or of an earlier run)."""
        since = query_count(request, "since")
        if since is not None:
            mixed = [n for n in ("state", "offset", "limit") if n in request.query_params]
            if mixed:  # (a page of what changed has no meaning: a client keeps the whole list)
                raise ApiError(400, f"since cannot be combined with {', '.join(mixed)}", "since")
            # (in steps, the loop let run between them: an unknown cursor's answer, or one during
            # a mass add or check, is thousands of jobs)
            changes = await paging.stepped(self.service.changes_in_steps(since, page=paging.STEP))
            removed = _dumps([i for i in changes.removed if self.gate.shows_id(i)])
            tail = b',"removed":%b,"cursor":%d,"full":%b}' % (
                removed, changes.cursor, b"true" if changes.full else b"false")
            parts = await self.job_json.array_parts(self.gate.visible(changes.jobs))
            return PartsResponse([b'{"jobs":', *parts, tail], media_type="application/json")
        raw = request.query_params.get("state")
        state: JobState | None = None
        if raw is not None:
            try:
                state = JobState(raw)
            except ValueError as exc:
                names = ", ".join(s.value for s in JobState)
                raise ApiError(400, f"unknown state {raw!r} (one of {names})", "state") from exc
        offset = query_count(request, "offset") or 0
        limit = query_count(request, "limit")
        cursor = self.service.change_cursor()  # (taken before the list: a change after it is after it)
        if current().reads_all and limit is not None and limit <= paging.LIST_PAGE:  # (a page: it alone read)
            jobs = self.service.list(state, offset=offset, limit=limit)
        else:  # (every job, or a user's page of their own: read in steps, the loop let run between)
            pages = self.service.list_pages(paging.STEP, state, owner=self.gate.owner_shown())
            mine = await gather(pages, self.gate.visible)
            jobs = mine[offset:None if limit is None else offset + limit]
        return PartsResponse([b'{"jobs":', *await self.job_json.array_parts(jobs), b',"cursor":%d}' % cursor],
                             media_type="application/json")

    async def active_jobs(self, request: Request) -> Response:
        """``GET /api/jobs/active``: the jobs that are not finished."""
        return self._jobs_response(self.gate.active())

    async def active_jobs_other_method(self, request: Request) -> Response:
        """Every other method on ``/api/jobs/active``: a 405, as that path is the list, never a job
        (a job's id is 16 hex digits), so ``PATCH`` there is not "no job 'active'"."""
        response = error_response(405, "/api/jobs/active is the list of unfinished jobs (GET only); "
                                       "a job's id is 16 hex digits")
        response.headers["allow"] = "GET, HEAD"
        return response

    def _jobs_response(self, jobs: list[Job]) -> Response:
        """``{"jobs": [...]}``."""
        return Response(b'{"jobs":' + self._jobs_array(jobs) + b"}", media_type="application/json")

    def _jobs_array(self, jobs: list[Job]) -> bytes:
        """The JSON array of ``jobs`` (each job's text kept while it is unchanged: jobjson.py)."""
        return self.job_json.array(jobs)

    async def get_job(self, request: Request) -> Response:
        """``GET /api/jobs/{id}``: one job in detail (``?scrape=true``: its trackers are looked at,
        and scraped in the background for their download counts if that is due: jobs/scrapes.py)."""
        if query_flag(request, "scrape"):
            self.service.scrape_trackers(request.path_params["job_id"])
        job = self.service.get(request.path_params["job_id"])
        detail = job.to_json(detail=True)
        announcing = self.service.announcing(job.id)  # (now, asked for one job: no list carries it)
        for tracker in cast("list[dict[str, object]]", detail["trackers"]):
            tracker["updating"] = tracker["url"] in announcing
        return JSONResponse(detail)

    # -- adding ------------------------------------------------------------------------------

    async def add_job(self, request: Request) -> Response:
        """``POST /api/jobs``: add a job from a magnet or an uploaded .torrent, with every option
        in one request: the job has them from its first snapshot."""
        content_type = request.headers.get("content-type", "")
        options: AddOptions
        source: Parsed | MagnetLink | TorrentUrl
        if content_type.startswith("multipart/form-data"):
            body = await read_body(request, self.max_torrent_size + JSON_OVERHEAD)
            upload, fields = parse_multipart(content_type, body)
            if upload is None:
                raise ApiError(400, "no .torrent file in the upload (field \"torrent\")", "torrent")
            source = parse_torrent(upload, self.torrent_limit())

            def yes(name: str) -> bool:
                return fields.get(name, "").lower() in ("true", "1", "on", "yes")

            peers = fields.get("peers") or ""
            options = AddOptions(
                save_path=fields.get("save_path") or None, sequential=yes("sequential"),
                paused=yes("paused") if "paused" in fields else None,  # (absent: the settings' add_paused)
                seed_mode=yes("seed_mode"), client=fields.get("client") or None,
                download_path=fields.get("download_path"),
                peers=tuple(parse_peer(p) for p in peers.replace(",", " ").split()))
        elif content_type.split(";")[0].strip() in ("application/json", ""):
            data = await read_json(request, self.max_json)
            source = parse_source(data.get("source"), self.torrent_limit())
            options = self._add_options(data)
        else:
            raise ApiError(415, f"unsupported Content-Type {content_type!r}: send JSON or multipart")
        async with self.gate.adding(options, [source]) as options:  # (a look at its files, POST
            # /api/metadata, is ended by the add: the job fetches its own)
            job, created = await self.service.add(source, options)
            job = await self.gate.added(job, created)
        return JSONResponse(job.to_json(detail=True), status_code=201 if created else 200)

    def torrent_limit(self) -> int:
        """The largest .torrent an add may hand over now (the setting, within this API's cap)."""
        return min(self.max_torrent_size, self.service.get_settings().torrent_file_size_limit)

    @staticmethod
    def _add_options(data: JSONObject) -> AddOptions:
        save_path = data.get("save_path")
        if save_path is not None and (not isinstance(save_path, str) or not save_path):
            raise ApiError(400, "save_path must be a non-empty string", "save_path")
        files = data.get("files")
        if files is not None and (not isinstance(files, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in files)):
            raise ApiError(400, "files must be a list of file indices", "files")
        peers = data.get("peers")
        if peers is not None and not isinstance(peers, list):
            raise ApiError(400, "peers must be a list of \"host:port\"", "peers")
        client = data.get("client")
        if client is not None and not isinstance(client, str):
            raise ApiError(400, "client must be a lease id", "client")
        download_path = data.get("download_path")
        if download_path is not None and not isinstance(download_path, str):
            raise ApiError(400, "download_path must be a folder inside the download root, or \"\"",
                           "download_path")
        raw = data.get("file_priorities")
        priorities = {} if raw is None else parse_file_priorities(raw)

        def flag(name: str) -> bool:
            value = data.get(name)
            return False if value is None else _bool(value, name)

        selected = None if files is None else tuple(i for i in files if isinstance(i, int))
        return AddOptions(
            save_path=save_path, files=selected,
            sequential=flag("sequential"), seed_mode=flag("seed_mode"),
            paused=None if data.get("paused") is None else flag("paused"),  # (the settings' add_paused)
            peers=() if peers is None else tuple(parse_peer(p) for p in peers), client=client,
            download_path=download_path, features=add_features(data),  # category, tags, share limits ...
            download_limit=_int_or_none(data.get("download_limit"), "download_limit") or 0,
            upload_limit=_int_or_none(data.get("upload_limit"), "upload_limit") or 0,
            file_priorities=tuple(sorted(priorities.items())),
            queue_top=None if data.get("queue_top") is None else flag("queue_top"),  # (the settings')
            max_peers=_int_or_none(data.get("max_peers"), "max_peers") or 0,
            stop_condition=data.get("stop_condition"))  # type: ignore[arg-type]  # (checked by AddOptions)

    # -- changing ----------------------------------------------------------------------------

    async def pause(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/pause``."""
        return JSONResponse((await self.service.pause(request.path_params["job_id"])).to_json(detail=True))

    async def resume(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/resume``."""
        return JSONResponse((await self.service.resume(request.path_params["job_id"])).to_json(detail=True))

    async def recheck(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/recheck``: verify the job's data again."""
        return JSONResponse((await self.service.recheck(request.path_params["job_id"])).to_json(detail=True))

    async def update(self, request: Request) -> Response:
        """``PATCH /api/jobs/{id}``: change file priorities, sequential order, rate limits, the
        job's connections at most, super-seeding (BEP 16), its bandwidth group, or its features
        (category, tags, share limits...)."""
        job_id = request.path_params["job_id"]
        await self._edit(await read_json(request, self.max_json))(job_id)
        return JSONResponse(self.service.get(job_id).to_json(detail=True))

    def _edit(self, data: JSONObject) -> Callable[[str], Awaitable[None]]:
        """A ``PATCH /api/jobs/{id}`` body read and checked (``ApiError`` naming the field it
        cannot take): the change it asks of a job, by the job's id."""
        known = {"file_priorities", "sequential", "download_limit", "upload_limit", "max_peers",
                 "super_seeding", "group", *FEATURE_FIELDS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ApiError(400, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})",
                           unknown[0])
        raw = data.get("file_priorities")
        priorities = None if raw is None else parse_file_priorities(raw)
        sequential = None if data.get("sequential") is None else _bool(data["sequential"], "sequential")
        raw_super = data.get("super_seeding")
        super_seeding = None if raw_super is None else _bool(raw_super, "super_seeding")
        group = data.get("group")
        if group is not None and not isinstance(group, str):
            raise ApiError(400, "must be a bandwidth group's name, or \"\" for none", "group")
        changes = {k: v for k, v in data.items() if k in FEATURE_FIELDS}
        # (checked once, before any job: a bulk update of none checks it too)
        self.gate.require_manual(features_from(changes))
        download_limit = _int_or_none(data.get("download_limit"), "download_limit")
        upload_limit = _int_or_none(data.get("upload_limit"), "upload_limit")
        max_peers = _int_or_none(data.get("max_peers"), "max_peers")
        # (features or a group alone change no option; anything else, or nothing, is an update)
        options = not (changes or group is not None) or bool(set(data) - FEATURE_FIELDS - {"group"})

        async def edit(job_id: str) -> None:
            if changes:  # category, tags, share limits ...
                await self.service.set_features([job_id], **changes)
            if group is not None:
                await self.service.set_job_group(job_id, group, "group")
            if options:
                await self.service.update(
                    job_id, file_priorities=priorities, sequential=sequential, download_limit=download_limit,
                    upload_limit=upload_limit, max_peers=max_peers, super_seeding=super_seeding)

        return edit

    async def cancel(self, request: Request) -> Response:
        """``DELETE /api/jobs/{id}``: cancel the job (``?delete_files=true`` removes its data)."""
        delete = query_flag(request, "delete_files")
        job = await self.service.cancel(request.path_params["job_id"], delete_files=delete)
        return JSONResponse(job.to_json(detail=True))

    async def bulk(self, request: Request) -> Response:
        """``POST /api/jobs/bulk`` ``{"action", "ids", "delete_files"?, "changes"?}``: one action
        on many jobs (the web UI's selection), each as its own route would do it (``update``:
        ``changes`` is a ``PATCH /api/jobs/{id}`` body, checked once); a job the action does not
        fit is listed in ``failed`` with the reason, the others are done. A change the state
        folder cannot hold stops the rest (507/503, as for one job)."""
        data = await read_json(request, self.max_json)
        action = data.get("action")
        if action not in BULK_ACTIONS:
            raise ApiError(400, f"action must be one of {', '.join(BULK_ACTIONS)}", "action")
        given = data.get("ids")
        if not isinstance(given, list) or not given or not all(isinstance(i, str) for i in given):
            raise ApiError(400, "ids must be a non-empty list of job ids", "ids")
        ids = list(dict.fromkeys(i for i in given if isinstance(i, str)))
        delete = False if data.get("delete_files") is None else _bool(data["delete_files"], "delete_files")
        if delete and action not in ("cancel", "forget"):
            raise ApiError(400, "delete_files goes with cancel or forget", "delete_files")
        if (data.get("changes") is not None) != (action == "update"):
            raise ApiError(400, "changes go with update, and update needs them", "changes")
        one: Callable[[str], Awaitable[object]]
        if action == "update":
            changes = data["changes"]
            if not isinstance(changes, dict):
                raise ApiError(400, "changes must be an object: a PATCH /api/jobs/{id} body", "changes")
            one = self._edit(changes)
        elif action == "cancel":
            async def one(job_id: str) -> object:
                return await self.service.cancel(job_id, delete_files=delete)
        elif action == "forget":
            async def one(job_id: str) -> object:
                await self.service.forget(job_id, delete_files=delete)
                return None
        else:
            one = getattr(self.service, action)

        async def act(job_id: str) -> None:
            self.gate.job(job_id, AccessScope.CONTROL)
            await one(job_id)

        failed = {i: (_job_error_status(exc), str(exc))
                  for i, exc in (await self.service.each(ids, act)).items()}
        done = {i for i in ids if i not in failed}
        jobs = [self.service.get(i) for i in ids if i in done and i in self.service]
        removed = [i for i in ids if i in done and i not in self.service]
        head = json.dumps({"action": action, "done": [i for i in ids if i in done], "removed": removed,
                           "failed": [{"id": i, "status": failed[i][0], "error": failed[i][1]}
                                      for i in ids if i in failed]}, separators=(",", ":"))
        return Response(head[:-1].encode() + b',"jobs":' + self._jobs_array(jobs) + b"}",
                        media_type="application/json")

    async def clear_history(self, request: Request) -> Response:
        """``DELETE /api/jobs?finished=true``: forget finished jobs (``older_than`` seconds, if given)."""
        if not query_flag(request, "finished"):
            raise ApiError(400, "only finished jobs can be cleared: DELETE /api/jobs?finished=true",
                           "finished")
        raw = request.query_params.get("older_than")
        older_than: float | None = None
        if raw is not None:
            try:
                older_than = float(raw)
            except ValueError as exc:
                raise ApiError(400, "older_than must be a number of seconds", "older_than") from exc
        removed = await self.service.clear_history(older_than=older_than)
        return JSONResponse({"removed": removed})

    # -- events ------------------------------------------------------------------------------

    async def ticket(self, request: Request) -> Response:
        """``POST /api/events/ticket``: a one-use ticket for an EventSource, which cannot send headers."""
        return JSONResponse({"ticket": self.tickets.issue(current()), "expires_in": self.tickets.ttl},
                            status_code=201)

    def _sse(self, request: Request, job_id: str | None) -> Response:
        given = {"Last-Event-ID": request.headers.get("last-event-id"),
                 "last_event_id": request.query_params.get("last_event_id")}
        for name, raw in given.items():  # (each one given is checked, even beside the other)
            if raw and not EVENT_ID.fullmatch(raw):  # (empty, as not given: from now, as the pattern says)
                raise ApiError(400, f"{name} must be an event id (digits)", name)
        raw = given["Last-Event-ID"] or given["last_event_id"]
        last = int(raw) if raw else None
        only = None if current().reads_all else current().name
        return StreamingResponse(
            self.events.stream(job_id, last, self.heartbeat, only=only), media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def all_events(self, request: Request) -> Response:
        """``GET /api/events``: every job's events as server-sent events."""
        return self._sse(request, None)

    async def job_events(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/events``: one job's events as server-sent events."""
        job = self.service.get(request.path_params["job_id"])
        return self._sse(request, job.id)

    # -- users ---------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        """``POST /api/login`` ``{"name", "password"}``: a session token (sent as ``Authorization:
        Bearer``, as the API token is) for a user of the daemon; 401 for a wrong name or
        password, 429 after too many failures from one address."""
        data = await read_json(request, 4 * MAX_PASSWORD + 1024)
        name, password = data.get("name"), data.get("password")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "name must be a user's name", "name")
        if not isinstance(password, str):
            raise ApiError(400, "password must be a string", "password")
        address = request.client.host if request.client is not None else ""
        principal = await self.gate.password(name, password, address)
        if principal is None:
            return error_response(401, "wrong user name or password")
        return JSONResponse({"token": self.gate.open_session(principal), "name": principal.name,
                             "role": principal.role.value, "scopes": sorted(principal.scopes)},
                            headers={"cache-control": "no-store"})

    async def logout(self, request: Request) -> Response:
        """``POST /api/logout``: the session token of this request no longer works."""
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            self.gate.close_session(auth[7:].strip())
        return JSONResponse({"logged_out": True})

    async def me(self, request: Request) -> Response:
        """``GET /api/me``: who the request acts for (name, role, scopes; the token: an admin
        without a name), and whether the daemon has users."""
        p = current()
        return JSONResponse({"name": p.name, "role": p.role.value, "scopes": sorted(p.scopes),
                             "users": self.gate.users.any})

    # -- client leases -----------------------------------------------------------------------

    async def open_lease(self, request: Request) -> Response:
        """``POST /api/clients``: open a client lease (``ttl`` seconds) that the client's jobs live by."""
        data = await read_json(request, self.max_json)
        ttl = data.get("ttl", 60)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 1 <= ttl <= 86400:
            raise ApiError(400, "ttl must be a number of seconds in 1..86400", "ttl")
        replaces = data.get("replaces")
        if replaces is not None and not isinstance(replaces, str):
            raise ApiError(400, "replaces must be a lease id", "replaces")
        lease = await self.service.open_lease(float(ttl), replaces=replaces)
        return JSONResponse(_lease_json(lease), status_code=201)

    async def heartbeat_lease(self, request: Request) -> Response:
        """``POST /api/clients/{id}/heartbeat``: keep a lease alive for another ``ttl``."""
        lease = await self.service.heartbeat(request.path_params["lease_id"])
        return JSONResponse(_lease_json(lease))

    async def end_lease(self, request: Request) -> Response:
        """``DELETE /api/clients/{id}``: end a lease (its unfinished jobs are cancelled, files deleted)."""
        await self.service.end_lease(request.path_params["lease_id"])
        return JSONResponse({"ended": request.path_params["lease_id"]})

    # -- the web UI --------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        """``GET /``: the web UI."""
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})


def _lease_json(lease: Lease) -> dict[str, JSON]:
    return {"id": lease.id, "ttl": lease.ttl, "expires_at": lease.expires_at}


class _SecurityHeaders:
    """Headers every answer carries: no sniffing, no framing, no referrer, a strict CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-content-type-options", b"nosniff"),
                                      (b"x-frame-options", b"DENY"),
                                      (b"referrer-policy", b"no-referrer"),
                                      (b"content-security-policy", CSP.encode())]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(service: JobService, *, token: str, events: EventLog, allowed_hosts: frozenset[str],
               cors_origins: tuple[str, ...] = (), max_torrent_size: int = MAX_TORRENT_SIZE,
               heartbeat: float = DEFAULT_HEARTBEAT, compat_username: str | None = None,
               metrics: Metrics | None = None, history: StatsHistory | None = None,
               stream_metadata_wait: float = METADATA_WAIT, job_json: JobJson | None = None,
               logbook: LogBook | None = None, feeds: FeedReader | None = None,
               daemon_stop: DaemonStop | None = None,
               on_request: Callable[[], object] | None = None) -> Starlette:
    """The API's Starlette application over ``service``, behind the token and Host checks
    (with qBittorrent's WebAPI and Transmission's RPC: ``compat_username``, when given, is the
    only user name their logins accept; ``/metrics``: ``metrics``, by default one that takes the
    API token; ``/api/stats/history``: ``history``, which the caller samples; a magnet's stream
    waits ``stream_metadata_wait`` seconds for the metadata before a 503; ``job_json``: the jobs'
    kept JSON, shared with the event stream's snapshot; ``logbook``: the log ``/api/log`` and
    qBittorrent's ``log/*`` read; ``feeds``: the feed reader ``/api/feeds`` and qBittorrent's
    ``rss/*`` edit, by default the service's, which runs once one of them is asked;
    ``daemon_stop``: the daemon's stop a client may ask for, by default none: refused;
    ``on_request``: told as each request begins, before anything else)."""
    daemon_stop = daemon_stop if daemon_stop is not None else DaemonStop()
    metrics = metrics if metrics is not None else Metrics(service, tokens=(token,))
    feeds = feeds if feeds is not None else FeedReader.of(service)
    logbook = logbook if logbook is not None else LogBook()
    tickets = Tickets()
    gate = Gate(service, token=token)
    api = Api(service, events, tickets, max_torrent_size=max_torrent_size, heartbeat=heartbeat,
              history=history if history is not None else StatsHistory(), gate=gate, job_json=job_json,
              daemon_stop=daemon_stop)
    streams = StreamApi(service, token, metadata_wait=stream_metadata_wait)
    routes = [
        Route("/", api.index, methods=["GET"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),  # its own token check (not under /api)
        Mount("/ui", StaticFiles(directory=STATIC_DIR), name="ui"),
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/health", api.health, methods=["GET"]),
        Route("/api/login", api.login, methods=["POST"]),
        Route("/api/logout", api.logout, methods=["POST"]),
        Route("/api/me", api.me, methods=["GET"]),
        Route("/api/stats", api.stats, methods=["GET"]),
        Route("/api/stats/history", api.stats_history, methods=["GET"]),
        Route("/api/shutdown", api.shutdown, methods=["POST"]),
        Route("/api/jobs", api.list_jobs, methods=["GET"]),
        Route("/api/jobs", api.add_job, methods=["POST"]),
        Route("/api/jobs", api.clear_history, methods=["DELETE"]),
        Route("/api/jobs/active", api.active_jobs, methods=["GET"]),
        Route("/api/jobs/active", api.active_jobs_other_method, methods=["POST", "PUT", "PATCH", "DELETE"],
              name=METHOD_NOT_ALLOWED),
        Route("/api/jobs/bulk", api.bulk, methods=["POST"]),
        Route("/api/jobs/{job_id}", api.get_job, methods=["GET"]),
        Route("/api/jobs/{job_id}", api.update, methods=["PATCH"]),
        Route("/api/jobs/{job_id}", api.cancel, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/pause", api.pause, methods=["POST"]),
        Route("/api/jobs/{job_id}/resume", api.resume, methods=["POST"]),
        Route("/api/jobs/{job_id}/recheck", api.recheck, methods=["POST"]),
        Route("/api/jobs/{job_id}/events", api.job_events, methods=["GET"]),
        Route("/api/jobs/{job_id}/stream-token", streams.stream_token, methods=["GET"]),
        Route("/api/jobs/{job_id}/files/{index}/stream", streams.stream, methods=["GET", "HEAD"]),
        Route("/api/events", api.all_events, methods=["GET"]),
        Route("/api/events/ticket", api.ticket, methods=["POST"]),
        Route("/api/clients", api.open_lease, methods=["POST"]),
        Route("/api/clients/{lease_id}/heartbeat", api.heartbeat_lease, methods=["POST"]),
        Route("/api/clients/{lease_id}", api.end_lease, methods=["DELETE"]),
        *FeatureApi(service, read_json, api.max_json, gate).routes(),
        *GroupApi(service, read_json, api.max_json).routes(),
        *JobEditApi(service, read_json, api.max_json).routes(),
        *UserApi(gate.users, read_json).routes(),
        *LogApi(logbook).routes(),
        *FeedApi(service, read_json, api.max_json, feeds).routes(),
        *CreationApi(service, read_json, api.max_json).routes(),
        *FolderApi(service, gate).routes(),
        *DedupApi(service, read_json, api.max_json,
                  lambda source: parse_source(source, api.torrent_limit())).routes(),
        *QbittorrentApi(service, token=token, username=compat_username, gate=gate, logbook=logbook,
                        feeds=feeds, max_body=max(api.max_json, max_torrent_size + JSON_OVERHEAD),
                        max_torrent_size=max_torrent_size, domains=allowed_hosts,
                        daemon_stop=daemon_stop).routes(),
        *TransmissionRpc(service, token=token, username=compat_username, gate=gate,
                         max_body=max(api.max_json, max_torrent_size + JSON_OVERHEAD),
                         max_torrent_size=max_torrent_size, daemon_stop=daemon_stop).routes(),
    ]
    middleware = [Middleware(_SecurityHeaders),
                  Middleware(GuardMiddleware, token=token, allowed_hosts=allowed_hosts,
                             max_body=max(api.max_json, max_torrent_size + JSON_OVERHEAD),
                             tickets=tickets, gate=gate)]
    if cors_origins:
        # Only when asked for; the token is still required (a header, so no credentials mode).
        middleware.insert(1, Middleware(CORSMiddleware, allow_origins=list(cors_origins),
                                        allow_methods=["GET", "POST", "PATCH", "DELETE"],
                                        allow_headers=["authorization", "x-api-token", "content-type",
                                                       "last-event-id"]))
    middleware.insert(0, Middleware(RequestTimer, histogram=metrics.requests,  # outermost: times all
                                    on_request=on_request))
    # Each class named so that Starlette's exception middleware answers it (only what is left
    # over reaches ``Exception``: a 500 in JSON, with the traceback in the log alone).
    handlers: dict[type[Exception], ExceptionHandler] = {cls: _handle_exception for cls in (
        ApiError, JobError, HTTPException, TorrentEngineError, Exception)}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
