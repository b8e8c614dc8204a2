"""The feeds a daemon reads, in folders, with their articles and what was read, and the download
rules: the one record of them, kept as JSON (``to_json``, ``from_json``). Pure.

An item is named by its path, names joined by ``\\`` as qBittorrent's (``TV\\Shows``); a folder
holds items, a feed is read from its URL (one feed a URL). Each edit checks everything first and
raises ``FeedConflict`` saying what is in the way, qBittorrent's ``409``s, or changes it all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from ..errors import TorrentEngineError
from ..formats.feed import Article, ParsedFeed
from .rules import FeedRule, RuleError, check_rule_name

__all__ = ["MAX_FEEDS", "SEP", "FeedConflict", "FeedEntry", "FeedInputError", "FeedMissing", "FeedState",
           "check_feed_url"]

SEP = "\\"
MAX_FEEDS = 1000  # feeds and folders together
MAX_RULES = 1000
MAX_URL = 2048
VERSION = 1


class FeedConflict(TorrentEngineError):
    """An edit of the feeds that cannot be made (an item there already, none at a path, a URL
    read already): ``field`` names the input."""

    def __init__(self, message: str, field: str = "path") -> None:
        super().__init__(message)
        self.reason = message
        self.field = field


class FeedMissing(FeedConflict):
    """No item at a path, no rule of a name (qBittorrent answers these ``409`` as well; our API
    ``404``)."""


class FeedInputError(FeedConflict):
    """An input that is no path, URL or interval at all (qBittorrent answers these ``409`` as
    well; our API ``400``)."""


def check_feed_url(url: object, field: str = "url") -> str:
    """An http(s) URL with a host, trimmed; ``FeedConflict`` naming ``field`` otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise FeedInputError("a feed needs its URL", field)
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname \
            or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise FeedInputError(f"{url[:80]!r} is not an http(s) URL of a feed", field)
    return url


def _path(path: object, field: str = "path") -> str:
    """A path's names, checked: none empty, no NUL or line break."""
    if not isinstance(path, str):
        raise FeedInputError("must be a path (names joined by \\)", field)
    names = path.split(SEP)
    if path == "" or any(not n.strip() or any(c in n for c in "\x00\r\n") or len(n) > 255 for n in names):
        raise FeedInputError(f"{path[:80]!r} is not a path of names joined by \\ (none empty)", field)
    return SEP.join(n.strip() for n in names)


@dataclass
class FeedEntry:
    """A feed read from ``url``: what its last reading said, the articles kept (newest first)
    and those read; ``error``: why its last reading failed ("" it did not); ``refused``: how
    many times a rule took an unread article whose add was refused (by its id)."""

    url: str
    uid: str = field(default_factory=lambda: "{" + secrets.token_hex(16) + "}")
    title: str = ""
    last_build_date: str = ""
    articles: list[Article] = field(default_factory=list)
    read: set[str] = field(default_factory=set)
    error: str = ""
    refreshed_at: float | None = None  # epoch seconds of its last reading, answered or not
    refresh_interval: float = 0.0  # seconds between its readings (0: the settings')
    refused: dict[str, int] = field(default_factory=dict)

    def take(self, parsed: ParsedFeed, now: float, keep: int) -> list[Article]:
        """What ``parsed`` says, merged: its new articles first (dated ``now`` when they give no
        date), then those kept, at most ``keep``; the new ones."""
        known = {a.id for a in self.articles}
        new = [a if a.date is not None else replace(a, date=now)
               for a in parsed.articles if a.id not in known]
        self.articles = (new + self.articles)[:keep]
        kept = {a.id for a in self.articles}
        self.read &= kept
        self.refused = {a: n for a, n in self.refused.items() if a in kept}
        self.title = parsed.title or self.title
        self.last_build_date = parsed.last_build_date
        self.error = ""
        self.refreshed_at = now
        return [a for a in new if a.id in kept]

    def to_json(self) -> dict[str, object]:
        """The feed as its record keeps it."""
        return {"url": self.url, "uid": self.uid, "title": self.title,
                "last_build_date": self.last_build_date, "error": self.error,
                "refreshed_at": self.refreshed_at, "refresh_interval": self.refresh_interval,
                "read": sorted(self.read), "refused": dict(self.refused),
                "articles": [{"id": a.id, "title": a.title, "torrent_url": a.torrent_url, "link": a.link,
                              "date": a.date, "author": a.author, "description": a.description}
                             for a in self.articles]}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FeedEntry:
        """A feed as ``to_json`` kept it; ``ValueError`` (or ``FeedConflict``) for what is wrong."""
        articles = data.get("articles", [])
        if not isinstance(articles, list):
            raise ValueError("articles: must be a list")
        read = data.get("read", [])
        refreshed = data.get("refreshed_at")
        interval = data.get("refresh_interval", 0.0)
        refused = data.get("refused", {})  # (none in a file from before it)
        if not isinstance(read, list) or not isinstance(interval, (int, float)) \
                or not (refreshed is None or isinstance(refreshed, (int, float))) \
                or not isinstance(refused, dict) \
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in refused.values()):
            raise ValueError("read, refused, refreshed_at or refresh_interval of the wrong kind")
        return cls(url=check_feed_url(data.get("url")), uid=str(data.get("uid") or ""),
                   title=str(data.get("title") or ""),
                   last_build_date=str(data.get("last_build_date") or ""), error=str(data.get("error") or ""),
                   refreshed_at=None if refreshed is None else float(refreshed),
                   refresh_interval=float(interval), read={str(r) for r in read},
                   refused={str(a): n for a, n in refused.items()}, articles=[_article(a) for a in articles])


