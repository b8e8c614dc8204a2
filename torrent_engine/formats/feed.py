"""A news feed's bytes read: RSS 2.0, RSS 1.0 (RDF) or Atom, as torrent sites publish them. Pure.

Each article keeps its id (its ``guid`` or Atom ``id``; else its torrent's URL; else its title:
one with none of them, or one whose id came before in the same feed, is passed over), its title,
the URL of its torrent (an ``enclosure`` of type ``application/x-bittorrent``; else a magnet link
given as its ``link``; else an enclosure of no type; else its ``link``), its page's link, its
date (``None`` when it gives none that reads), author and description.

The document is read with expat, namespaces aside (an element is known by its local name). A
document type declaration is refused: none of these formats needs one, and its entities are how
a small file expands into gigabytes. ``FeedError`` says what was wrong and where (the line).
"""

from __future__ import annotations

import calendar
import email.utils
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urljoin
from xml.parsers import expat

from ..errors import TorrentEngineError

__all__ = ["MAX_FEED_SIZE", "Article", "FeedError", "ParsedFeed", "parse_feed", "rfc822_time"]

MAX_FEED_SIZE = 8 * 1024 * 1024  # bytes of one feed document (a site's whole catalogue would be less)
MAX_TEXT = 64 * 1024  # characters kept of an article's text (a description beyond it is cut)
TORRENT_TYPE = "application/x-bittorrent"


class FeedError(TorrentEngineError, ValueError):
    """A feed document that cannot be read; ``where`` says where (a line, or the document)."""

    def __init__(self, message: str, where: str = "the document") -> None:
        super().__init__(f"{where}: {message}")
        self.reason = message
        self.where = where


@dataclass(frozen=True, slots=True)
class Article:
    """One article of a feed."""

    id: str
    title: str
    torrent_url: str  # "" when it names none
    link: str = ""
    date: float | None = None  # epoch seconds (None: it gives none that reads)
    author: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed as read: its title, when it was last built (as it says it), its articles in its order."""

    title: str
    last_build_date: str
    articles: tuple[Article, ...]


@dataclass
class _Node:
    name: str
    attrs: dict[str, str]
    children: list[_Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # its text and its children's, in order
    size: int = 0  # characters in ``text`` (at most about MAX_TEXT)

    def find(self, name: str) -> _Node | None:
        return next((c for c in self.children if c.name == name), None)

    def all(self, name: str) -> list[_Node]:
        return [c for c in self.children if c.name == name]

    def value(self) -> str:
        return "".join(self.text).strip()


def _local(name: str) -> str:
    return name.rpartition(" ")[2]  # ("uri local" with the separator below)


def _tree(data: bytes) -> _Node:
    parser = expat.ParserCreate(namespace_separator=" ")
    root = _Node("", {})
    stack = [root]

    def start(name: str, attrs: dict[str, str]) -> None:
        node = _Node(_local(name), {_local(k): v for k, v in attrs.items()})
        stack[-1].children.append(node)
        stack.append(node)

    def end(name: str) -> None:
        node = stack.pop()
        parent = stack[-1]
        if len(stack) > 1 and parent.size < MAX_TEXT:  # (a description's HTML elements: their text too)
            parent.text.extend(node.text)
            parent.size += node.size

    def text(data: str) -> None:
        node = stack[-1]
        if node.size < MAX_TEXT:
            node.text.append(data)
            node.size += len(data)

    def doctype(*_: Any) -> None:
        raise FeedError("a document type declaration is not read (no feed format needs one)",
                        f"line {parser.CurrentLineNumber}")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise FeedError(f"not well-formed XML: {expat.errors.messages[exc.code]}",
                        f"line {exc.lineno}, column {exc.offset + 1}") from None
    if not root.children:
        raise FeedError("no element")
    return root.children[0]


_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                  r"\s*(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)


def rfc822_time(text: str) -> float | None:
    """Epoch seconds of an RFC 822 (2822) date (``Mon, 30 Nov 2026 09:00:00 GMT``; no zone: UTC),
    None for one that does not read."""
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        return None
    try:
        return float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None


def _iso(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date (Atom's, Dublin Core's; no zone: UTC), else of an RFC 822
    one written where an ISO one belongs; None for neither."""
    found = _ISO.fullmatch(text.strip())
    if found is None:
        return rfc822_time(text)
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    try:
        when = float(calendar.timegm((int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                      int(second or 0))))
    except (ValueError, OverflowError):
        return None
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(hour or 0) < 24 and int(minute or 0) < 60):
        return None
    if fraction:
        when += float("0." + fraction)
    if zone and zone.upper() != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[-2:]) * 60
        when -= offset if zone[0] == "+" else -offset
    return when


