"""Editing a job's BEP 19 web seeds: http(s) URLs, and the edits download clients ask for (add,
replace, remove). Pure, as ``trackers``: each edit takes the list and gives the new list, or
raises naming the input that was wrong, so a batch is checked whole before anything changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .model import InvalidJobRequest, JobConflict
from .trackers import check_url_of

__all__ = ["MAX_WEB_SEEDS", "WEB_SEED_SCHEMES", "add_web_seeds", "check_web_seed", "check_web_seeds",
           "remove_web_seeds", "replace_web_seed"]

MAX_WEB_SEEDS = 1000  # web seeds of one job
WEB_SEED_SCHEMES = ("http", "https")  # BEP 19: the others are ignored


def check_web_seed(value: object, field: str) -> str:
    """A web seed URL we can fetch from (http or https, with a host), trimmed;
    ``InvalidJobRequest`` naming ``field`` and the URL otherwise."""
    return check_url_of(value, field, "web seed URL", WEB_SEED_SCHEMES)


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
