"""Our API's ``/api/feeds``: the feeds the daemon reads, their articles and the download rules
(``torrent_engine.feeds``, the same reader qBittorrent's ``rss/*`` edit), an admin's (a feed's
URL often holds the user's key of the site). A feed or folder is named by its path (names joined
by ``\\``), a rule by its name, each in the body or the query, never in the URL's path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..feeds import (
    FeedConflict,
    FeedInputError,
    FeedMissing,
    FeedReader,
    RuleError,
    rule_from_json,
    rule_json,
)
from ..feeds.reader import MIN_INTERVAL
from ..jobs import InvalidJobRequest, JobConflict, JobNotFound, JobService
from ..jsonvalue import JSON, JSONObject
from .features import JsonRoutes, ReadJson

__all__ = ["FeedApi"]

T = TypeVar("T")
# the reader's names of an input (qBittorrent's) as our API names it
_FIELDS = {"itemPath": "path", "destPath": "to", "ruleName": "name", "newRuleName": "to",
           "savePath": "save_path"}


@contextmanager
def _as_api() -> Iterator[None]:
    """The reader's refusals as the API's: what is in the way a ``409``, bad input a ``400``, an
    item or a rule not there a ``404``."""
    try:
        yield
    except FeedMissing as exc:
        raise JobNotFound(exc.reason, _FIELDS.get(exc.field, exc.field)) from exc
    except FeedInputError as exc:
        raise InvalidJobRequest(exc.reason, _FIELDS.get(exc.field, exc.field)) from exc
    except FeedConflict as exc:
        raise JobConflict(exc.reason, _FIELDS.get(exc.field, exc.field)) from exc
    except RuleError as exc:
        raise InvalidJobRequest(exc.reason, _FIELDS.get(exc.field, exc.field)) from exc


def _fields(data: JSONObject, known: tuple[str, ...], needed: tuple[str, ...] = ()) -> None:
    """Every field of ``data`` one of ``known``, those ``needed`` there (``400`` naming it)."""
    for name in data:
        if name not in known:
            raise InvalidJobRequest(f"unknown field (known: {', '.join(known)})", name)
    for name in needed:
        if name not in data:
            raise InvalidJobRequest("needed", name)


def _text(data: JSONObject | dict[str, str], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise InvalidJobRequest("must be text", name)
    return value


def _interval(data: JSONObject) -> float:
    """``refresh_interval``: 0 (the settings') or at least ``MIN_INTERVAL`` seconds."""
    value = data.get("refresh_interval", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (value == 0 or MIN_INTERVAL <= value <= 10**9):
        raise InvalidJobRequest(f"0 (the settings' interval) or {MIN_INTERVAL:g} to 10^9 seconds",
                                "refresh_interval")
    return float(value)


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None:
        raise InvalidJobRequest("needed (in the query)", name)
    return value


class FeedApi(JsonRoutes):
    """The feeds, their articles and the rules of ``feeds``."""

    def __init__(self, service: JobService, read_json: ReadJson, max_json: int, feeds: FeedReader) -> None:
        super().__init__(service, read_json, max_json)
        self.feeds = feeds

    async def _load(self) -> None:
        """The feeds loaded, the reader running (it reads them in the service's task group: a
        service that stops keeps what was asked, read at its next start)."""
        self.feeds.ensure_running()
        with _as_api():
            await self.feeds.load()

    async def _edit(self, edit: Callable[[], Awaitable[T]]) -> T:
        """``edit()`` of the feeds loaded, its refusals as the API's."""
        await self._load()
        with _as_api():
            return await edit()

    async def listing(self, request: Request) -> Response:
        """``GET /api/feeds``: ``{"folders": [path], "feeds": [...]}``."""
        await self._load()
        return JSONResponse(self.feeds.listing())

    def _feed(self, path: str) -> JSON:
        entry = self.feeds.state.feed_at(path)
        assert entry is not None  # (the edit that named it just ended)
        return self.feeds.feed_view(path, entry)

    async def add(self, request: Request) -> Response:
        """``POST /api/feeds`` ``{"url", "path"?, "refresh_interval"?}``: the feed (201), read
        at once while the reading of feeds is on; its path its URL when not given."""
        data = await self._body(request)
        _fields(data, ("url", "path", "refresh_interval"), ("url",))
        url, path, interval = _text(data, "url"), _text(data, "path", ""), _interval(data)
        entry = await self._edit(lambda: self.feeds.add_feed(url, path, interval))
        where = next(p for p, e in self.feeds.state.feeds() if e is entry)
        return JSONResponse(self._feed(where), status_code=201)

    async def add_folder(self, request: Request) -> Response:
        """``POST /api/feeds/folders`` ``{"path"}``: a folder (201)."""
        data = await self._body(request)
        _fields(data, ("path",), ("path",))
        path = _text(data, "path")
        await self._edit(lambda: self.feeds.add_folder(path))
        return JSONResponse({"folders": self.feeds.folders()}, status_code=201)

    async def change(self, request: Request) -> Response:
        """``PATCH /api/feeds`` ``{"path", "url"?, "refresh_interval"?}``: a feed read from another
        URL (its articles forgotten), every so often; or ``{"path", "to"}``: an item moved (renamed)
        to ``to``, alone (each verb of the reader is one change: two in a request could be made
        half). The feed (or, for a folder moved, the folders)."""
        data = await self._body(request)
        _fields(data, ("path", "url", "refresh_interval", "to"), ("path",))
        if "to" in data and data.keys() & {"url", "refresh_interval"}:
            raise InvalidJobRequest("moves the item alone: its URL or interval in a request of their own",
                                    "to")
        path = _text(data, "path")
        url = _text(data, "url") if "url" in data else None
        interval = _interval(data) if "refresh_interval" in data else None
        to = _text(data, "to") if "to" in data else None

        async def edit() -> str:
            if url is not None:
                await self.feeds.set_url(path, url)
            if interval is not None:
                await self.feeds.set_refresh_interval(path, interval)
            if to is not None:
                return await self.feeds.move(path, to)
            return path
        where = await self._edit(edit)
        feed = self.feeds.state.feed_at(where)
        if feed is None:  # (a folder)
            return JSONResponse({"folders": self.feeds.folders()})
        return JSONResponse(self._feed(where))

    async def remove(self, request: Request) -> Response:
        """``DELETE /api/feeds?path=``: a feed, or a folder and all it holds."""
        path = _query(request, "path")
        await self._edit(lambda: self.feeds.remove(path))
        return JSONResponse({"removed": path})

    async def refresh(self, request: Request) -> Response:
        """``POST /api/feeds/refresh`` ``{"path"?}``: the feeds at or below it (none: every one)
        read now, whatever the settings say (202: the reading goes on after the answer)."""
        data = await self._body(request)
        _fields(data, ("path",))
        path = _text(data, "path", "")
        await self._edit(lambda: self._known(path, self.feeds.refresh))
        return JSONResponse({"refreshing": path}, status_code=202)

    async def read(self, request: Request) -> Response:
        """``POST /api/feeds/read`` ``{"path"?, "article"?}``: the articles of the feeds at or below
        ``path`` (none: every feed) read, or that one article of the feed at ``path``."""
        data = await self._body(request)
        _fields(data, ("path", "article"))
        path = _text(data, "path", "")
        article = _text(data, "article") if "article" in data else None
        await self._edit(lambda: self._known(path, lambda p: self.feeds.mark_read(p, article)))
        return JSONResponse({"read": path})

    async def _known(self, path: str, verb: Callable[[str], Awaitable[None]]) -> None:
        """``verb(path)`` of a path there (or "", the root): the reader's are silent on others."""
        if path and path not in self.feeds.state.items:
            raise FeedMissing(f"{path[:80]!r}: no such item", "path")
        await verb(path)

    # -- the rules -------------------------------------------------------------------------
    async def rules(self, request: Request) -> Response:
        """``GET /api/feeds/rules``: ``{"rules": [...]}``, in the order they are tried."""
        await self._load()
        return JSONResponse({"rules": [rule_json(r) for r in self.feeds.state.ordered_rules()]})

    async def set_rule(self, request: Request) -> Response:
        """``PUT /api/feeds/rules`` ``{"name", ...}``: the rule of that name, made or replaced
        whole (what it remembers kept when not given); every unread article is offered to the
        rules again."""
        data = await self._body(request)

        async def edit() -> JSON:
            name = data.get("name")
            kept = self.feeds.state.rules.get(name.strip()) if isinstance(name, str) else None
            rule = rule_from_json(data, kept)  # (its name is trimmed as it is kept)
            await self.feeds.set_rule(rule)
            return rule_json(rule)
        return JSONResponse(await self._edit(edit))

    async def rename_rule(self, request: Request) -> Response:
        """``POST /api/feeds/rules/rename`` ``{"name", "to"}``: the rule, named ``to``."""
        data = await self._body(request)
        _fields(data, ("name", "to"), ("name", "to"))
        name, to = _text(data, "name"), _text(data, "to")

        async def edit() -> JSON:
            await self.feeds.rename_rule(name, to)
            return rule_json(self.feeds.state.rules[to.strip()])
        return JSONResponse(await self._edit(edit))

    async def remove_rule(self, request: Request) -> Response:
        """``DELETE /api/feeds/rules?name=``: the rule gone (``404`` when there is none)."""
        name = _query(request, "name")

        async def edit() -> None:
            if name not in self.feeds.state.rules:
                raise FeedMissing(f"no rule {name[:80]!r}", "name")
            await self.feeds.remove_rule(name)
        await self._edit(edit)
        return JSONResponse({"removed": name})

    async def matches(self, request: Request) -> Response:
        """``GET /api/feeds/rules/matches?name=``: ``{"matches": {feed name: [titles]}}``, the
        articles the rule takes as it stands (nothing is remembered or added)."""
        name = _query(request, "name")

        async def edit() -> dict[str, list[str]]:
            return self.feeds.matching(name)
        return JSONResponse({"matches": await self._edit(edit)})

    def routes(self) -> list[Route]:
        """This group's routes."""
        return [
            Route("/api/feeds", self.listing, methods=["GET"]),
            Route("/api/feeds", self.add, methods=["POST"]),
            Route("/api/feeds", self.change, methods=["PATCH"]),
            Route("/api/feeds", self.remove, methods=["DELETE"]),
            Route("/api/feeds/folders", self.add_folder, methods=["POST"]),
            Route("/api/feeds/refresh", self.refresh, methods=["POST"]),
            Route("/api/feeds/read", self.read, methods=["POST"]),
            Route("/api/feeds/rules", self.rules, methods=["GET"]),
            Route("/api/feeds/rules", self.set_rule, methods=["PUT"]),
            Route("/api/feeds/rules", self.remove_rule, methods=["DELETE"]),
            Route("/api/feeds/rules/rename", self.rename_rule, methods=["POST"]),
            Route("/api/feeds/rules/matches", self.matches, methods=["GET"]),
        ]

