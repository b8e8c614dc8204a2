"""Editing a job's BEP 19 web seeds: http(s) URLs, and the edits download clients ask for (add,
replace, remove). Pure, as ``trackers``: each edit takes the list and gives the new list, or
raises naming the input that was wrong, so a batch is checked whole before anything changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from .model import InvalidJobRequest, JobConflict
from .trackers import MAX_URL

__all__ = ["MAX_WEB_SEEDS", "WEB_SEED_SCHEMES", "add_web_seeds", "check_web_seed", "check_web_seeds",
           "remove_web_seeds", "replace_web_seed"]

MAX_WEB_SEEDS = 1000  # web seeds of one job
WEB_SEED_SCHEMES = ("http", "https")  # BEP 19: the others are ignored


def check_web_seed(value: object, field: str) -> str:
    """A web seed URL we can fetch from (http or https, with a host), trimmed;
    ``InvalidJobRequest`` naming ``field`` and the URL otherwise."""
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a web seed URL (a string)", field)
    url = value.strip()
    if not url:
        raise InvalidJobRequest("must be a web seed URL, not empty", field)
    if len(url) > MAX_URL or any(c.isspace() or c == "\x00" for c in url):
        raise InvalidJobRequest(f"{url[:80]!r} is not a web seed URL (too long, or a space or NUL in it)",
                                field)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a port out of range raises here)
    except ValueError as exc:
        raise InvalidJobRequest(f"{url[:80]!r} is not a URL: {exc}", field) from None
    scheme = parts.scheme.lower()
    if scheme not in WEB_SEED_SCHEMES:
        raise InvalidJobRequest(f"{url[:80]!r} is not a web seed URL: the scheme {scheme or '(none)'!r} "
                                f"is not http or https", field)
    if not host:
        raise InvalidJobRequest(f"{url[:80]!r} has no host", field)
    return url


def check_web_seeds(urls: Iterable[object], field: str = "web_seeds") -> list[str]:
    """Checked URLs, each once, in their order."""
    out = list(dict.fromkeys(check_web_seed(u, field) for u in urls))
    if len(out) > MAX_WEB_SEEDS:
        raise InvalidJobRequest(f"more than {MAX_WEB_SEEDS} web seeds", field)
    return out


def add_web_seeds(seeds: Sequence[str], urls: Sequence[object], field: str = "urls") -> list[str]:
    """``seeds`` and each URL of ``urls`` it lacks after them; all checked first."""
    checked = [check_web_seed(u, field) for u in urls]
    return check_web_seeds([*seeds, *checked], field)


def replace_web_seed(seeds: Sequence[str], old: str, new: object, *, old_field: str = "orig_url",
                     new_field: str = "new_url") -> list[str]:
    """``seeds`` with the URL ``old`` replaced by ``new``, in its place; ``InvalidJobRequest``
    naming ``new_field`` for a bad URL, ``JobConflict`` naming ``old_field`` when ``old`` is not
    there, or ``new_field`` when ``new`` is there already."""
    url = check_web_seed(new, new_field)
    if old not in seeds:
        raise JobConflict(f"the job has no web seed {old[:80]!r}", old_field)
    if url == old:
        return list(seeds)
    if url in seeds:
        raise JobConflict(f"the job has the web seed {url[:80]!r} already", new_field)
    return [url if u == old else u for u in seeds]


def remove_web_seeds(seeds: Sequence[str], urls: Iterable[str]) -> list[str]:
    """``seeds`` without the URLs ``urls`` names (those it lacks are passed over)."""
    gone = set(urls)
    return [u for u in seeds if u not in gone]
