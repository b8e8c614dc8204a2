"""Our API's routes for categories, tags, the queue, moving a job, the run-time settings and
the cookies sent with .torrent URLs (the job fields themselves, category, tags, share limits ...,
go through ``PATCH /api/jobs/{id}`` and ``POST /api/jobs``: see app.py). Same JSON and errors as
the rest of the API."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import MagnetError
from ..formats.magnet import parse_magnet
from ..formats.metainfo import Torrent
from ..jobs import InvalidJobRequest, JobService
from ..jobs.control import QUEUE_MOVES
from ..jobs.model import JobFeatures
from ..jobs.organising.features import features_from
from ..jobs.validate import check_category, check_tags
from ..jsonvalue import JSON, JSONObject
from ..net.httpclient.cookies import MAX_COOKIES, Cookie, CookieError, check_cookie
from .access import current, shown_proxy_url

if TYPE_CHECKING:
    from .access import Gate

ReadJson = Callable[[Request, int], Awaitable[JSONObject]]  # the API's capped JSON reader
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/]')  # (not in a Content-Disposition's plain filename)


def torrent_file_response(torrent: Torrent, data: bytes | None = None) -> Response:
    """``torrent``'s .torrent (``data``, else its bytes) as a file to save, named after it (the
    plain ``filename`` in ASCII, ``filename*`` the name whole)."""
    name = f"{torrent.name}.torrent"
    ascii_name = _UNSAFE.sub("_", name).encode("ascii", "replace").decode().replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(torrent.to_bytes() if data is None else data, media_type="application/x-bittorrent",
                    headers={"Content-Disposition": disposition})


FEATURE_FIELDS = frozenset({"category", "tags", "ratio_limit", "seeding_time_limit", "idle_seeding_limit",
                            "force_start", "first_last_piece", "content_layout", "rename", "comment",
                            "share_limit_action", "auto_managed"})


def _text(data: JSONObject, name: str, default: str | None = None) -> str:
    """The string field ``name`` of a body (``default`` when absent or null, if there is one)."""
    value = data.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a string" if value is not None else "is required", name)
    return value


def query_flag(request: Request, name: str, default: bool = False) -> bool:
    """``?name=``: true, 1 or yes; false, 0 or no (any case); ``default`` when absent; anything
    else ``InvalidJobRequest`` naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidJobRequest(f"must be true or false, got {raw[:40]!r}", name)