@dataclass
class FeedState:
    """Every folder (``None``) and feed by path, and the rules by name."""

    items: dict[str, FeedEntry | None] = field(default_factory=dict)
    rules: dict[str, FeedRule] = field(default_factory=dict)

    # -- the tree ----------------------------------------------------------------------------
    def feeds(self, under: str = "") -> Iterator[tuple[str, FeedEntry]]:
        """The feeds at or below the path ``under`` ("" every one), with their paths."""
        for path, item in self.items.items():
            if item is not None and (not under or path == under or path.startswith(under + SEP)):
                yield path, item

    def feed_at(self, path: str) -> FeedEntry | None:
        """The feed at ``path`` (None for a folder or nothing)."""
        return self.items.get(path)

    def by_url(self, url: str) -> tuple[str, FeedEntry] | None:
        """The feed read from ``url``, with its path (None: none is)."""
        return next(((p, f) for p, f in self.feeds() if f.url == url), None)

    def _free(self, path: str, field: str) -> None:
        """``path`` may take a new item: nothing there, its folder there."""
        if path in self.items:
            raise FeedConflict(f"{path!r}: an item is there already", field)
        parent = path.rpartition(SEP)[0]
        if parent and not (parent in self.items and self.items[parent] is None):
            raise FeedConflict(f"{parent!r}: no such folder", field)
        if len(self.items) >= MAX_FEEDS:
            raise FeedConflict(f"at most {MAX_FEEDS} feeds and folders", field)

    def add_folder(self, path: object) -> str:
        """A folder at ``path``; its path."""
        where = _path(path)
        self._free(where, "path")
        self.items[where] = None
        return where

    def add_feed(self, url: object, path: object = "") -> FeedEntry:
        """A feed of ``url`` at ``path`` ("": its URL, in the root folder, as qBittorrent names it)."""
        checked = check_feed_url(url)
        where = _path(path or checked.replace(SEP, "/"))
        if self.by_url(checked) is not None:
            raise FeedConflict(f"a feed of {checked[:80]!r} is read already", "url")
        self._free(where, "path")
        entry = self.items[where] = FeedEntry(url=checked)
        return entry

    def _at(self, path: object, field: str) -> str:
        where = _path(path, field)
        if where not in self.items:
            raise FeedMissing(f"{where!r}: no such item", field)
        return where

    def remove(self, path: object) -> list[FeedEntry]:
        """The item at ``path`` and, a folder, all below it; the feeds removed."""
        if path == "":
            raise FeedConflict("the root folder cannot be removed", "path")
        where = self._at(path, "path")
        gone = [p for p in self.items if p == where or p.startswith(where + SEP)]
        feeds = [f for p in gone if (f := self.items.pop(p)) is not None]
        return feeds

    def move(self, path: object, to: object) -> str:
        """The item at ``path`` (and what is below it) to the path ``to``; where it is now (``to``
        as a path is written: its names trimmed)."""
        where = self._at(path, "itemPath")
        dest = _path(to, "destPath")
        if dest == where or dest.startswith(where + SEP):
            raise FeedConflict(f"{where!r} cannot go into itself", "destPath")
        self._free(dest, "destPath")
        moved = {p: (dest + p[len(where):]) for p in self.items if p == where or p.startswith(where + SEP)}
        self.items = {moved.get(p, p): item for p, item in self.items.items()}
        return dest

    def set_url(self, path: object, url: object) -> FeedEntry:
        """The feed at ``path`` read from ``url`` from now on (its articles forgotten)."""
        where = self._at(path, "path")
        entry = self.items[where]
        if entry is None:
            raise FeedConflict(f"{where!r} is a folder, not a feed", "path")
        checked = check_feed_url(url)
        if checked == entry.url:
            return entry
        if self.by_url(checked) is not None:
            raise FeedConflict(f"a feed of {checked[:80]!r} is read already", "url")
        old = entry.url
        entry.url, entry.articles, entry.read, entry.error, entry.refreshed_at = checked, [], set(), "", None
        entry.refused = {}
        self.rules = {n: replace(r, feeds=tuple(checked if f == old else f for f in r.feeds))
                      for n, r in self.rules.items()}
        return entry

    def mark_read(self, path: object, article: str | None = None) -> None:
        """Every article of the feeds at or below ``path`` read, or (``article``) that one of its feed."""
        where = self._at(path, "itemPath") if path != "" else ""
        for _, entry in self.feeds(where):
            if article is None:
                entry.read = {a.id for a in entry.articles}
            elif any(a.id == article for a in entry.articles):
                entry.read.add(article)

    # -- the rules ---------------------------------------------------------------------------
    def set_rule(self, rule: FeedRule) -> None:
        """``rule``, in place of its name's."""
        if rule.name not in self.rules and len(self.rules) >= MAX_RULES:
            raise FeedConflict(f"at most {MAX_RULES} rules", "ruleName")
        self.rules[rule.name] = rule

    def rename_rule(self, name: str, new: str) -> None:
        """The rule ``name`` named ``new`` (checked as a rule's name)."""
        if name not in self.rules:
            raise FeedMissing(f"no rule {name[:80]!r}", "ruleName")
        new = check_rule_name(new, "newRuleName")
        if new in self.rules and new != name:
            raise FeedConflict(f"a rule {new[:80]!r} is there already", "newRuleName")
        self.rules = {(new if n == name else n): (replace(r, name=new) if n == name else r)
                      for n, r in self.rules.items()}

    def ordered_rules(self) -> list[FeedRule]:
        """The rules in the order they are tried: by priority, then name."""
        return sorted(self.rules.values(), key=lambda r: (r.priority, r.name))

    # -- as JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, object]:
        """The record, as ``from_json`` reads it."""
        return {"version": VERSION,
                "items": [{"path": p, "folder": True} if f is None else {"path": p, **f.to_json()}
                          for p, f in self.items.items()],
                "rules": {n: r.to_qbt() for n, r in self.rules.items()}}

    @classmethod
    def from_json(cls, data: object) -> FeedState:
        """The state ``to_json`` made; ``ValueError`` saying what is wrong in it."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not a feeds record of version {VERSION}")
        items, rules = data.get("items"), data.get("rules")
        if not isinstance(items, list) or not isinstance(rules, dict):
            raise ValueError("items must be a list and rules an object")
        state = cls()
        try:
            for item in _dicts(items):
                path = _path(item.get("path"))
                state.items[path] = None if item.get("folder") else FeedEntry.from_json(item)
            for name, rule in rules.items():
                if not isinstance(rule, dict):
                    raise ValueError(f"rule {name!r}: must be an object")
                state.rules[str(name)] = FeedRule.from_qbt(rule, str(name))
        except (FeedConflict, RuleError, TypeError) as exc:
            raise ValueError(str(exc)) from exc
        return state


def _article(data: object) -> Article:
    """An article as ``FeedEntry.to_json`` kept it."""
    if not isinstance(data, dict):
        raise ValueError("an article must be an object")
    texts = {k: data.get(k) or "" for k in ("id", "title", "torrent_url", "link", "author", "description")}
    if not all(isinstance(v, str) for v in texts.values()) or not texts["id"]:
        raise ValueError("an article's id, title, links and texts must be text (its id not empty)")
    date = data.get("date")
    if date is not None and (isinstance(date, bool) or not isinstance(date, (int, float))):
        raise ValueError("an article's date must be epoch seconds or null")
    return Article(date=None if date is None else float(date), **{k: str(v) for k, v in texts.items()})


def _dicts(values: Iterable[object]) -> Iterator[dict[str, object]]:
    for value in values:
        if not isinstance(value, dict):
            raise ValueError("an item must be an object")
        yield value
