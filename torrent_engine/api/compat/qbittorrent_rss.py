"""qBittorrent's ``rss/*`` methods over the daemon's feed reader (``torrent_engine.feeds``): the
feeds in folders and their articles, the download rules, as qBittorrent's web UI, VueTorrent and
the other front ends call them. What cannot be done is a ``409`` saying what is in the way (an
item there already, none at a path, a URL read already), as qBittorrent answers; a rule of the
wrong kind a ``400`` naming its key (qBittorrent takes any JSON and makes an empty rule of it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from starlette.requests import Request
from starlette.responses import Response

from ...feeds import FeedConflict, FeedReader, FeedRule, RuleError
from ...feeds.reader import MIN_INTERVAL
from ...jsonvalue import JSON
from .forms import Form
from .qbittorrent_records import QbtError, form_json, parse_bool

__all__ = ["RSS_GETTERS", "rss_methods"]

Handler = Callable[[Form, Request], Awaitable[JSON | Response]]
# (read by an admin alone: a feed's URL often holds the user's key of the site)
RSS_GETTERS = frozenset({"rss/items", "rss/rules", "rss/matchingArticles"})


@contextmanager
def _as_qbittorrent() -> Iterator[None]:
    try:
        yield
    except FeedConflict as exc:
        raise QbtError(409, exc.reason) from exc
    except RuleError as exc:
        raise QbtError(400, str(exc)) from exc


def _needed(form: Form, *names: str) -> list[str]:
    """The fields ``names`` (a missing one: ``400`` as qBittorrent's ``requireParams``)."""
    values = []
    for name in names:
        value = form.get(name)
        if value is None:
            raise QbtError(400, f"Missing required parameter: {name}")
        values.append(value)
    return values


def rss_methods(feeds: FeedReader) -> dict[str, Handler]:
    """The ``rss/*`` methods, by name."""

    def running() -> None:  # (the reader reads the feeds in the service's task group)
        feeds.ensure_running()

    def plain(verb: Callable[..., Awaitable[object]], *names: str) -> Handler:
        """A method that hands its fields ``names`` (all needed) to the reader's ``verb``."""
        async def method(form: Form, request: Request) -> None:
            values = _needed(form, *names)
            with _as_qbittorrent():
                await verb(*values)
        return method

    async def add_feed(form: Form, request: Request) -> None:
        (url,) = _needed(form, "url")
        try:
            interval = max(0, int(form.get("refreshInterval") or 0))
        except ValueError:
            interval = 0  # (as qBittorrent's toLongLong: not a number is 0, the settings')
        if 0 < interval < MIN_INTERVAL:
            raise QbtError(400, f"refreshInterval: 0 (the setting's) or at least {MIN_INTERVAL:g} seconds")
        running()
        with _as_qbittorrent():
            await feeds.add_feed(url, form.get("path") or "", float(interval))

    async def set_refresh_interval(form: Form, request: Request) -> None:
        path, text = _needed(form, "path", "refreshInterval")
        try:
            interval = int(text)
        except ValueError:
            interval = -1
        if interval < 0 or 0 < interval < MIN_INTERVAL:
            raise QbtError(400, f"Invalid 'refreshInterval' value: 0 (the setting's) or at least "
                                f"{MIN_INTERVAL:g} seconds")
        with _as_qbittorrent():
            await feeds.set_refresh_interval(path, float(interval))

    async def items(form: Form, request: Request) -> JSON:
        running()
        with _as_qbittorrent():
            await feeds.load()
        return feeds.items(bool(parse_bool(form.get("withData"))))

    async def mark_as_read(form: Form, request: Request) -> None:
        (path,) = _needed(form, "itemPath")
        with _as_qbittorrent():
            await feeds.mark_read(path, form.get("articleId"))

    async def refresh_item(form: Form, request: Request) -> None:
        (path,) = _needed(form, "itemPath")
        running()
        with _as_qbittorrent():
            await feeds.refresh(path)

    async def set_rule(form: Form, request: Request) -> None:
        name, text = _needed(form, "ruleName", "ruleDef")
        data = form_json(text, "ruleDef")
        if not isinstance(data, dict):
            raise QbtError(400, "ruleDef must be a JSON object")
        running()
        with _as_qbittorrent():
            await feeds.set_rule(FeedRule.from_qbt(data, name))

    async def clone_rule(form: Form, request: Request) -> None:
        source, clone = _needed(form, "sourceName", "cloneName")
        with _as_qbittorrent():
            await feeds.load()
            rule = feeds.state.rules.get(source)
            if rule is None:
                raise QbtError(409, f"no rule {source[:80]!r}")
            await feeds.set_rule(FeedRule.from_qbt({**rule.to_qbt(), "lastMatch": "",
                                                    "previouslyMatchedEpisodes": []}, clone))

    async def rules(form: Form, request: Request) -> JSON:
        with _as_qbittorrent():
            await feeds.load()
        return {name: rule.to_qbt() for name, rule in sorted(feeds.state.rules.items())}

    async def matching(form: Form, request: Request) -> JSON:
        (name,) = _needed(form, "ruleName")
        with _as_qbittorrent():
            await feeds.load()
            return feeds.matching(name)

    return {"rss/addFolder": plain(feeds.add_folder, "path"), "rss/addFeed": add_feed,
            "rss/setFeedURL": plain(feeds.set_url, "path", "url"),
            "rss/setFeedRefreshInterval": set_refresh_interval, "rss/removeItem": plain(feeds.remove, "path"),
            "rss/moveItem": plain(feeds.move, "itemPath", "destPath"), "rss/items": items,
            "rss/markAsRead": mark_as_read, "rss/refreshItem": refresh_item, "rss/setRule": set_rule,
            "rss/renameRule": plain(feeds.rename_rule, "ruleName", "newRuleName"),
            "rss/cloneRule": clone_rule, "rss/removeRule": plain(feeds.remove_rule, "ruleName"),
            "rss/rules": rules, "rss/matchingArticles": matching}