def query_count(request: Request, name: str, *, least: int = 0, most: int = 10**18 - 1) -> int | None:
    """The whole number from ``least`` to ``most`` in ``?name=`` (``None`` when absent); anything
    else ``InvalidJobRequest`` naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18 and least <= int(raw) <= most):
        bounds = f"from {least} to {most}" if most < 10**18 - 1 else f">= {least}"
        raise InvalidJobRequest(f"must be a whole number {bounds}, got {raw[:40]!r}", name)
    return int(raw)


def add_features(data: JSONObject) -> JobFeatures | None:
    """The features named in a ``POST /api/jobs`` body (None when it names none)."""
    if not FEATURE_FIELDS & set(data):
        return None
    return features_from({k: v for k, v in data.items() if k in FEATURE_FIELDS})


def metadata_json(torrent: Torrent) -> dict[str, JSON]:
    """A torrent's metainfo as ``POST /api/metadata`` answers it: its name, size and files (each
    with the index ``files`` of ``POST /api/jobs`` takes, BEP 47 pad files marked), and the
    .torrent itself (base64), to be added as it is."""
    files: list[JSON] = [{"index": i, "path": "/".join(f.path), "length": f.length, "pad": f.pad}
                         for i, f in enumerate(torrent.files)]
    return {"info_hash": torrent.info_hash.hex(), "state": "fetched", "name": torrent.name,
            "size": torrent.payload_size, "files": files,
            "torrent": base64.b64encode(torrent.to_bytes()).decode("ascii")}


def cookie_json(cookie: Cookie) -> JSONObject:
    """One cookie as our API shows it (``expires``: epoch seconds, null a session cookie)."""
    return {"name": cookie.name, "value": cookie.value, "domain": cookie.domain, "path": cookie.path,
            "expires": cookie.expires}


_COOKIE_FIELDS = frozenset({"name", "value", "domain", "path", "expires"})


def cookies_from(data: JSONObject) -> list[Cookie]:
    """``{"cookies": [...]}`` as checked cookies; ``InvalidJobRequest`` naming the first bad
    field (``cookies[1].domain``)."""
    unknown = sorted(set(data) - {"cookies"})
    if unknown:
        raise InvalidJobRequest("is not a field of the cookies' list", unknown[0])
    rows = data.get("cookies")
    if not isinstance(rows, list):
        raise InvalidJobRequest("must be a list of cookies" if rows is not None else "is required", "cookies")
    if len(rows) > MAX_COOKIES:
        raise InvalidJobRequest(f"at most {MAX_COOKIES} cookies", "cookies")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidJobRequest("must be an object", f"cookies[{i}]")
        extra = sorted(set(row) - _COOKIE_FIELDS)
        if extra:
            raise InvalidJobRequest("is not a field of a cookie", f"cookies[{i}].{extra[0]}")
        try:
            out.append(check_cookie(row.get("name"), row.get("value"), row.get("domain"), row.get("path", ""),
                                    row.get("expires")))
        except CookieError as exc:
            field = "expires" if exc.field == "expirationDate" else exc.field
            raise InvalidJobRequest(exc.reason, f"cookies[{i}].{field}") from exc
    return out


class JsonRoutes:
    """A group of the API's handlers over one service; ``read_json`` is the API's capped JSON
    reader (each group's ``routes`` names its paths)."""

    def __init__(self, service: JobService, read_json: ReadJson, max_json: int) -> None:
        self.service = service
        self._read_json = read_json
        self.max_json = max_json

    async def _body(self, request: Request) -> JSONObject:
        return await self._read_json(request, self.max_json)


class FeatureApi(JsonRoutes):
    """Categories, tags, the queue, moving a job and the run-time settings (``gate``: what a
    user is shown of the categories and tags, and where they may move a job)."""

    def __init__(self, service: JobService, read_json: ReadJson, max_json: int, gate: Gate) -> None:
        super().__init__(service, read_json, max_json)
        self.gate = gate

    def _tags(self) -> list[str]:
        return self.gate.labels((), self.service.tags())[1]

    async def categories(self, request: Request) -> Response:
        """``GET /api/categories``: ``{"categories": [{"name", "save_path"}]}`` (a user's: those
        they made and those their jobs carry)."""
        cats = {c.name: c for c in self.service.categories()}
        shown = self.gate.labels(cats, ())[0]
        return JSONResponse({"categories": [cats[name].to_json() for name in shown]})

    async def create_category(self, request: Request) -> Response:
        """``POST /api/categories`` ``{"name", "save_path"?}`` (a user's is theirs, its folder
        inside theirs)."""
        data = await self._body(request)
        name = check_category(_text(data, "name"), "name")
        save_path = _text(data, "save_path", "")
        if save_path:
            save_path = self.gate.confine(save_path) or ""
        cat = await self.service.create_category(name, save_path)
        self.gate.made_labels(categories=[name])
        return JSONResponse(cat.to_json(), status_code=201)

    async def edit_category(self, request: Request) -> Response:
        """``PATCH /api/categories/{name}`` ``{"save_path"}``."""
        data = await self._body(request)
        cat = await self.service.edit_category(request.path_params["name"], _text(data, "save_path", ""))
        return JSONResponse(cat.to_json())

    async def remove_category(self, request: Request) -> Response:
        """``DELETE /api/categories/{name}`` (and its subcategories)."""
        gone = await self.service.remove_categories([request.path_params["name"]])
        return JSONResponse({"removed": gone})

    async def tags(self, request: Request) -> Response:
        """``GET /api/tags``: ``{"tags": [...]}`` (a user's: those they made and their jobs')."""
        return JSONResponse({"tags": self._tags()})

    async def create_tags(self, request: Request) -> Response:
        """``POST /api/tags`` ``{"tags": [...]}``."""
        data = await self._body(request)
        tags = data.get("tags")
        if not isinstance(tags, list):
            raise InvalidJobRequest("must be a list of tags", "tags")
        made = check_tags(tags)
        await self.service.create_tags(made)
        self.gate.made_labels(tags=made)
        return JSONResponse({"tags": self._tags()}, status_code=201)

    async def delete_tag(self, request: Request) -> Response:
        """``DELETE /api/tags/{tag}``: forget a tag and take it off every job."""
        await self.service.delete_tags([request.path_params["tag"]])
        return JSONResponse({"tags": self.service.tags()})

    async def settings(self, request: Request) -> Response:
        """``GET /api/settings``: share limits and action, queue, global rate limits (the proxy's
        password shown to an admin alone)."""
        out = self.service.get_settings().to_json()
        if isinstance(out.get("proxy_url"), str):
            out["proxy_url"] = shown_proxy_url(str(out["proxy_url"]))
        if out.get("mail_password") and not current().admin:  # (the daemon's secret: an admin's to see)
            out["mail_password"] = "***"
        return JSONResponse(out)

    async def test_mail(self, request: Request) -> Response:
        """``POST /api/settings/test-mail``: the test mail sent now with the mail settings as
        they are (400 naming a setting it needs, 502 saying why the server did not take it)."""
        await self.service.mailer.test()
        s = self.service.get_settings()
        return JSONResponse({"sent": True, "to": s.mail_to, "server": s.mail_server})

    async def update_settings(self, request: Request) -> Response:
        """``PATCH /api/settings``: change some of them."""
        data = await self._body(request)
        return JSONResponse((await self.service.update_settings(**data)).to_json())

    async def metadata(self, request: Request) -> Response:
        """``POST /api/metadata`` ``{"source": "magnet:?…"}``: the magnet's files before it is
        added, its info dict fetched from its peers without a job (nothing written). ``202``
        ``{"info_hash", "state": "fetching"}`` while it is fetched (the first call starts the
        fetch: ask again); then ``200`` with ``metadata_json`` (handed over once: asked again, it
        is fetched again). ``409`` when too many fetches are under way."""
        data = await self._body(request)
        unknown = sorted(set(data) - {"source"})
        if unknown:
            raise InvalidJobRequest("is not a field of a metadata fetch (only source)", unknown[0])
        try:
            magnet = parse_magnet(_text(data, "source"))
        except MagnetError as exc:
            raise InvalidJobRequest(str(exc), "source") from exc
        torrent = self.service.fetch_metadata(magnet)
        if torrent is None:
            return JSONResponse({"info_hash": magnet.info_hash.hex(), "state": "fetching"}, status_code=202)
        return JSONResponse(metadata_json(torrent))

    async def cookies(self, request: Request) -> Response:
        """``GET /api/cookies``: the cookies sent with the .torrent URLs and feeds the service fetches."""
        rows: list[JSON] = [cookie_json(c) for c in self.service.url_cookies()]
        return JSONResponse({"cookies": rows})

    async def set_cookies(self, request: Request) -> Response:
        """``PUT /api/cookies`` ``{"cookies": [...]}``: they become all of them."""
        await self.service.set_url_cookies(cookies_from(await self._body(request)))
        return await self.cookies(request)

    async def watch(self, request: Request) -> Response:
        """``GET /api/watch``: the watched folders, why one cannot be read, the files they held lately."""
        return JSONResponse(self.service.watch_status())

    async def ip_filter(self, request: Request) -> Response:
        """``GET /api/ipfilter``: the IP filter in force, what its file and URL gave (ranges, lines
        passed over and why), when each was read and why not."""
        return JSONResponse(self.service.blocklist.status())

    async def ip_filter_update(self, request: Request) -> Response:
        """``POST /api/ipfilter/update``: fetch the list URL now (409 saying why it could not be)."""
        await self.service.blocklist.update()
        return JSONResponse(self.service.blocklist.status())

    async def move(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/move`` ``{"save_path", "move"}``: move the job's files there
        (``move`` false: nothing moves, its data is looked for there)."""
        data = await self._body(request)
        save_path = _text(data, "save_path")
        if not save_path:
            raise InvalidJobRequest("must be a folder inside the download root", "save_path")
        move = data.get("move", True)
        if not isinstance(move, bool):
            raise InvalidJobRequest("must be true or false", "move")
        job = await self.service.set_location(request.path_params["job_id"],
                                              self.gate.confine(save_path) or save_path, move=move)
        return JSONResponse(job.to_json(detail=True))

    async def queue(self, request: Request) -> Response:
        """``GET /api/queue``: the unfinished jobs' ids in queue order."""
        return JSONResponse({"queue": self.service.queue_order()})

    async def queue_move(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/queue`` ``{"move": "top"|"bottom"|"up"|"down"}`` (409: queueing off)."""
        data = await self._body(request)
        where = _text(data, "move")
        if where not in QUEUE_MOVES:
            raise InvalidJobRequest(f"must be one of {', '.join(QUEUE_MOVES)}", "move")
        await self.service.move_in_queue([request.path_params["job_id"]], where)
        return JSONResponse({"queue": self.service.queue_order()})

    def routes(self) -> list[Route]:
        """The routes, to add to the API's."""
        return [
            Route("/api/categories", self.categories, methods=["GET"]),
            Route("/api/categories", self.create_category, methods=["POST"]),
            Route("/api/categories/{name:path}", self.edit_category, methods=["PATCH"]),
            Route("/api/categories/{name:path}", self.remove_category, methods=["DELETE"]),
            Route("/api/tags", self.tags, methods=["GET"]),
            Route("/api/tags", self.create_tags, methods=["POST"]),
            Route("/api/tags/{tag}", self.delete_tag, methods=["DELETE"]),
            Route("/api/settings", self.settings, methods=["GET"]),
            Route("/api/settings", self.update_settings, methods=["PATCH"]),
            Route("/api/settings/test-mail", self.test_mail, methods=["POST"]),
            Route("/api/watch", self.watch, methods=["GET"]),
            Route("/api/metadata", self.metadata, methods=["POST"]),
            Route("/api/cookies", self.cookies, methods=["GET"]),
            Route("/api/cookies", self.set_cookies, methods=["PUT"]),
            Route("/api/ipfilter", self.ip_filter, methods=["GET"]),
            Route("/api/ipfilter/update", self.ip_filter_update, methods=["POST"]),
            Route("/api/queue", self.queue, methods=["GET"]),
            Route("/api/jobs/{job_id}/move", self.move, methods=["POST"]),
            Route("/api/jobs/{job_id}/queue", self.queue_move, methods=["POST"]),
        ]
