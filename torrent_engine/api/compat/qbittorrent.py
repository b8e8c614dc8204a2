"""qBittorrent's WebAPI v2 (WebAPI 2.16.0, the level of qBittorrent 5.3) over the job service.

A translator: names, states, units and answers are qBittorrent's, every fact is the service's
(categories, tags, share limits, the queue ... are job features). Authentication: ``auth/login``
with the daemon's API token as the password (any user name, unless the daemon is given one)
sets an ``SID`` cookie; ``Authorization: Bearer <token>`` works on every call, and so do an API key
and HTTP Basic credentials (``qbittorrent_auth.py``). The calls docs/compat.md lists as
supported are answered, the others are qBittorrent's 404. As qBittorrent does, a request whose
``Origin`` or ``Referer`` names another host than its ``Host`` is refused (401), so a web page
elsewhere cannot use a logged-in browser's cookie. What the service cannot
do is answered as a qBittorrent without that feature would answer (404 for an unknown method,
400/409 for a value it cannot take), never with a fake success. See docs/compat.md.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import __version__
from ...engine.addtorrent import (
    AddTorrent,
    AddTorrentError,
    MagnetLink,
    Parsed,
    TorrentBytes,
    from_text,
    over_the_limit,
    read_add_torrent,
    read_link,
)
from ...errors import StreamError, TorrentEngineError
from ...feeds import FeedReader
from ...formats.endpoint import EndpointError, split_host_port
from ...formats.magnet import Magnet, MagnetError, parse_magnet
from ...formats.metainfo import Torrent
from ...jobs import (
    AddOptions,
    InvalidJobRequest,
    Job,
    JobConflict,
    JobError,
    JobNotFound,
    JobService,
    JobState,
    ServiceSettings,
    ServiceStarting,
    StateNotSaved,
)
from ...jobs.disk.incomplete import shown_folder
from ...jobs.intake.creations import CreationTask, TorrentCreations
from ...jobs.organising.features import features_from
from ...jobs.tuning.altspeed import effective_limits
from ...jobs.tuning.mail import MailNotSent
from ...jsonvalue import JSON
from ...logbook import LogBook, LogLevel
from .. import jsontext
from .. import pages as paging
from ..access import TOKEN, AccessDenied, Gate, LoginRefused, Principal, acting, current
from ..pages import PartsResponse, array_parts, joined_pages
from ..shutdown import DaemonStop
from ..stream import DiskFile, range_response
from ..users import Scope
from . import network
from .asked import asked_as
from .edits import qbt_add_trackers, qbt_edit_tracker, qbt_remove_trackers, qbt_rename, remove_jobs
from .forms import Form, FormError, parse_form
from .interfaces import address_list, interface_list
from .kept import Kept, KeptRecords, SameInputs
from .qbittorrent_app import (
    ClientData,
    cookie_records,
    directory_content,
    free_space,
    launch_time,
    read_cookies,
)
from .qbittorrent_auth import ApiKey, authorization, basic_credentials
from .qbittorrent_creator import read_request, record
from .qbittorrent_metadata import MetadataMemory, info_hash_record, metadata_record
from .qbittorrent_prefs import RESOLVES_PEER_COUNTRIES, preference_changes, preferences, served_preferences
from .qbittorrent_records import (
    APP_VERSION,
    MAX_RATIO,
    MAX_SEEDING_TIME,
    MAX_SESSIONS,
    QBT_TO_OURS,
    SESSION_TTL,
    STOP_BY_NAME,
    WEBAPI_VERSION,
    Listed,
    QbtError,
    QbtRecord,
    endpoint_name,
    enum_value,
    file_rows,
    filter_states,
    parse_bool,
    parse_double,
    parse_int,
    peer_record,
    properties_record,
    qt_json,
    qt_record,
    rate_limit_in,
    ratio_limit_in,
    seeding_time_limit_in,
    share_limit_in,
    status_filter,
    torrent_record,
    tracker_rows,
)
from .qbittorrent_rss import RSS_GETTERS, rss_methods
from .qbittorrent_sync import MainData, MainDataSync, Shown, Trackers, server_state
from .webseed_edits import qbt_add_web_seeds, qbt_edit_web_seed, qbt_remove_web_seeds, qbt_web_seeds

log = logging.getLogger(__name__)
_INFO_HASH = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[2-7A-Za-z]{32}")

Handler = Callable[[Form, Request], Awaitable[JSON | Response]]  # one method of the API
# torrents/add's enumerations (qBittorrent's names, in any case) -> ours
_LAYOUTS = {"original": "original", "subfolder": "subfolder", "nosubfolder": "no_subfolder"}
_SHARE_LIMIT_ACTIONS = {"default": "default", "stop": "stop", "remove": "remove",
                        "removewithcontent": "remove_with_files", "enablesuperseeding": "super_seed"}


def sorted_by(records: list[Kept[QbtRecord]], field: str, *, reverse: bool = False) -> list[Kept[QbtRecord]]:
    """``records`` sorted by their ``field`` (``torrents/info``'s ``sort``): compared as they
    are when the field's values are of one type (5-6 times faster than a key per type: 5-9 ms
    for 30 000 records against 33-51, ``bench/bench_info_sort.py``), else by type and then by
    value (None beside numbers)."""
    try:
        return sorted(records, key=lambda k: k.record[field], reverse=reverse)
    except TypeError:
        return sorted(records, key=lambda k: (str(type(k.record[field])), k.record[field]), reverse=reverse)


class QbittorrentApi:
    """The ``/api/v2/{namespace}/{method}`` routes over one service."""

    def __init__(self, service: JobService, *, token: str, username: str | None, max_body: int,
                 max_torrent_size: int, clock: Callable[[], float] = time.monotonic,
                 gate: Gate | None = None, logbook: LogBook | None = None,
                 feeds: FeedReader | None = None, domains: Iterable[str] = (),
                 daemon_stop: DaemonStop | None = None) -> None:
        self.service = service
        self.daemon_stop = daemon_stop if daemon_stop is not None else DaemonStop()  # app/shutdown
        self.domains = ";".join(sorted(domains))  # (the host names the API answers to: app/preferences)
        self.feeds = feeds if feeds is not None else FeedReader.of(service)  # rss/*
        self.logbook = logbook if logbook is not None else LogBook()  # (log/main, log/peers)
        self.gate = gate if gate is not None else Gate(service, token=token)
        self.token = token.encode()
        self.username = username
        self.max_body = max_body
        self.max_torrent_size = max_torrent_size
        self._clock = clock
        # SID -> when it was last used and who logged in (auth, not job state)
        self._sessions: dict[str, tuple[float, Principal]] = {}
        state_dir = service.config.state_dir
        self.api_key = ApiKey(Path(state_dir) if state_dir is not None else None)
        self.client_data = ClientData(Path(state_dir) if state_dir is not None else None)
        self._launch_time = launch_time()
        self.creations = TorrentCreations.of(service)  # torrentcreator/*: the service's tasks, ours too
        self._syncs: dict[str, MainDataSync] = {}  # what each sync/maindata answer showed, by rid, per user
        self._kept: KeptRecords[QbtRecord] = KeptRecords()  # each job's torrent record and its JSON
        self._share_limits: SameInputs[ServiceSettings] = SameInputs(  # (what a record reads of them)
            lambda s: (s.ratio_limit, s.seeding_time_limit, s.idle_seeding_limit))
        self._metadata = MetadataMemory()  # what fetchMetadata/parseMetadata learnt, for save and add
        getters: dict[str, Handler] = {
            "app/version": self.app_version, "app/webapiVersion": self.webapi_version,
            "app/buildInfo": self.build_info, "app/preferences": self.get_preferences,
            "app/defaultSavePath": self.default_save_path, "transfer/info": self.transfer_info,
            "app/networkInterfaceList": self.network_interfaces,
            "app/networkInterfaceAddressList": self.network_addresses,
            "transfer/downloadLimit": self.global_download_limit,
            "transfer/uploadLimit": self.global_upload_limit, "transfer/speedLimitsMode": self.speed_mode,
            "torrents/info": self.info, "torrents/properties": self.properties, "torrents/files": self.files,
            "torrents/trackers": self.trackers, "torrents/webseeds": self.webseeds,
            "torrents/pieceStates": self.piece_states, "torrents/pieceHashes": self.piece_hashes,
            "torrents/categories": self.categories, "torrents/tags": self.tags,
            "torrents/downloadLimit": self.download_limits, "torrents/uploadLimit": self.upload_limits,
            "sync/maindata": self.maindata, "sync/torrentPeers": self.torrent_peers,
            "torrents/export": self.export, "auth/logout": self.logout,
            "torrents/saveMetadata": self.save_metadata, "torrents/downloadFile": self.download_file,
            "torrents/count": self.count, "torrents/pieceAvailability": self.piece_availability,
            "transfer/getSpeedLimits": self.speed_limits,
            "app/getDirectoryContent": self.directory_content, "app/getFreeSpaceAtPath": self.free_space,
            "app/processInfo": self.process_info, "clientdata/load": self.load_client_data,
            "app/cookies": self.cookies, "log/main": self.log_main, "log/peers": self.log_peers,
            "torrentcreator/status": self.creation_status, "torrentcreator/torrentFile": self.created_file,
        }
        actions: dict[str, Handler] = {
            "app/setPreferences": self.set_preferences, "app/shutdown": self.shutdown,
            "transfer/setDownloadLimit": self.set_global_download,
            "transfer/setUploadLimit": self.set_global_upload, "torrents/add": self.add,
            "torrents/fetchMetadata": self.fetch_metadata, "torrents/parseMetadata": self.parse_metadata,
            "transfer/banPeers": self.ban_peers, "transfer/toggleSpeedLimitsMode": self.toggle_speed_mode,
            "transfer/setSpeedLimitsMode": self.set_speed_mode,
            "torrents/delete": self.delete, "torrents/pause": self.pause, "torrents/stop": self.pause,
            "torrents/resume": self.resume, "torrents/start": self.resume, "torrents/recheck": self.recheck,
            "torrents/reannounce": self.reannounce, "torrents/setCategory": self.set_category,
            "torrents/createCategory": self.create_category, "torrents/editCategory": self.edit_category,
            "torrents/removeCategories": self.remove_categories, "torrents/addTags": self.add_tags,
            "torrents/removeTags": self.remove_tags, "torrents/createTags": self.create_tags,
            "torrents/deleteTags": self.delete_tags, "torrents/setShareLimits": self.set_share_limits,
            "torrents/topPrio": self._queue("top"), "torrents/bottomPrio": self._queue("bottom"),
            "torrents/increasePrio": self._queue("up"), "torrents/decreasePrio": self._queue("down"),
            "torrents/setForceStart": self.set_force_start, "torrents/filePrio": self.file_prio,
            "torrents/setLocation": self.set_location, "torrents/rename": self.rename,
            "torrents/setDownloadPath": self.set_download_path, "torrents/setSavePath": self.set_save_path,
            "torrents/addPeers": self.add_peers, "torrents/setDownloadLimit": self.set_download_limit,
            "torrents/setUploadLimit": self.set_upload_limit,
            "torrents/toggleSequentialDownload": self.toggle_sequential,
            "torrents/toggleFirstLastPiecePrio": self.toggle_first_last,
            "torrents/setAutoManagement": self.set_auto_management,
            "torrents/setSuperSeeding": self.set_super_seeding, "torrents/setTags": self.set_tags,
            "torrents/setComment": self.set_comment,
            "transfer/setSpeedLimits": self.set_speed_limits,
            "app/rotateAPIKey": self.rotate_api_key, "app/deleteAPIKey": self.delete_api_key,
            "clientdata/store": self.store_client_data, "app/setCookies": self.set_cookies,
            "app/sendTestEmail": self.send_test_email,
            "torrentcreator/addTask": self.add_creation, "torrentcreator/deleteTask": self.delete_creation,
            "torrents/renameFile": lambda f, r: qbt_rename(self.service, self._one(f), f, folder=False),
            "torrents/renameFolder": lambda f, r: qbt_rename(self.service, self._one(f), f, folder=True),
            "torrents/addTrackers": lambda f, r: qbt_add_trackers(self.service, self._one(f), f),
            "torrents/editTracker": lambda f, r: qbt_edit_tracker(self.service, self._one(f), f),
            "torrents/removeTrackers": lambda f, r: qbt_remove_trackers(
                self.service, self._selected(f, "hash" if f.get("hashes") is None else "hashes"), f),
            "torrents/addWebSeeds": self.add_web_seeds, "torrents/editWebSeed": self.edit_web_seed,
            "torrents/removeWebSeeds": self.remove_web_seeds,
        }
        for name, handler in rss_methods(self.feeds).items():
            (getters if name in RSS_GETTERS else actions)[name] = handler
        self._getters = getters
        self._actions = actions

    def routes(self) -> list[Route]:
        """The one route every method goes through."""
        return [Route("/api/v2/{namespace}/{method}", self.dispatch, methods=["GET", "POST"])]

    # -- plumbing ----------------------------------------------------------------------------
    @staticmethod
    def _same_origin(request: Request) -> bool:
        host = request.headers.get("host", "").lower()
        for header in ("origin", "referer"):
            value = request.headers.get(header)
            if value:
                if urlsplit(value).netloc.lower() != host:
                    return False
        return True

    async def _authorised(self, request: Request, scheme: str, credentials: str) -> Principal | None:
        """A Bearer token (the daemon's, the API key, a user's key), else a live ``SID`` cookie,
        else HTTP Basic credentials (a wrong one: ``401``, as qBittorrent): who it is, or None."""
        if scheme == "bearer":
            if hmac.compare_digest(credentials.encode(), self.token) or self.api_key.matches(credentials):
                return TOKEN
            return self.gate.bearer(credentials)  # (a user's key, or a session of our /api/login)
        sid = request.cookies.get("SID")
        if sid:
            now = self._clock()
            held = self._sessions.get(sid)
            if held is not None and now - held[0] <= SESSION_TTL:
                principal = self.gate.again(held[1])  # (a user removed since: logged out)
                if principal is not None:
                    self._sessions[sid] = (now, principal)
                    return principal
            self._sessions.pop(sid, None)
        if scheme == "basic":
            user_password = basic_credentials(credentials)
            principal = None if user_password is None else await self._credentials(
                *user_password, _address(request))
            if principal is None:
                log.warning("qBittorrent API: refused HTTP Basic credentials for user %r",
                            (user_password or ("",))[0][:40])
                raise QbtError(401, "Unauthorized")
            return principal
        return None

    async def _credentials(self, user: str, password: str, address: str) -> Principal | None:
        """Who a user name and password are: a user of the daemon with their password, or (any
        user name, or the configured one) the API token as the password. A failure counts
        against ``address`` (``LoginRefused`` after too many)."""
        if self.gate.users.any and self.gate.users.find(user) is not None:
            return await self.gate.password(user, password, address)
        self.gate.limiter.check(address)
        good = hmac.compare_digest(password.encode(), self.token)
        if self.username is not None and not hmac.compare_digest(user.encode(), self.username.encode()):
            good = False
        if not good:
            self.gate.limiter.failed(address)
            return None
        return TOKEN

    async def dispatch(self, request: Request) -> Response:
        """Check origin and authentication, read the form, run the method, answer as qBittorrent."""
        name = f"{request.path_params['namespace']}/{request.path_params['method']}"
        if not self._same_origin(request):
            log.warning("qBittorrent API: refused %s with a foreign Origin/Referer", name)
            return _text("Unauthorized", 401)
        scheme, credentials = authorization(request.headers.get("authorization", ""))
        if scheme == "bearer" and name.startswith("auth/"):
            return _text("Forbidden", 403)  # (a key is no way to log in or out, as qBittorrent)
        try:
            form = await self._form(request)
            if name == "auth/login":
                if request.method != "POST":  # (never a password in a URL, as qBittorrent)
                    return _text("Method Not Allowed", 405)
                return await self.login(form, _address(request), secure=request.url.scheme == "https")
            principal = await self._authorised(request, scheme, credentials)
            if principal is None:
                return _text("Forbidden", 403)
            handler = self._getters.get(name)
            if handler is None:
                handler = self._actions.get(name)
                if handler is None:
                    return _text("Endpoint does not exist", 404)  # (2.14's words; "Not Found" before)
                if request.method != "POST":
                    return _text("Method Not Allowed", 405)
            with acting(principal):
                self.gate.require(_scope_of(name, name in self._getters), name)
                try:
                    result = await handler(form, request)
                except InvalidJobRequest as exc:  # (named as the client named it, where ours differs)
                    param = _PARAM_NAMES.get((name, exc.field or ""))
                    if param is None:
                        raise
                    raise QbtError(400, f"{param}: {exc.reason}") from exc
        except LoginRefused:  # (qBittorrent's words for an address banned after failed logins)
            return _text(BANNED, 403)
        except AccessDenied as exc:
            return _text(str(exc), 403)
        except QbtError as exc:
            return _text(exc.text, exc.status)
        except FormError as exc:
            return _text(str(exc), 400)
        except JobNotFound:
            return _text("Torrent hash was not found", 404)
        except ServiceStarting as exc:  # (its torrents are loading: a change waits for that)
            return Response(str(exc), status_code=503, media_type="text/plain",
                            headers={"Retry-After": str(exc.retry_after)})
        except JobConflict as exc:
            return _text(str(exc), 409)
        except StateNotSaved as exc:  # (not made: the state folder is full, or failing)
            return _text(str(exc), 507 if exc.full else 503)
        except (JobError, TorrentEngineError) as exc:
            return _text(str(exc), 400)
        except (ValueError, TypeError) as exc:  # a value of the wrong kind in a client's JSON or form
            log.warning("qBittorrent API: %s refused: %s", name, exc)
            return _text(f"Bad Request: {exc}", 400)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(b"", media_type="text/plain; charset=UTF-8")
        if isinstance(result, str):
            return _text(result)
        return Response(json.dumps(qt_json(result), ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json")

    async def _form(self, request: Request) -> Form:
        body = b""
        if request.method == "POST":
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body:
                    raise QbtError(413, "Request body too large")
                chunks.append(chunk)
            body = b"".join(chunks)
        return parse_form(request.headers.get("content-type", ""), body, request.url.query)

    def _listed(self, info_hashes: Iterable[str]) -> list[Job]:
        """The listed jobs of the torrents ``info_hashes`` the principal sees, looked up (a call
        about one torrent makes no view of the others)."""
        return self.gate.visible(self.service.client_jobs_of(h.strip().lower() for h in info_hashes))

    def _one_listed(self, info_hash: str) -> Job | None:
        return next(iter(self._listed([info_hash])), None)

    def _selected(self, form: Form, name: str = "hashes") -> list[Job]:
        """The jobs ``hashes`` names (``all``, or hashes joined by ``|``); unknown ones are skipped,
        as qBittorrent does."""
        raw = form.get(name)
        if raw is None:
            raise QbtError(400, f"missing parameter {name}")
        if raw.strip().lower() == "all":
            return self.gate.client_jobs()
        return self._listed(raw.split("|"))

    def _one(self, form: Form) -> Job:
        raw = form.get("hash")
        if not raw:
            raise QbtError(400, "missing parameter hash")
        job = self._one_listed(raw)
        if job is None:
            raise QbtError(404, "Torrent hash was not found")
        return job

    def _torrent(self, job: Job) -> Torrent | None:
        try:
            return self.service.metainfo(job.id)
        except JobNotFound:
            return None

    # -- auth ----------------------------------------------------------------------------------
    async def login(self, form: Form, address: str, *, secure: bool = False) -> Response:
        """``auth/login``: ``Ok.`` with an ``SID`` cookie (``Secure`` when ``secure``: asked over
        HTTPS), or ``401`` (WebAPI 2.14; ``Fails.`` before, which the body still says for a
        client of 4.x). A user of the daemon logs in with their name and password; the API
        token as the password logs in as the admin."""
        user, password = form.get("username") or "", form.get("password") or ""
        principal = await self._credentials(user, password, address)
        if principal is None:
            log.warning("qBittorrent API: failed login for user %r", user[:40])
            return _text("Fails.", 401)
        now = self._clock()
        self._sessions = {s: t for s, t in self._sessions.items() if now - t[0] <= SESSION_TTL}
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        sid = secrets.token_urlsafe(24)
        self._sessions[sid] = (now, principal)
        response = _text("Ok.")
        response.set_cookie("SID", sid, httponly=True, samesite="strict", path="/", secure=secure)
        return response

    async def logout(self, form: Form, request: Request) -> None:
        """``auth/logout``: the session's cookie no longer works."""
        sid = request.cookies.get("SID")
        if sid:
            self._sessions.pop(sid, None)

    async def rotate_api_key(self, form: Form, request: Request) -> dict[str, str]:
        """``app/rotateAPIKey``: a new API key (``{"apiKey": ...}``, shown this once); the old one
        no longer works. ``Authorization: Bearer <key>`` opens every call but ``auth/``."""
        return {"apiKey": await anyio.to_thread.run_sync(self.api_key.rotate)}

    async def delete_api_key(self, form: Form, request: Request) -> None:
        """``app/deleteAPIKey``: no API key from now on."""
        await anyio.to_thread.run_sync(self.api_key.delete)

    # -- app -----------------------------------------------------------------------------------
    async def directory_content(self, form: Form, request: Request) -> list[JSON]:
        """``app/getDirectoryContent`` ``dirPath`` (absolute, inside the download root; a user's
        inside their own folder), ``mode`` (``all``, ``dirs``, ``files``), ``withMetadata``."""
        _require(form, "dirPath")
        p = current()
        root = self.service.download_root if p.admin or not p.name else self.gate.user_root(p.name)
        return await anyio.to_thread.run_sync(
            directory_content, root, form.get("dirPath") or "",
            form.get("mode") or "all", bool(parse_bool(form.get("withMetadata"))))

    async def free_space(self, form: Form, request: Request) -> str:
        """``app/getFreeSpaceAtPath`` ``path`` (inside the download root): bytes free there."""
        _require(form, "path")
        return str(await anyio.to_thread.run_sync(free_space, self.service.download_root,
                                                  form.get("path") or ""))

    async def log_main(self, form: Form, request: Request) -> Response:
        """``log/main`` ``normal``, ``info``, ``warning``, ``critical`` (each ``true`` unless
        ``false``), ``last_known_id`` (the lines after it; not a number: all, as qBittorrent):
        the daemon's log lines, their ``timestamp`` in seconds (written as they are: no float in
        them for ``qt_json`` to walk: 8.7 ms of the 16.6 of a body of 10 000 lines)."""
        levels = frozenset(level for level in LogLevel
                           if parse_bool(form.get(level.name.lower())) is not False)
        lines = [{"id": line.id, "message": line.message, "timestamp": int(line.time),
                  "type": int(line.level)} for line in self.logbook.lines(_last_known_id(form), levels)]
        return Response(json.dumps(lines, ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json")

    async def log_peers(self, form: Form, request: Request) -> list[JSON]:
        """``log/peers`` ``last_known_id``: the peers refused (``blocked``) or banned, and why."""
        return [{"id": p.id, "ip": p.ip, "timestamp": int(p.time), "blocked": p.blocked, "reason": p.reason}
                for p in self.logbook.peers(_last_known_id(form))]

    async def process_info(self, form: Form, request: Request) -> dict[str, int]:
        """``app/processInfo``: when the daemon's process started."""
        return {"launch_time": self._launch_time}

    async def shutdown(self, form: Form, request: Request) -> None:
        """``app/shutdown``: the daemon stops, as qBittorrent quits (an admin's; answered first)."""
        self.daemon_stop("qBittorrent's app/shutdown")

    async def load_client_data(self, form: Form, request: Request) -> dict[str, JSON]:
        """``clientdata/load`` ``keys`` (a JSON array; none: everything stored)."""
        return dict(self.client_data.load(form.get("keys") or ""))

    async def store_client_data(self, form: Form, request: Request) -> None:
        """``clientdata/store`` ``data`` (a JSON object; a ``null`` value removes its key)."""
        _require(form, "data")
        await anyio.to_thread.run_sync(self.client_data.store, form.get("data") or "")

    async def cookies(self, form: Form, request: Request) -> list[JSON]:
        """``app/cookies`` (2.11.3): the cookies sent with the .torrent URLs and feeds fetched."""
        return cookie_records(self.service.url_cookies())

    async def send_test_email(self, form: Form, request: Request) -> None:
        """``app/sendTestEmail`` (2.10.4): the test mail sent now with the mail preferences as
        they are (qBittorrent answers before it is sent; here a mail that cannot go is a 409
        saying why)."""
        try:
            await self.service.mailer.test()
        except (MailNotSent, InvalidJobRequest) as exc:
            raise QbtError(409, f"the test mail was not sent: {exc}") from exc

    async def set_cookies(self, form: Form, request: Request) -> None:
        """``app/setCookies`` (2.11.3) ``cookies``: a JSON array of them, which become all of them."""
        _require(form, "cookies")
        await self.service.set_url_cookies(read_cookies(form.get("cookies") or ""))

    async def app_version(self, form: Form, request: Request) -> str:
        """``app/version``."""
        return APP_VERSION

    async def webapi_version(self, form: Form, request: Request) -> str:
        """``app/webapiVersion``."""
        return WEBAPI_VERSION

    async def build_info(self, form: Form, request: Request) -> QbtRecord:
        """``app/buildInfo``: this engine in place of qBittorrent's libraries."""
        return {"qt": "", "libtorrent": f"torrent_engine {__version__}", "boost": "", "openssl": "",
                "zlib": "", "bitness": 64, "platform": "linux", "app": "torrent_engine"}

    async def get_preferences(self, form: Form, request: Request) -> dict[str, JSON]:
        """``app/preferences``."""
        prefs = {**preferences(self.service), **served_preferences(request, self.domains)}
        for secret in ("proxy_password", "mail_notification_password"):
            if not current().admin and prefs.get(secret):  # (the daemon's secret: an admin's to see)
                prefs[secret] = "***"
        return prefs

    async def network_interfaces(self, form: Form, request: Request) -> list[dict[str, str]]:
        """``app/networkInterfaceList``: the interfaces the engine may be bound to."""
        return interface_list()

    async def network_addresses(self, form: Form, request: Request) -> list[str]:
        """``app/networkInterfaceAddressList?iface=``: an interface's addresses."""
        return address_list(form.get("iface") or "")

    async def default_save_path(self, form: Form, request: Request) -> str:
        """``app/defaultSavePath``: the download root."""
        return str(self.service.download_root)

    async def set_preferences(self, form: Form, request: Request) -> None:
        """``app/setPreferences`` (``json=``): one settings change (``preference_changes``)."""
        try:
            prefs = jsontext.loads(form.get("json") or "{}")
        except ValueError as exc:
            raise QbtError(400, "json is not valid JSON") from exc
        if not isinstance(prefs, dict):
            raise QbtError(400, "json must be an object")
        served = served_preferences(request, self.domains)
        try:
            await self.service.update_settings(**preference_changes(prefs, self.service, served))
        except InvalidJobRequest as exc:  # (named as the client named it: our setting in brackets)
            key = asked_as(exc.field, prefs, lambda one: preference_changes(one, self.service, served),
                           (QbtError,))
            if key is None:
                raise
            raise QbtError(400, f"{key}: {exc.reason} (the setting {exc.field})") from exc

    # -- transfer ------------------------------------------------------------------------------
    async def transfer_info(self, form: Form, request: Request) -> QbtRecord:
        """``transfer/info``."""
        state = server_state(self.service)
        keys = ("dl_info_speed", "dl_info_data", "up_info_speed", "up_info_data", "dl_rate_limit",
                "up_rate_limit", "dht_nodes", "connection_status")
        return {k: state[k] for k in keys}

    async def global_download_limit(self, form: Form, request: Request) -> str:
        """``transfer/downloadLimit`` (bytes per second, 0 = none): the limit in force (the
        alternative one while it is on, as qBittorrent answers)."""
        return str(effective_limits(self.service.get_settings())[0])

    async def global_upload_limit(self, form: Form, request: Request) -> str:
        """``transfer/uploadLimit``."""
        return str(effective_limits(self.service.get_settings())[1])

    async def speed_mode(self, form: Form, request: Request) -> str:
        """``transfer/speedLimitsMode``: 1 while the alternative limits are on, else 0."""
        return "1" if self.service.get_settings().alt_speed_enabled else "0"

    async def toggle_speed_mode(self, form: Form, request: Request) -> None:
        """``transfer/toggleSpeedLimitsMode``: the alternative limits on or off (with a schedule,
        until its next edge)."""
        on = self.service.get_settings().alt_speed_enabled
        await self.service.update_settings(alt_speed_enabled=not on)

    async def set_speed_mode(self, form: Form, request: Request) -> None:
        """``transfer/setSpeedLimitsMode`` ``mode``: ``0`` the global limits, any other integer
        the alternative ones (with a schedule, until its next edge), as qBittorrent reads it."""
        _require(form, "mode")
        mode = parse_int(form.get("mode"))
        if mode is None:
            raise QbtError(400, "'mode': invalid argument")
        await self.service.update_settings(alt_speed_enabled=mode != 0)

    async def set_global_download(self, form: Form, request: Request) -> None:
        """``transfer/setDownloadLimit`` ``limit``: the limit in force (the alternative one while
        it is on, as qBittorrent sets it)."""
        alt = self.service.get_settings().alt_speed_enabled
        name = "alt_download_limit" if alt else "download_limit"
        await self.service.update_settings(**{name: _limit(form)})

    async def set_global_upload(self, form: Form, request: Request) -> None:
        """``transfer/setUploadLimit`` ``limit``."""
        alt = self.service.get_settings().alt_speed_enabled
        name = "alt_upload_limit" if alt else "upload_limit"
        await self.service.update_settings(**{name: _limit(form)})

    async def speed_limits(self, form: Form, request: Request) -> dict[str, int]:
        """``transfer/getSpeedLimits``: the global and the alternative limits (bytes per second,
        0 = none), whichever is in force."""
        s = self.service.get_settings()
        return {"up_limit": s.upload_limit, "dl_limit": s.download_limit,
                "alt_up_limit": s.alt_upload_limit, "alt_dl_limit": s.alt_download_limit}

    async def set_speed_limits(self, form: Form, request: Request) -> None:
        """``transfer/setSpeedLimits`` ``up_limit``, ``dl_limit``, ``alt_up_limit``,
        ``alt_dl_limit`` (all four required; bytes per second, 0 or -1 = none): one settings
        change. qBittorrent reads a value that is no integer as 0 (no limit); that is refused
        here (400 naming it) rather than lifting a limit the client did not mean to lift."""
        names = {"up_limit": "upload_limit", "dl_limit": "download_limit",
                 "alt_up_limit": "alt_upload_limit", "alt_dl_limit": "alt_download_limit"}
        _require(form, *names)
        changes: dict[str, object] = {}
        for name, ours in names.items():
            value = parse_int(form.get(name))
            if value is None:
                raise QbtError(400, f"{name} must be an integer")
            changes[ours] = rate_limit_in(value, name)
        await self.service.update_settings(**changes)

    async def ban_peers(self, form: Form, request: Request) -> None:
        """``transfer/banPeers`` ``peers`` (``host:port`` joined by ``|``): their addresses join
        the banned ones (peers connected from them are dropped)."""
        banned = network.ban_peers(form.get("peers") or "", self.service.get_settings())
        await self.service.update_settings(banned_ips=banned)

    # -- reading torrents ----------------------------------------------------------------------
    async def _records(self, keep: Callable[[QbtRecord], bool] | None = None, *,
                       trackers: Trackers | None = None, listed: Listed | None = None,
                       turns: paging.Turns | None = None) -> list[Kept[QbtRecord]]:
        """Every listed job's torrent record (those ``keep`` keeps, when given), kept while the
        job's snapshot and the share settings are the same objects (a job's metainfo does not
        change under one snapshot: its arrival is news that makes the job's snapshot again).
        Read ``STEP`` jobs at a time, the loop let run between two once the work has had its
        turn (``turns``', when given: the answer's). ``trackers``: each
        listed job's tracker URLs tracked there too (a full ``sync/maindata``'s), in the same walk.
        ``listed``: of the jobs in its category and with its tag alone, those its status passes
        (``torrents/info``'s filters: no view made of the others, no record of those it passes
        over)."""
        settings = self.service.get_settings()
        limits = self._share_limits(settings)
        make = partial(self._record, settings=settings)
        kept = self._kept
        every: list[Kept[QbtRecord]] = []
        out: list[Kept[QbtRecord]] = []
        chosen = listed or Listed()
        turns = turns or paging.Turns()
        for page in self.service.client_pages(paging.STEP, category=chosen.category, tag=chosen.tag,
                                              owner=self.gate.owner_shown(), states=chosen.states):
            jobs = self.gate.visible(page)
            if chosen.status is not None:
                jobs = [job for job in jobs if chosen.status(job)]
            rows = [kept.get(job, limits, make, _moved) for job in jobs]
            if trackers is not None:
                for k in rows:
                    trackers.track(k.job.info_hash, k.tracker_urls())
            every.extend(rows)
            out.extend(rows if keep is None else [k for k in rows if keep(k.record)])
            await turns.take()
        if listed is None:  # (every job's: the others' records are kept for the next list)
            kept.prune(every)
        return out

    def _records_of(self, info_hashes: Iterable[str], keep: Callable[[QbtRecord], bool] | None,
                    listed: Listed) -> list[Kept[QbtRecord]]:
        """``_records``' of the torrents ``info_hashes`` alone, in its order: their jobs looked up
        (``hashes``: a client asking after the torrents it added makes no record of the others),
        the others' kept records left as they are."""
        settings = self.service.get_settings()
        limits, make = self._share_limits(settings), partial(self._record, settings=settings)
        jobs = [job for job in self._listed(info_hashes) if listed.passes(job)]
        rows = [self._kept.get(job, limits, make, _moved) for job in jobs]
        return rows if keep is None else [k for k in rows if keep(k.record)]

    def _record(self, job: Job, settings: ServiceSettings) -> QbtRecord:
        """The job's torrent record with the JSON types a real qBittorrent gives (``qt_json``: it
        is kept and its JSON written as it is, past the answers' own conversion)."""
        return qt_record(torrent_record(job, settings, self.service.torrent_facts(job.id)))

    async def info(self, form: Form, request: Request) -> Response:
        """``torrents/info`` with filter, category, tag, hashes, private (2.11.1), sort, reverse,
        limit, offset; ``includeTrackers`` (2.11.4) and ``includeFiles`` (2.11.8) put each
        torrent's ``trackers`` and ``files`` (as ``torrents/trackers`` and ``files`` list them) in
        its record."""
        status = form.get("filter") or "all"
        chosen = Listed(status_filter(status) if status != "all" else None,
                        form.get("category"), form.get("tag"), filter_states(status))
        private = parse_bool(form.get("private"))
        keep = (lambda r: r["private"] is private) if private is not None else None
        hashes = form.get("hashes")
        if hashes:  # (those torrents alone, looked up)
            records = self._records_of({h.strip().lower() for h in hashes.split("|")}, keep, chosen)
        else:
            records = await self._records(keep, listed=chosen if chosen.chooses() else None)
        sort = form.get("sort")
        if sort:
            if records and sort not in records[0].record:
                raise QbtError(400, f"cannot sort by {sort[:40]!r}")
            records = sorted_by(records, sort, reverse=bool(parse_bool(form.get("reverse"))))
        offset = _int(form.get("offset"), "offset", 0)
        if offset < 0:
            offset = max(0, len(records) + offset)
        limit = _int(form.get("limit"), "limit", 0)
        records = records[offset:]
        if limit > 0:
            records = records[:limit]
        with_trackers = parse_bool(form.get("includeTrackers"))
        with_files = parse_bool(form.get("includeFiles"))
        if with_trackers or with_files:  # (each record made again with them: asked for, not kept)
            rows: list[JSON] = []
            for k in records:
                row: dict[str, JSON] = dict(qt_record(dict(k.record)))
                torrent = self._torrent(k.job)
                if with_trackers:  # (its trackers alone, as qBittorrent's getTrackers)
                    row["trackers"] = list(self.trackers_of(k.job, sticky=False))
                if with_files and torrent is not None:  # (none before the metadata)
                    counts = self.service.piece_availability(k.job.id)
                    row["files"] = list(file_rows(k.job, torrent, None, counts))
                rows.append(row)
            return Response(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode(),
                            media_type="application/json")
        pages = await joined_pages(records, Kept.json)
        return PartsResponse(array_parts(pages), media_type="application/json")

    async def properties(self, form: Form, request: Request) -> dict[str, JSON]:
        """``torrents/properties``."""
        job = self._one(form)
        return properties_record(job, self.service.get_settings(), self._torrent(job),
                                 self.service.piece_states(job.id), time.time())

    async def files(self, form: Form, request: Request) -> list[dict[str, JSON]]:
        """``torrents/files`` (``indexes`` narrows the list: an entry that is not a whole number
        of 0 or more, or one the torrent does not have once its metadata is known, is a 409 that
        names it, as qBittorrent says)."""
        job = self._one(form)
        torrent = self._torrent(job)
        wanted: set[int] | None = None
        if form.get("indexes") is not None:
            wanted = set()
            for text in (form.get("indexes") or "").split("|"):  # (judged in order, as qBittorrent does)
                i = parse_int(text)
                if i is None or i < 0:
                    raise QbtError(409, f'"{text}" is not a valid file index.')
                if torrent is not None and i >= len(job.files):
                    raise QbtError(409, f"Index {text} is out of bounds.")
                wanted.add(i)
        counts = self.service.piece_availability(job.id) if torrent is not None else []
        return file_rows(job, torrent, wanted, counts)

    async def trackers(self, form: Form, request: Request) -> list[dict[str, JSON]]:
        """``torrents/trackers``: DHT, PeX and LSD first (as qBittorrent lists them), then the trackers."""
        job = self._one(form)
        self.service.scrape_trackers(job.id)  # (in the background, if due: the next look shows it)
        return self.trackers_of(job, sticky=True)

    def trackers_of(self, job: Job, *, sticky: bool) -> list[dict[str, JSON]]:
        """The rows ``torrents/trackers`` answers for ``job`` (``sticky``: DHT, PeX and LSD's too)."""
        torrent = self._torrent(job)
        config = self.service.config
        rows = (("DHT", config.dht_enabled), ("PeX", True), ("LSD", config.lsd_enabled)) if sticky else ()
        try:
            announcing = self.service.announcing(job.id)
        except JobNotFound:  # (removed since it was listed)
            announcing = frozenset()
        port = self.service.manager.shared.listen_port
        endpoint = endpoint_name(config.listen_host or config.bind_address, port)  # (the listener's)
        v2_only = torrent is not None and not torrent.is_v1
        return tracker_rows(job, torrent is not None and torrent.private, rows, announcing, endpoint,
                            2 if v2_only else 1)

    async def webseeds(self, form: Form, request: Request) -> list[dict[str, str]]:
        """``torrents/webseeds``: the job's web seeds (as edited, else the torrent's url-list)."""
        return qbt_web_seeds(self.service, self._one(form))

    async def add_web_seeds(self, form: Form, request: Request) -> None:
        """``torrents/addWebSeeds`` ``hash``, ``urls`` (see ``webseed_edits``)."""
        _require(form, "hash", "urls")
        await qbt_add_web_seeds(self.service, self._one(form), form.fields["urls"])

    async def edit_web_seed(self, form: Form, request: Request) -> None:
        """``torrents/editWebSeed`` ``hash``, ``origUrl``, ``newUrl`` (see ``webseed_edits``)."""
        _require(form, "hash", "origUrl", "newUrl")
        await qbt_edit_web_seed(self.service, self._one(form), form.fields["origUrl"], form.fields["newUrl"])

    async def remove_web_seeds(self, form: Form, request: Request) -> None:
        """``torrents/removeWebSeeds`` ``hash``, ``urls`` (see ``webseed_edits``)."""
        _require(form, "hash", "urls")
        await qbt_remove_web_seeds(self.service, self._one(form), form.fields["urls"])

    async def piece_states(self, form: Form, request: Request) -> list[int]:
        """``torrents/pieceStates``: 0 missing, 1 downloading, 2 have."""
        return self.service.piece_states(self._one(form).id) or []

    async def piece_hashes(self, form: Form, request: Request) -> list[str]:
        """``torrents/pieceHashes`` (SHA-1, v1 torrents)."""
        torrent = self._torrent(self._one(form))
        return [h.hex() for h in torrent.piece_hashes] if torrent is not None else []

    async def piece_availability(self, form: Form, request: Request) -> list[int]:
        """``torrents/pieceAvailability`` ``hash``: per piece, how many connected peers have it
        (``[]`` before the metadata and for a complete torrent, as libtorrent answers)."""
        _require(form, "hash")
        return self.service.piece_availability(self._one(form).id)

    async def count(self, form: Form, request: Request) -> str:
        """``torrents/count``: how many torrents are listed."""
        if current().reads_all:  # (every job: counted, no view of each made)
            return str(self.service.client_states().total())
        return str(len(self.gate.client_jobs()))

    async def categories(self, form: Form, request: Request) -> dict[str, dict[str, str | None]]:
        """``torrents/categories`` (a user's: those they made and their torrents')."""
        return self._categories()

    def _categories(self) -> dict[str, dict[str, str | None]]:
        cats = {c.name: c for c in self.service.categories()}
        # (downloadPath null: the default, as 2.11.10 writes it)
        return {name: {"name": name, "savePath": cats[name].save_path, "downloadPath": None}
                for name in self.gate.labels(cats, ())[0]}

    async def tags(self, form: Form, request: Request) -> list[str]:
        """``torrents/tags`` (a user's: those they made and their torrents')."""
        return self.gate.labels((), self.service.tags())[1]

    async def download_limits(self, form: Form, request: Request) -> dict[str, int]:
        """``torrents/downloadLimit``: per hash, bytes per second (0: none)."""
        return {j.info_hash: j.options.download_limit for j in self._selected(form)}

    async def upload_limits(self, form: Form, request: Request) -> dict[str, int]:
        """``torrents/uploadLimit``."""
        return {j.info_hash: j.options.upload_limit for j in self._selected(form)}

    # -- sync ----------------------------------------------------------------------------------
    async def maindata(self, form: Form, request: Request) -> dict[str, JSON] | Response:
        """``sync/maindata?rid=N``: everything (``full_update``) or what changed since answer N.
        Each answer keeps the records it showed; a record still the same object (its job's
        snapshot unchanged) is passed over without a look at its fields, and a full answer joins
        the records' kept JSON."""
        rid = _int(form.get("rid"), "rid", 0)
        categories = self._categories()
        settings = self.service.get_settings()
        limits = self._share_limits(settings)
        make = partial(self._record, settings=settings)
        sync = self._sync_of(current())
        before = sync.shown(rid)
        turns = paging.Turns()
        changes = None if before is None else await paging.stepped(
            self.service.client_changes_in_steps(before.cursor, positions=True, page=paging.STEP), turns)
        positions: dict[str, int] = {}  # (the positions shown apart from their records': Shown's)
        if before is None or changes is None or changes.full or before.limits != limits:
            cursor = self.service.change_cursor()  # (before the list: a change after it is after it)
            trackers = Trackers()
            records = {str(k.record["hash"]): k for k in await self._records(trackers=trackers, turns=turns)}
            torrents = {h: k.record for h, k in records.items()}
            changed: list[str] | None = None
        else:  # (the torrents changed since answer rid, from the change log: not every torrent)
            cursor, records = changes.cursor, {}
            torrents, positions = dict(before.data["torrents"]), dict(before.positions)
            trackers = before.trackers.copy()

            def show(h: str, job: Job | None) -> bool:
                """Show ``job``'s record as torrent ``h``'s (its kept JSON at hand for the answer),
                when this user sees it; whether it is shown."""
                if job is None or not self.gate.shows(job):
                    return False
                kept = records[h] = self._kept.get(job, limits, make)
                torrents[h] = kept.record
                trackers.track(h, kept.tracker_urls())
                return True

            for n, (h, listed) in enumerate(changes.torrents.items(), 1):
                if n % paging.STEP == 0:
                    await turns.take()  # (thousands changed: the loop runs between steps)
                positions.pop(h, None)
                if not show(h, listed[-1] if listed else None):  # (the last listed, as a dict by hash keeps)
                    torrents.pop(h, None)
                    trackers.track(h, ())
            for h, (position, job_id) in changes.moved.items():  # (moved in the queue, and only that)
                old = torrents.get(h)
                if old is not None:  # (shown at rid: that record, its position kept apart)
                    if old["priority"] == position:
                        positions.pop(h, None)
                    else:
                        positions[h] = position
                else:  # (not shown at rid)
                    show(h, self.service.get(job_id))
            changed = [*changes.torrents, *changes.moved]
        now: MainData = {"torrents": torrents, "categories": categories,
                         "tags": self.gate.labels((), self.service.tags())[1],
                         "server_state": server_state(self.service)}
        shown = Shown(now, cursor, limits, positions, trackers)
        return await sync.answer(rid, records, shown, changed, turns)

    def _sync_of(self, principal: Principal) -> MainDataSync:
        """The rids of ``principal``'s answers (one user's rid names nothing of another's view)."""
        key = f"{principal.role.value}:{principal.name}" if not principal.reads_all else ""
        sync = self._syncs.get(key)
        if sync is None:
            if len(self._syncs) >= 1024:
                del self._syncs[next(iter(self._syncs))]
            sync = self._syncs[key] = MainDataSync()
        return sync

    async def torrent_peers(self, form: Form, request: Request) -> dict[str, JSON]:
        """``sync/torrentPeers?hash=&rid=``: the torrent's connected peers (always a full update,
        which qBittorrent's protocol allows). ``show_flags`` is qBittorrent's
        ``resolve_peer_countries``, which this daemon never does (its rows' countries are empty: a
        web UI told to show flags drew a broken image on every row)."""
        job = self._one(form)
        size = job.torrent_size or 0  # (every file, pad files left out: qBittorrent's totalSize)
        peers = {p.address: peer_record(p, size) for p in job.peer_list}
        return {"rid": self._sync_of(current()).next_rid(), "full_update": True,
                "show_flags": RESOLVES_PEER_COUNTRIES, "peers": peers}

    async def export(self, form: Form, request: Request) -> Response:
        """``torrents/export?hash=``: the .torrent (409 before a magnet's metadata, as qBittorrent)."""
        torrent = self._torrent(self._one(form))
        if torrent is None:
            raise QbtError(409, "Torrent's metadata has not yet downloaded")
        return Response(torrent.to_bytes(), media_type="application/x-bittorrent")

    async def download_file(self, form: Form, request: Request) -> Response:
        """``torrents/downloadFile`` ``hash``, ``file`` (its index, or its path as
        ``torrents/files`` names it) (2.16): the bytes of a file that is complete, read from
        disk (a ``Range`` is honoured); ``409`` with qBittorrent's reason otherwise."""
        _require(form, "hash", "file")
        job = self._one_listed(form.get("hash") or "")
        if job is None:
            raise QbtError(404, "Torrent not found")
        if self._torrent(job) is None:
            raise QbtError(409, "Torrent metadata not available")
        asked = form.get("file") or ""
        files = dict(enumerate(job.files))  # (by their places, as torrents/files numbers them)
        index = parse_int(asked)
        if index is not None:
            if index < 0:
                raise QbtError(409, f'"{asked}" is not a valid file index')
            entry = files.get(index)
            if entry is None:
                raise QbtError(409, f"File index {index} is out of bounds")
        else:
            entry = next((f for f in job.files if f.path == asked), None)
            if entry is None:
                raise QbtError(409, f'"{asked}" is not a valid file path')
        if entry.progress < 1:
            raise QbtError(409, "File not fully downloaded")
        path = self.service.file_on_disk(job.id, entry.index)  # (under a suffix the rename kept)
        try:
            if path is None:
                raise StreamError(f"{job.name} has no file {entry.index}")
            source = await DiskFile(path, entry.path, entry.size).open()
        except StreamError as exc:  # (complete, and gone from the disk since)
            raise QbtError(409, str(exc)) from exc
        return await range_response(request, source)

    # -- metadata without adding (WebAPI 2.11.9) ------------------------------------------------
    async def fetch_metadata(self, form: Form, request: Request) -> Response:
        """``torrents/fetchMetadata`` ``source`` (a magnet link, an info-hash or an http(s) URL):
        the metainfo as qBittorrent shows it (``metadata_record``); for a magnet whose metadata
        is still being fetched, ``202`` with its hashes, to be asked again. A magnet's fetch is
        the job service's (``JobService.fetch_metadata``: bounded, stopped by an add); a URL is
        fetched before the answer (the service's fetch, with its time limit)."""
        _require(form, "source")
        source = _metadata_source(form)
        if (form.get("downloader") or "").strip():
            raise QbtError(400, "downloader must be a valid search plugin")  # (none here)
        magnet = _magnet_in(source)
        key = magnet.info_hash.hex() if magnet is not None else self._metadata.sources.get(source)
        if key is not None:
            known = self._metadata.torrents.get(key)
            if known is not None:
                return _json(metadata_record(known))
            job = self._one_listed(key)
            if job is not None:  # (in the transfer list: its metainfo, or its hashes while it has none)
                torrent = self._torrent(job)
                return _json(metadata_record(torrent)) if torrent is not None else \
                    _json(info_hash_record(magnet or parse_magnet("magnet:?xt=urn:btih:" + key)), 202)
        if magnet is not None:
            fetched = self.service.fetch_metadata(magnet)
            if fetched is None:
                self._metadata.asked(magnet)
                return _json(info_hash_record(magnet), 202)
            self._metadata.keep(fetched)
            return _json(metadata_record(fetched))
        if source[:7].lower() != "http://" and source[:8].lower() != "https://":
            raise QbtError(400, f"Unable to parse '{source}'")
        try:
            torrent = await self.service.fetch_metainfo(source)
        except InvalidJobRequest as exc:
            cause = exc.__cause__
            if isinstance(cause, AddTorrentError) and cause.kind == "torrent":
                raise QbtError(415, f"'{source}' is not a valid torrent file.") from exc
            raise QbtError(400, f"Unable to download '{source}': {exc}") from exc
        self._metadata.keep(torrent, source)
        return _json(metadata_record(torrent))

    def _not_too_large(self, data: bytes) -> None:
        """An uploaded .torrent within the .torrent file size limit (``torrent_file_size_limit``,
        within this API's cap); else 413, saying so."""
        limit = min(self.max_torrent_size, self.service.get_settings().torrent_file_size_limit)
        refusal = over_the_limit(len(data), limit)
        if refusal is not None:
            raise QbtError(413, f"Torrent file is too large: {refusal}")

    async def parse_metadata(self, form: Form, request: Request) -> list[JSON]:
        """``torrents/parseMetadata``: each uploaded .torrent's metainfo, in the order sent (2.13),
        remembered for ``saveMetadata`` and ``torrents/add``."""
        if not form.files:
            raise QbtError(400, "Must specify torrent file(s)")
        parsed: list[Torrent] = []
        for name, (_, data) in zip(form.filenames, form.files, strict=True):
            self._not_too_large(data)
            try:
                parsed.append(Torrent.from_bytes(data))
            except (TorrentEngineError, ValueError) as exc:
                raise QbtError(415, f"'{name}' is not a valid torrent file.") from exc
        for torrent in parsed:
            self._metadata.keep(torrent)
        return [metadata_record(t) for t in parsed]

    async def save_metadata(self, form: Form, request: Request) -> Response:
        """``torrents/saveMetadata`` ``source``: the .torrent of metadata ``fetchMetadata`` or
        ``parseMetadata`` had (``404`` for a source never seen, ``409`` while it is fetched)."""
        _require(form, "source")
        source = _metadata_source(form)
        magnet = _magnet_in(source)
        key = magnet.info_hash.hex() if magnet is not None else self._metadata.sources.get(source)
        if key is None:
            raise QbtError(404, "Not Found")
        torrent = self._metadata.torrents.get(key)
        if torrent is None and key in self._metadata.magnets and not self.service.metadata_fetching(key):
            torrent = self.service.fetch_metadata(self._metadata.magnets[key])  # (done since: take it)
            if torrent is not None:
                self._metadata.keep(torrent)
        if torrent is None:
            raise QbtError(409, "Metadata is not yet available")
        return Response(torrent.to_bytes(), media_type="application/x-bittorrent",
                        headers={"Content-Disposition": f'attachment; filename="{key}.torrent"'})

    # -- adding --------------------------------------------------------------------------------
    async def add(self, form: Form, request: Request) -> Response:
        """``torrents/add``: ``urls`` (magnets and http(s) .torrent URLs, one a line) and/or
        uploaded ``torrents``; WebAPI 2.14's answer (``_add_answer``)."""
        # Every field is read as qBittorrent 4.6's addAction reads it: parseBool, parseInt and
        # parseDouble fall back to the default, an enum name it does not know is its default
        # (Flood sends contentLayout=undefined), root_folder (before WebAPI 2.7) is not read.
        # What it knows and the engine cannot do is a 400 naming the field.
        layout = enum_value(form.get("contentLayout"), _LAYOUTS, "original")
        asked_stop = form.get("stopCondition")  # (none sent, or "": the preference's, as qBittorrent's)
        stop = enum_value(asked_stop, STOP_BY_NAME, "none") if asked_stop else None
        tags = [t for t in (form.get("tags") or "").split(",") if t.strip()]
        stopped = parse_bool(form.get("stopped"))  # (5.0's name; neither: the preference's)
        paused = parse_bool(form.get("paused")) if stopped is None else stopped
        features = features_from({
            "category": form.get("category") or "", "tags": tags,
            "ratio_limit": ratio_limit_in(parse_double(form.get("ratioLimit"))),
            "seeding_time_limit": seeding_time_limit_in(parse_int(form.get("seedingTimeLimit"))),
            "idle_seeding_limit": seeding_time_limit_in(parse_int(form.get("inactiveSeedingTimeLimit"))),
            "force_start": bool(parse_bool(form.get("forced"))),
            "first_last_piece": bool(parse_bool(form.get("firstLastPiecePrio"))),
            "rename": (form.get("rename") or "").strip(), "content_layout": layout,
            "share_limit_action": _share_limit_action(form)})
        _check_share_limits_mode(form)
        asked_auto = parse_bool(form.get("autoTMM"))  # (not said: the preference's auto_tmm_enabled)
        auto = self.service.settings.auto_managed_adds if asked_auto is None else asked_auto
        # (a user's torrent stays in their folder: managed by hand there)
        auto = auto and self.gate.manages_automatically()
        if auto:
            features = dataclasses.replace(features, auto_managed=True)
        options = AddOptions(  # (automatic management: the category's folder, whatever savepath says)
            save_path=None if auto else (form.get("savepath") or "").strip() or None, paused=paused,
            sequential=bool(parse_bool(form.get("sequentialDownload"))), features=features,
            download_limit=rate_limit_in(parse_int(form.get("dlLimit")), "dlLimit"),
            upload_limit=rate_limit_in(parse_int(form.get("upLimit")), "upLimit"),
            seed_mode=_seed_mode(form),  # (libtorrent's seed mode, as qBittorrent)
            download_path=self._download_path(form), stop_condition=stop,
            # (qBittorrent's queue positions exist while queueing is on; absent: the preference's)
            queue_top=self._queue_top(form))
        sources: list[AddTorrent] = []
        for _, data in form.files:
            self._not_too_large(data)
            try:
                sources.append(Parsed(read_add_torrent(TorrentBytes(data))))
            except AddTorrentError as exc:
                raise QbtError(415, f"Torrent file is not valid: {exc}") from exc
        urls = [u.strip() for u in (form.get("urls") or "").splitlines() if u.strip()]
        if not sources and not urls:
            raise QbtError(400, "neither urls nor torrents given")
        priorities = _file_priorities(form, len(urls))
        for url in urls:  # (a magnet link read here, in the batch's order; a URL fetched by the service)
            try:
                asked = from_text(_magnet_of_hash(url), files=False)
                read = read_link(asked) if isinstance(asked, MagnetLink) else None  # (BEP 46: added as given)
                parsed = read.torrent if isinstance(read, Parsed) else None
            except AddTorrentError as exc:
                log.warning("qBittorrent API: cannot add %s: %s", url[:80], exc)
                continue
            # (metadata fetchMetadata or parseMetadata had: added with it, then forgotten, as
            # qBittorrent's add does; a fetch under way for it ends, the job fetches its own)
            key = parsed.info_hash.hex() if parsed is not None else self._metadata.sources.get(url)
            known = self._metadata.torrents.get(key) if key is not None else None
            if priorities:  # (2.11.9: of the one torrent whose metadata was fetched or parsed)
                if known is None:
                    raise QbtError(400, "`filePriorities` may only be specified when metadata has "
                                        "already been fetched")
                indices = [i for i, f in enumerate(known.files) if not f.pad]  # (as qBittorrent lists them)
                if len(priorities) != len(indices):
                    raise QbtError(400, "Length of filePriorities must equal number of files in torrent")
                options = dataclasses.replace(
                    options, file_priorities=tuple(zip(indices, priorities, strict=True)))
            if key is not None:
                self._metadata.forget(key, url)
            sources.append(Parsed(known) if known is not None
                           else Parsed(parsed) if parsed is not None else asked)
        # (a batch at once, as qBittorrent's one call; a StateNotSaved is raised: none of them can
        # be added, said as such, not as "Fails.")
        added: list[str] = []
        refused: list[JobError] = []
        failed = len(urls) + len(form.files) - len(sources)  # (a URL that is no link)
        async with self.gate.adding(options, sources) as options:
            results = await self.service.add_many(sources, options)
            for result in results:
                if isinstance(result, JobError):
                    log.warning("qBittorrent API: add refused: %s", result)
                    refused.append(result)
                    failed += 1
                    continue
                try:
                    await self.gate.added(*result)
                except JobError as exc:  # (another user's torrent; past a byte quota: removed)
                    log.warning("qBittorrent API: add refused: %s", exc)
                    if len(results) == 1:
                        raise
                    failed += 1
                    continue
                if result[1]:
                    added.append(result[0].info_hash)
                else:  # (already there: a failure, as qBittorrent's Session::addTorrent says)
                    failed += 1
        option = _refused_option(refused) if not added and failed == len(refused) else None
        if option is not None:  # (every torrent refused for what the request asked of all: said so)
            raise QbtError(400, option)
        return _add_answer(added, failed)

    # -- the torrent creator -------------------------------------------------------------------
    async def add_creation(self, form: Form, request: Request) -> dict[str, JSON]:
        """``torrentcreator/addTask``: ``sourcePath`` (inside the download root), ``torrentFilePath``
        (inside it too; none: kept in memory), ``format``, ``pieceSize``, ``private``,
        ``ignoreDotfiles``, ``startSeeding``, ``comment``, ``source``, ``trackers`` and ``urlSeeds``
        (``|``-separated): ``{"taskID": ...}`` (``409`` with as many tasks unfinished as it keeps)."""
        creation = read_request(self.service.download_root, form)
        try:
            return {"taskID": self.creations.add(creation).id}
        except JobConflict as exc:
            raise QbtError(409, "Too many active tasks") from exc

    def _creation(self, task_id: str) -> CreationTask:
        try:
            return self.creations.get(task_id)
        except JobNotFound as exc:
            raise QbtError(404, "Not Found") from exc

    async def creation_status(self, form: Form, request: Request) -> list[JSON]:
        """``torrentcreator/status`` ``taskID`` (none: every task)."""
        task_id = form.get("taskID") or ""
        tasks = [self._creation(task_id)] if task_id else self.creations.tasks()
        return [record(task) for task in tasks]

    async def created_file(self, form: Form, request: Request) -> Response:
        """``torrentcreator/torrentFile`` ``taskID``: the .torrent (409 until it is made)."""
        _require(form, "taskID")
        task = self._creation(form.get("taskID") or "")
        if not task.finished:
            raise QbtError(409, "Torrent creation is still unfinished.")
        if task.error or task.torrent_file is None:
            raise QbtError(409, "Torrent creation failed.")
        return Response(task.torrent_file, media_type="application/x-bittorrent",
                        headers={"Content-Disposition": f'attachment; filename="{task.id}.torrent"'})

    async def delete_creation(self, form: Form, request: Request) -> None:
        """``torrentcreator/deleteTask`` ``taskID``: forgotten; cancelled if not finished."""
        _require(form, "taskID")
        self.creations.delete(self._creation(form.get("taskID") or "").id)

    # -- changing ------------------------------------------------------------------------------
    async def delete(self, form: Form, request: Request) -> None:
        """``torrents/delete`` ``hashes``, ``deleteFiles``."""
        if form.get("deleteFiles") is None:
            raise QbtError(400, "Bad Request")  # (qBittorrent wants it said)
        delete = bool(parse_bool(form.get("deleteFiles")))
        await remove_jobs(self.service, self._selected(form), delete_files=delete)

    async def _each(self, form: Form, action: Callable[[str], Awaitable[object]]) -> None:
        """``action`` on every job ``hashes`` names; one that does not fit its state is skipped."""
        await _quietly(self.service.each((job.id for job in self._selected(form)), action))

    async def pause(self, form: Form, request: Request) -> None:
        """``torrents/pause`` (and ``stop``)."""
        await self._each(form, self.service.pause)

    async def resume(self, form: Form, request: Request) -> None:
        """``torrents/resume`` (and ``start``)."""
        await self._each(form, self.service.resume)

    async def recheck(self, form: Form, request: Request) -> None:
        """``torrents/recheck``."""
        await self._each(form, self.service.recheck)

    async def reannounce(self, form: Form, request: Request) -> None:
        """``torrents/reannounce`` (``urls``, or 2.11.10's ``trackers`` as its changelog names
        it: ``|``-separated, percent-encoded: to those trackers alone, as qBittorrent's
        ``forceReannounce`` of each)."""
        listed = form.get("urls") or form.get("trackers") or ""
        urls = {unquote(url) for url in listed.split("|") if url} or None
        await self._each(form, lambda job_id: self.service.reannounce(job_id, urls))

    async def set_category(self, form: Form, request: Request) -> None:
        """``torrents/setCategory`` (409 for a category that does not exist)."""
        category = form.get("category") or ""
        jobs = self._selected(form)
        if jobs and category and category not in {c.name for c in self.service.categories()}:
            raise QbtError(409, "Incorrect category name")
        await self.service.set_features([j.id for j in jobs], category=category)

    async def create_category(self, form: Form, request: Request) -> None:
        """``torrents/createCategory`` ``category``, ``savePath``."""
        name = form.get("category") or ""
        if not name:
            raise QbtError(400, "Category cannot be empty")
        save_path = form.get("savePath") or ""
        try:
            await self.service.create_category(name, self.gate.confine(save_path) or "" if save_path else "")
        except JobConflict as exc:
            raise QbtError(409, "Unable to create category") from exc
        except InvalidJobRequest as exc:  # (a name it refuses: qBittorrent's 409, and why)
            if exc.field != "category":
                raise
            raise QbtError(409, f"Incorrect category name: {exc.reason}") from exc
        self.gate.made_labels(categories=[name])

    async def edit_category(self, form: Form, request: Request) -> None:
        """``torrents/editCategory``."""
        name = form.get("category") or ""
        if not name:
            raise QbtError(400, "Category cannot be empty")
        try:
            await self.service.edit_category(name, form.get("savePath") or "")
        except JobConflict as exc:
            raise QbtError(409, "Unable to edit category") from exc

    async def remove_categories(self, form: Form, request: Request) -> None:
        """``torrents/removeCategories`` (one name a line)."""
        names = [n for n in (form.get("categories") or "").splitlines() if n.strip()]
        await self.service.remove_categories(names)

    async def add_tags(self, form: Form, request: Request) -> None:
        """``torrents/addTags``."""
        await self.service.add_tags([j.id for j in self._selected(form)], _tags(form))

    async def set_tags(self, form: Form, request: Request) -> None:
        """``torrents/setTags`` ``hashes``, ``tags``: each torrent's tags become exactly these
        (unknown ones are created); unknown hashes are skipped, as qBittorrent does."""
        _require(form, "hashes", "tags")
        await self.service.set_features([j.id for j in self._selected(form)], tags=_tags(form))

    async def set_comment(self, form: Form, request: Request) -> None:
        """``torrents/setComment`` ``hashes``, ``comment`` (trimmed): the comment each torrent
        shows from now on in place of its metainfo's (kept with the job, as qBittorrent keeps it
        in its resume data; the .torrent is not changed)."""
        _require(form, "hashes", "comment")
        comment = (form.get("comment") or "").strip()
        await self.service.set_features([j.id for j in self._selected(form)], comment=comment)

    async def remove_tags(self, form: Form, request: Request) -> None:
        """``torrents/removeTags`` (no ``tags``: all of them)."""
        tags = _tags(form)
        await self.service.remove_tags([j.id for j in self._selected(form)], tags or None)

    async def create_tags(self, form: Form, request: Request) -> None:
        """``torrents/createTags``."""
        tags = _tags(form)
        await self.service.create_tags(tags)
        self.gate.made_labels(tags=tags)

    async def delete_tags(self, form: Form, request: Request) -> None:
        """``torrents/deleteTags``."""
        await self.service.delete_tags(_tags(form))

    async def set_share_limits(self, form: Form, request: Request) -> None:
        """``torrents/setShareLimits`` ``ratioLimit``, ``seedingTimeLimit`` (minutes)."""
        if form.get("ratioLimit") is None or form.get("seedingTimeLimit") is None:
            raise QbtError(400, "ratioLimit and seedingTimeLimit are required")
        # (shareLimitAction, WebAPI 2.12, which makes it required: optional here, for the
        # clients written against 4.x; not sent, the action is left as it is)
        action: dict[str, object] = {} if form.get("shareLimitAction") is None else {
            "share_limit_action": _share_limit_action(form)}
        if form.get("inactiveSeedingTimeLimit") is not None:  # (4.6's, required there: optional here too)
            action["idle_seeding_limit"] = share_limit_in(
                form.get("inactiveSeedingTimeLimit"), "inactiveSeedingTimeLimit", MAX_SEEDING_TIME, 60.0)
        _check_share_limits_mode(form)
        await self.service.set_features(
            [j.id for j in self._selected(form)],
            ratio_limit=share_limit_in(form.get("ratioLimit"), "ratioLimit", MAX_RATIO),
            seeding_time_limit=share_limit_in(form.get("seedingTimeLimit"), "seedingTimeLimit",
                                              MAX_SEEDING_TIME, 60.0),
            **action)

    def _queue(self, where: str) -> Handler:
        async def handler(form: Form, request: Request) -> None:
            if not self.service.get_settings().queueing:
                raise QbtError(409, "Torrent queueing must be enabled")
            await self.service.move_in_queue([j.id for j in self._selected(form)], where)
        handler.__doc__ = f"``torrents/...Prio``: move to the {where} of the queue."
        return handler

    async def set_force_start(self, form: Form, request: Request) -> None:
        """``torrents/setForceStart`` ``value``: forced jobs run whatever the queue says (and start)."""
        value = bool(parse_bool(form.get("value")))
        jobs = self._selected(form)
        await self.service.set_features([j.id for j in jobs], force_start=value)
        if value:  # (a paused one resumed, one stopped by an error too; one running already runs
            # forced, as qBittorrent's setForced: a resume of each walked their files for nothing)
            stopped = (job.id for job in jobs if job.options.paused or job.state is JobState.ERROR)
            await _quietly(self.service.each(stopped, self.service.resume))

    async def file_prio(self, form: Form, request: Request) -> None:
        """``torrents/filePrio`` ``hash``, ``id`` (``|``-joined), ``priority`` (0, 1, 6, 7)."""
        _require(form, "hash", "id")
        job = self._one(form)
        prio = _int(form.get("priority"), "priority", -1)
        if prio not in QBT_TO_OURS:
            raise QbtError(400, "Priority is not valid")
        if self._torrent(job) is None:
            raise QbtError(409, "Torrent's metadata has not yet downloaded")
        files = job.files  # (by their places, as torrents/files numbers them)
        ids = []
        for text in (form.get("id") or "").split("|"):  # (judged in order, as qBittorrent does)
            i = parse_int(text)
            if i is None:
                raise QbtError(400, "File IDs must be integers")
            if not 0 <= i < len(files):
                raise QbtError(409, "File ID is not valid")
            ids.append(i)
        await self.service.update(job.id, file_priorities={files[i].index: QBT_TO_OURS[prio] for i in ids})

    def _queue_top(self, form: Form) -> bool:
        """``addToTopOfQueue``, else the preference ``add_to_top_of_queue``: qBittorrent's queue
        positions exist while queueing is on (off, the add is last)."""
        settings = self.service.get_settings()
        asked = form.get("addToTopOfQueue")
        top = settings.add_to_top_of_queue if asked is None else bool(parse_bool(asked))
        return top and settings.queueing

    def _download_path(self, form: Form) -> str | None:
        """An add's incomplete folder: ``useDownloadPath`` off = none, on = ``downloadPath`` (else
        the temp_path preference); not sent: the preference decides."""
        use = parse_bool(form.get("useDownloadPath"))
        if use is None:
            return None
        if not use:
            return ""
        path = (form.get("downloadPath") or "").strip()
        return path or shown_folder(self.service.download_root, self.service.get_settings())

    async def set_download_path(self, form: Form, request: Request) -> None:
        """``torrents/setDownloadPath`` ``id`` (hashes joined by ``|``, as qBittorrent names them
        here; ``hashes`` is read too), ``path`` (inside the download root): where an unfinished
        torrent's data is until it completes (moved there now)."""
        path = (form.get("path") or "").strip()
        if path:
            path = self.gate.confine(path, "path") or path
        for job in self._selected(form, _ids(form)):
            await self.service.set_download_path(job.id, path)

    async def set_save_path(self, form: Form, request: Request) -> None:
        """``torrents/setSavePath`` ``id`` (as ``setDownloadPath``), ``path``: ``setLocation``'s
        move under 2.8.4's names (qBittorrent skips a torrent of automatic management there,
        which the daemon does not have)."""
        await self._move(form, "path", self._selected(form, _ids(form)))

    async def set_location(self, form: Form, request: Request) -> None:
        """``torrents/setLocation`` ``hashes``, ``location``."""
        await self._move(form, "location", self._selected(form))

    async def _move(self, form: Form, name: str, jobs: list[Job]) -> None:
        """``jobs`` moved to the folder the field ``name`` gives (inside the download root); a
        file already there is taken, not refused, as qBittorrent's move keeps existing files."""
        location = form.get(name) or ""
        if not location:
            raise QbtError(400, "Save path cannot be empty")
        location = self.gate.confine(location, name) or location
        for job in jobs:
            await self.service.set_location(job.id, location, keep_existing=True)

    async def rename(self, form: Form, request: Request) -> None:
        """``torrents/rename`` ``hash``, ``name``."""
        name = (form.get("name") or "").strip()
        if not name:
            raise QbtError(409, "Incorrect torrent name")
        await self.service.set_features([self._one(form).id], rename=name)

    async def add_peers(self, form: Form, request: Request) -> dict[str, dict[str, int]]:
        """``torrents/addPeers`` ``hashes``, ``peers`` (``host:port`` joined by ``|``): as
        qBittorrent, a peer that is no ``HOST:PORT`` is left out and the others added; none
        valid is a ``400`` (saying why the first was not)."""
        peers: list[tuple[str, int]] = []
        bad: list[str] = []
        for text in (form.get("peers") or "").split("|"):
            try:
                peers.append(split_host_port(text.strip()))
            except EndpointError as exc:
                bad.append(f"bad peer {text.strip()[:60]!r}: {exc}")
        if not peers:
            raise QbtError(400, f"No valid peers were specified ({bad[0]})")
        out: dict[str, dict[str, int]] = {}
        for job in self._selected(form):
            await self.service.add_peers(job.id, peers)
            out[job.info_hash] = {"added": len(peers), "failed": 0}
        return out

    async def set_download_limit(self, form: Form, request: Request) -> None:
        """``torrents/setDownloadLimit`` ``limit`` (bytes per second; 0 or -1 = none)."""
        limit = _limit(form)
        await self._each(form, lambda job_id: self.service.update(job_id, download_limit=limit))

    async def set_upload_limit(self, form: Form, request: Request) -> None:
        """``torrents/setUploadLimit``."""
        limit = _limit(form)
        await self._each(form, lambda job_id: self.service.update(job_id, upload_limit=limit))

    async def toggle_sequential(self, form: Form, request: Request) -> None:
        """``torrents/toggleSequentialDownload``."""
        jobs = {job.id: job for job in self._selected(form)}
        await _quietly(self.service.each(jobs, lambda job_id: self.service.update(
            job_id, sequential=not jobs[job_id].options.sequential)))

    async def toggle_first_last(self, form: Form, request: Request) -> None:
        """``torrents/toggleFirstLastPiecePrio``."""
        jobs = self._selected(form)
        for value in (True, False):  # (each turned the other way: two changes of many)
            await self.service.set_features([j.id for j in jobs if j.features.first_last_piece is not value],
                                            first_last_piece=value)

    async def set_super_seeding(self, form: Form, request: Request) -> None:
        """``torrents/setSuperSeeding`` ``hashes``, ``value``: super-seeding (BEP 16) on or off
        for each torrent (kept while it downloads, applied while it seeds, as qBittorrent's
        libtorrent does)."""
        value = parse_bool(form.get("value"))
        if value is None:
            raise QbtError(400, "missing parameter value")
        await _quietly(self.service.each((job.id for job in self._selected(form)
                                          if job.options.super_seeding != value),
                                         lambda job_id: self.service.update(job_id, super_seeding=value)))

    async def set_auto_management(self, form: Form, request: Request) -> None:
        """``torrents/setAutoManagement`` ``hashes``, ``enable``: automatic torrent management on
        (each torrent moves to its category's folder, and follows it) or off (it stays where it is,
        managed by hand): ``JobFeatures.auto_managed``, ``jobs/organising/managed.py``."""
        enable = bool(parse_bool(form.get("enable")))  # (as qBittorrent's parseBool(...).value_or(false))
        ids = [job.id for job in self._selected(form)
               if not job.finished and job.features.auto_managed != enable]
        if ids:
            await self.service.set_features(ids, auto_managed=enable)


# -- small helpers ---------------------------------------------------------------------------
BANNED = "Your IP address has been banned after too many failed authentication attempts."


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


# what a method needs beyond reading: most actions change torrents (``control``, on the ones the
# asker sees); these add one; those change the daemon (``admin``), as do the getters named here
_ADDING = frozenset({"torrents/add", "torrents/fetchMetadata", "torrents/parseMetadata"})
_CONTROL_PREFIX = "torrents/"
_ADMIN_ACTIONS = frozenset({"torrents/editCategory", "torrents/removeCategories", "torrents/deleteTags",
                            "torrents/setAutoManagement"})  # (it moves torrents out of a user's folder)
_ADMIN_GETTERS = frozenset({"app/cookies", "log/main", "log/peers", *RSS_GETTERS})
_PATH_GETTERS = frozenset({"app/getDirectoryContent"})  # (picking a path: an adder's, in their own folder)


def _scope_of(name: str, getter: bool) -> Scope:
    """The scope qBittorrent's method ``name`` needs."""
    if name in ("auth/logout", "torrents/saveMetadata"):
        return Scope.READ
    if getter:
        return Scope.ADMIN if name in _ADMIN_GETTERS else Scope.ADD if name in _PATH_GETTERS else Scope.READ
    if name in _ADDING:
        return Scope.ADD
    if name.startswith(_CONTROL_PREFIX) and name not in _ADMIN_ACTIONS:
        return Scope.CONTROL
    return Scope.ADMIN


def _last_known_id(form: Form) -> int:
    """``last_known_id`` as qBittorrent reads it: a whole number, anything else -1 (all)."""
    known = parse_int(form.get("last_known_id"))
    return -1 if known is None else max(-1, known)


def _text(text: str, status: int = 200) -> Response:
    return Response(text.encode(), status_code=status, media_type="text/plain; charset=UTF-8")


def _magnet_of_hash(text: str) -> str:
    """A bare info-hash (40 hex digits, 32 base32 ones, or a v2 one's 64 hex) as the magnet link
    it names, as qBittorrent's ``TorrentDescriptor::parse`` reads it; anything else as it is."""
    text = text.strip()
    if len(text) in (32, 40) and _INFO_HASH.fullmatch(text):
        return "magnet:?xt=urn:btih:" + text
    if len(text) == 64 and _INFO_HASH.fullmatch(text):
        return "magnet:?xt=urn:btmh:1220" + text  # (BEP 52: the multihash of a SHA-256)
    return text


def _json(value: JSON, status: int = 200) -> Response:
    return Response(json.dumps(qt_json(value), ensure_ascii=False, separators=(",", ":")).encode(),
                    status_code=status, media_type="application/json")


def _metadata_source(form: Form) -> str:
    """The metadata calls' ``source``, trimmed and percent-decoded (as qBittorrent reads it)."""
    source = unquote((form.get("source") or "").strip())
    if not source:
        raise QbtError(400, "Must specify URI or hash")
    return source


def _magnet_in(source: str) -> Magnet | None:
    """The magnet ``source`` is (a magnet link or a bare info-hash), else None."""
    link = _magnet_of_hash(source)
    if link[:7].lower() != "magnet:":
        return None
    try:
        return parse_magnet(link)
    except (MagnetError, ValueError) as exc:
        raise QbtError(400, f"Unable to parse '{source}'") from exc


def _share_limit_action(form: Form) -> str | None:
    """``shareLimitAction`` (WebAPI 2.12) as a job's own action (None: ``Default``, the global
    one); an unknown name is ``Default``, as qBittorrent's ``toEnum`` reads it."""
    action = enum_value(form.get("shareLimitAction"), _SHARE_LIMIT_ACTIONS, "default")
    return None if action == "default" else action


def _check_share_limits_mode(form: Form) -> None:
    """``shareLimitsMode`` (2.16: ``torrents/add``, ``setShareLimits``): a limit here is reached
    when either is (``MatchAny``, what ``Default`` is); ``MatchAll`` is a 400, an unknown name
    ``Default`` as qBittorrent's ``toEnum`` reads it."""
    if (form.get("shareLimitsMode") or "").strip().lower() == "matchall":
        raise QbtError(400, "shareLimitsMode MatchAll is not supported: a share limit is reached when "
                            "either the ratio or the seeding time limit is (MatchAny)")


def _file_priorities(form: Form, urls: int) -> list[int]:
    """``torrents/add``'s ``filePriorities`` (2.11.9: one a file, joined by ``,``) as our
    priorities, refused as qBittorrent refuses them; [] when not sent."""
    given = [p for p in (form.get("filePriorities") or "").split(",") if p]
    if not given:
        return []
    if urls > 1:
        raise QbtError(400, "Cannot specify filePriorities when adding multiple torrents")
    if form.files:
        raise QbtError(400, "Cannot specify filePriorities when uploading torrent files")
    out: list[int] = []
    for text in given:
        priority = parse_int(text)
        if priority is None:
            raise QbtError(400, "Priority must be an integer")
        if priority not in QBT_TO_OURS:
            raise QbtError(400, "Priority is not valid")
        out.append(QBT_TO_OURS[priority])
    return out


def _seed_mode(form: Form) -> bool:
    """``seedMode`` (WebAPI 2.16), else ``skip_checking`` (its name before): no check at the add."""
    seed_mode = parse_bool(form.get("seedMode"))
    return bool(parse_bool(form.get("skip_checking")) if seed_mode is None else seed_mode)


# a method's parameters by the names of the options they become, where they differ: a value the
# service refuses is named as the request named it ("save_path" was said of setLocation's location)
_PARAM_NAMES = {("torrents/setLocation", "save_path"): "location",
                ("torrents/setSavePath", "save_path"): "path",
                ("torrents/setDownloadPath", "download_path"): "path",
                ("torrents/createCategory", "save_path"): "savePath",
                ("torrents/editCategory", "save_path"): "savePath",
                # (the add's options that are the request's, not a torrent's: _refused_option)
                ("torrents/add", "save_path"): "savepath", ("torrents/add", "download_path"): "downloadPath"}


def _refused_option(refused: list[JobError]) -> str | None:
    """Why an add refused every torrent, when it is one option of the request (a ``savepath``
    outside the download root): said as a ``400`` naming it, where the answer was a bare ``409
    Conflict`` and the reason in the log alone; None otherwise."""
    fields = {e.field if isinstance(e, InvalidJobRequest) else None for e in refused}
    name = _PARAM_NAMES.get(("torrents/add", fields.pop() or "")) if len(fields) == 1 else None
    return None if name is None else f"{name}: {refused[0].reason}"


def _add_answer(added: list[str], failed: int) -> Response:
    """``torrents/add``'s answer (WebAPI 2.14; ``Ok.``/``Fails.`` before): the counts and the added
    torrents' hashes, or ``409 Conflict`` when none was added. (No add here is pending: a URL is
    fetched before the answer, so ``pending_count`` is 0.)"""
    if not added:
        return _text("Conflict", 409)
    body = {"success_count": len(added), "failure_count": failed, "pending_count": 0,
            "added_torrent_ids": added}
    return Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")


def _moved(record: QbtRecord, position: int) -> QbtRecord:
    """A torrent's record whose job moved in the queue and changed in nothing else."""
    return {**record, "priority": position}


def _require(form: Form, *names: str) -> None:
    """qBittorrent's ``requireParams``: a 400 naming every parameter not sent."""
    missing = [name for name in names if form.get(name) is None]
    if missing:
        raise QbtError(400, f"Missing required parameters: {', '.join(missing)}")


def _int(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(float(value))
    except (ValueError, OverflowError) as exc:  # (not a number, nan; inf)
        raise QbtError(400, f"{name} must be a number") from exc


def _ids(form: Form) -> str:
    """The field that names the torrents of ``setSavePath``/``setDownloadPath``: qBittorrent's
    ``id``, else ``hashes`` (as every other action names them)."""
    return "id" if form.get("id") is not None else "hashes"


def _limit(form: Form) -> int:
    return rate_limit_in(_int(form.get("limit"), "limit", 0), "limit")


def _tags(form: Form) -> list[str]:
    return [t.strip() for t in (form.get("tags") or "").split(",") if t.strip()]


async def _quietly(changes: Awaitable[dict[str, JobError]]) -> None:
    """Run an action on several jobs (``JobService.each``); one that does not fit its state is
    skipped, as qBittorrent skips it (a change the state folder cannot hold is refused,
    ``StateNotSaved``, raised by ``each``)."""
    for exc in (await changes).values():
        if isinstance(exc, ServiceStarting) or not isinstance(exc, JobConflict):
            raise exc  # (refused while the torrents load, as the whole call is; any other: the call's)
        log.debug("qBittorrent API: skipped: %s", exc)

