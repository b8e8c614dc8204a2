"""Editing a job's trackers: BEP 12 tiers of announce URLs, and the edits download clients ask
for (add, replace, remove, the whole list as text). Pure: each edit takes the tiers and gives the
new tiers, or raises naming the input that was wrong, so a batch is checked whole before anything
changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from ..net.tracker.client import SUPPORTED_SCHEMES
from .model import InvalidJobRequest, JobConflict

__all__ = ["MAX_TRACKERS", "MAX_URL", "Tiers", "add_trackers", "check_tiers", "check_url", "flat",
           "move_to_tier", "parse_tier_list", "remove_trackers", "replace_tracker", "tier_list_text",
           "with_more"]

Tiers = tuple[tuple[str, ...], ...]
MAX_URL = 2048  # characters of one announce URL
MAX_TRACKERS = 1000  # announce URLs of one job


def check_url(value: object, field: str) -> str:
    """An announce URL we can announce to (http, https, udp; with a host), trimmed;
    ``InvalidJobRequest`` naming ``field`` otherwise."""
    return check_url_of(value, field, "tracker URL", SUPPORTED_SCHEMES)


def check_url_of(value: object, field: str, kind: str, schemes: Sequence[str]) -> str:
    """A ``kind`` of URL (a tracker's, a web seed's) whose scheme is one of ``schemes`` and that
    has a host, trimmed; ``InvalidJobRequest`` naming ``field`` and the URL otherwise."""
    if not isinstance(value, str):
        raise InvalidJobRequest(f"must be a {kind} (a string)", field)
    url = value.strip()
    if not url:
        raise InvalidJobRequest(f"must be a {kind}, not empty", field)
    if len(url) > MAX_URL or any(c.isspace() or c == "\x00" for c in url):
        raise InvalidJobRequest(f"{url[:80]!r} is not a {kind} (too long, or a space or NUL in it)", field)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a port out of range raises here)
    except ValueError as exc:
        raise InvalidJobRequest(f"{url[:80]!r} is not a URL: {exc}", field) from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise InvalidJobRequest(f"{url[:80]!r} is not a {kind}: the scheme {scheme or '(none)'!r} is not "
                                f"one of {', '.join(schemes)}", field)
    if not host:
        raise InvalidJobRequest(f"{url[:80]!r} has no host", field)
    return url


def usable(values: Iterable[object], check: Callable[[object, str], str]) -> list[str]:
    """The ``values`` that ``check`` takes, as it returns them, in their order (what another tool
    wrote: the others passed over, not refused)."""
    out = []
    for value in values:
        try:
            out.append(check(value, ""))
        except InvalidJobRequest:
            continue
    return out


def usable_tiers(tiers: Iterable[Iterable[object]]) -> Tiers:
    """The tiers of the URLs of ``tiers`` that ``check_url`` takes, empty tiers dropped."""
    return tuple(urls for urls in (tuple(usable(tier, check_url)) for tier in tiers) if urls)


def check_tiers(tiers: Iterable[Iterable[object]], field: str = "trackers") -> Tiers:
    """Tiers of checked URLs, each URL once (in its first tier), empty tiers dropped."""
    seen: set[str] = set()
    out: list[tuple[str, ...]] = []
    for tier in tiers:
        urls = []
        for value in tier:
            url = check_url(value, field)
            if url not in seen:
                seen.add(url)
                urls.append(url)
        if urls:
            out.append(tuple(urls))
    if len(seen) > MAX_TRACKERS:
        raise InvalidJobRequest(f"more than {MAX_TRACKERS} trackers", field)
    return tuple(out)


def flat(tiers: Tiers) -> list[str]:
    """Every URL, tier by tier."""
    return [url for tier in tiers for url in tier]


def add_trackers(tiers: Tiers, urls: Sequence[object], field: str = "urls") -> Tiers:
    """``tiers`` and each URL of ``urls`` it lacks in a tier of its own after them (as
    Transmission adds them); all checked first."""
    checked = [check_url(u, field) for u in urls]
    known = set(flat(tiers))
    added = [(u,) for u in dict.fromkeys(checked) if u not in known]
    return check_tiers([*tiers, *added], field)


def with_more(own: Tiers, more: Tiers) -> Tiers:
    """``own`` (a torrent's tiers, as they are) and after them the tiers of ``more`` (the default
    trackers), each URL once, none that ``own`` has; ``own`` itself when nothing is added."""
    known = set(flat(own))
    added = []
    for tier in more:
        urls = tuple(dict.fromkeys(u for u in tier if u not in known))
        known.update(urls)
        if urls:
            added.append(urls)
    return (*own, *added) if added else own


def replace_tracker(tiers: Tiers, old: str, new: object, *, old_field: str = "orig_url",
                    new_field: str = "new_url") -> Tiers:
    """``tiers`` with the URL ``old`` replaced by ``new``, in its place; ``InvalidJobRequest``
    naming ``new_field`` for a bad URL, ``JobConflict`` naming ``old_field`` when ``old`` is not
    there, or ``new_field`` when ``new`` is there already."""
    url = check_url(new, new_field)
    if old not in flat(tiers):
        raise JobConflict(f"the job has no tracker {old[:80]!r}", old_field)
    if url == old:
        return tiers
    if url in flat(tiers):
        raise JobConflict(f"the job has the tracker {url[:80]!r} already", new_field)
    return tuple(tuple(url if u == old else u for u in tier) for tier in tiers)


def move_to_tier(tiers: Tiers, url: str, tier: int) -> Tiers:
    """``tiers`` with ``url`` (one of them) in tier number ``tier`` (the tiers counted from 0, as
    qBittorrent numbers them), after the URLs there; tiers left empty close up, so a number past
    the last tier is a new last tier."""
    numbered = [(u, n) for n, t in enumerate(tiers) for u in t if u != url] + [(url, tier)]
    by_tier: dict[int, list[str]] = {}
    for u, n in numbered:
        by_tier.setdefault(n, []).append(u)
    return tuple(tuple(by_tier[n]) for n in sorted(by_tier))


def remove_trackers(tiers: Tiers, urls: Iterable[str]) -> Tiers:
    """``tiers`` without the URLs ``urls`` names (those it lacks are passed over)."""
    gone = set(urls)
    return tuple(t for t in (tuple(u for u in tier if u not in gone) for tier in tiers) if t)


def parse_tier_list(text: object, field: str = "trackerList") -> Tiers:
    """Transmission 4's ``trackerList``: one URL per line, tiers separated by a blank line."""
    if not isinstance(text, str):
        raise InvalidJobRequest("must be a string: one URL per line, tiers separated by a blank line", field)
    tiers: list[list[str]] = [[]]
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if tiers[-1]:
                tiers.append([])
            continue
        tiers[-1].append(line)
    return check_tiers(tiers, field)


def tier_list_text(tiers: Tiers) -> str:
    """``tiers`` as Transmission 4's ``trackerList`` text."""
    return "\n\n".join("\n".join(tier) for tier in tiers)