def _text(node: _Node | None) -> str:
    return node.value()[:MAX_TEXT] if node is not None else ""


def _rss_article(item: _Node) -> Article:
    torrent = other = link = ""
    for enclosure in item.all("enclosure"):
        kind = enclosure.attrs.get("type", "").strip().lower()
        if kind == TORRENT_TYPE and not torrent:
            torrent = enclosure.attrs.get("url", "").strip()
        elif not kind and not other:
            other = enclosure.attrs.get("url", "").strip()
    text = _text(item.find("link"))
    if text.lower().startswith("magnet:"):
        torrent = torrent or text  # (a magnet link where a page's belongs)
    else:
        link = text
    published = item.find("pubDate")  # (RFC 822; RSS 1.0's: Dublin Core's ISO date)
    date = _text(published or item.find("date"))
    return Article(id=_text(item.find("guid")), title=_text(item.find("title")),
                   torrent_url=torrent or other or link, link=link,
                   date=None if not date else rfc822_time(date) if published is not None else _iso(date),
                   author=_text(item.find("author") or item.find("creator")),
                   description=_text(item.find("description")))


def _atom_article(entry: _Node, base: str) -> Article:
    torrent = link = ""
    for node in entry.all("link"):
        href = (node.attrs.get("href") or node.value()).strip()
        if not href:
            continue
        if href.lower().startswith("magnet:"):
            torrent = torrent or href
        elif node.attrs.get("type", "").lower() == TORRENT_TYPE:
            torrent = torrent or urljoin(base, href)
        elif not link and node.attrs.get("rel", "alternate") in ("alternate", "enclosure"):
            link = urljoin(base, href)
    date = _text(entry.find("updated") or entry.find("published"))
    author = entry.find("author")
    return Article(id=_text(entry.find("id")), title=_text(entry.find("title")), torrent_url=torrent or link,
                   link=link, date=_iso(date) if date else None,
                   author=_text(author.find("name") if author is not None else None),
                   description=_text(entry.find("content") or entry.find("summary")))


def parse_feed(data: bytes, url: str = "") -> ParsedFeed:
    """The feed ``data`` is (``url``: where it was fetched, which an Atom feed's relative links
    are taken from); ``FeedError`` when it is none of the formats or not well-formed."""
    if len(data) > MAX_FEED_SIZE:
        raise FeedError(f"larger than {MAX_FEED_SIZE} bytes")
    root = _tree(data)
    if root.name == "rss":
        channel = root.find("channel")
        if channel is None:
            raise FeedError("an RSS document without its channel", "<rss>")
        title, built = _text(channel.find("title")), _text(channel.find("lastBuildDate"))
        raw = [_rss_article(item) for item in channel.all("item")]
    elif root.name == "RDF":  # RSS 1.0: the items beside the channel
        channel = root.find("channel")
        title, built = _text(channel.find("title") if channel is not None else None), ""
        raw = [_rss_article(item) for item in root.all("item")]
    elif root.name == "feed":
        title, built = _text(root.find("title")), _text(root.find("updated"))
        raw = [_atom_article(entry, url) for entry in root.all("entry")]
    else:
        raise FeedError(f"<{root.name[:40]}> is no feed (RSS, RDF or Atom)", "the root element")
    articles: list[Article] = []
    seen: set[str] = set()
    for one in raw:
        known_by = one.id or one.torrent_url or one.title
        if not known_by or known_by in seen:  # (nothing to know it by, or known already)
            continue
        seen.add(known_by)
        articles.append(one if one.id else replace(one, id=known_by))
    return ParsedFeed(title=title, last_build_date=built, articles=tuple(articles))
