"""Download rules for feeds (qBittorrent's RSS auto-downloading rules): which articles a rule
takes, and what it remembers of those it took. Pure.

A rule looks at an article's title. ``must_contain``: any one of its expressions matches (none
given: every title); ``must_not_contain``: none of its expressions matches. An expression is a
regular expression (``use_regex``) or words of wildcards (``*`` any characters, ``?`` one), all
of which must be found, in any order; both any case. ``episode_filter``, ``"SxE;E;E-E;E-;"`` (a
season, then episodes, ranges and an open range, each followed by ``;``), takes the titles that
name one of those episodes (``S01E05``, ``s1.e5``, ``1x05``). ``smart_filter`` takes a title only
if it names an episode (by ``smart_patterns``: ``S01E05``, ``1x05``, a date) not taken before,
or (with ``repacks``) a REPACK or PROPER of one, once. ``ignore_days``: after an article is taken,
none dated within that many days of it. ``feeds``: the feed URLs the rule reads.
"""

from __future__ import annotations

import email.utils
import fnmatch
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..errors import TorrentEngineError
from ..formats.feed import rfc822_time
from ..jobs.model import InvalidJobRequest
from ..jobs.validate import check_category, check_tags
from ..jsonvalue import JSON

__all__ = ["LAYOUTS", "FeedRule", "RuleError", "check_rule_name", "episode_of", "judge",
           "rule_from_json", "rule_json", "smart_pattern", "taken"]

MAX_TITLE = 1024  # characters of a title a rule looks at (an article's expressions stay cheap)
MAX_EXPRESSION = 2048  # characters of one rule's expression
LAST_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z, in seconds since the epoch
MAX_REMEMBERED = 10_000  # episodes a rule remembers (the oldest forgotten first)
# our content layouts as qBittorrent's rules write them
LAYOUTS = {"original": "Original", "subfolder": "Subfolder", "no_subfolder": "NoSubfolder"}
_FILTER = re.compile(r"^(\d{1,4})x((?:\d{1,4}(?:-\d{0,4})?;)+)$")
_SXE = re.compile(r"\bs0*(\d{1,4})[ ._-]?e0*(\d{1,4})(?:\D|$)", re.IGNORECASE)
_NXN = re.compile(r"\b(\d{1,4})x0*(\d{1,4})(?:\D|$)", re.IGNORECASE)


class RuleError(TorrentEngineError, ValueError):
    """A rule that cannot be used; ``field`` names what was wrong (qBittorrent's key)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = message
        self.field = field


@dataclass(frozen=True, slots=True)
class FeedRule:
    """One download rule (see the module's docstring); what an add it makes is given: a save
    path ("" the category's or the download root), the category, tags, whether it starts paused
    (None: the settings') and its content layout (None: the settings')."""

    name: str
    enabled: bool = True
    priority: int = 0  # rules are tried lowest first (then by name); the first to take an article adds it
    use_regex: bool = False
    must_contain: tuple[str, ...] = ()
    must_not_contain: tuple[str, ...] = ()
    episode_filter: str = ""
    smart_filter: bool = False
    previously_matched: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    ignore_days: int = 0
    last_match: float | None = None  # epoch seconds of the last article taken
    save_path: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    add_paused: bool | None = None
    content_layout: str | None = None

    @classmethod
    def from_qbt(cls, data: Mapping[str, object], name: str) -> FeedRule:
        """A rule from qBittorrent's ``ruleDef`` (its 4.x keys, and 5's ``torrentParams`` for what
        an add is given); ``RuleError`` naming the key of a value of the wrong kind."""
        name = check_rule_name(name)
        use_regex = _bool(data, "useRegex", False)
        params = data.get("torrentParams")
        if params is not None and not isinstance(params, Mapping):
            raise RuleError("must be an object", "torrentParams")
        if isinstance(params, Mapping):  # (5.0: what the add is given, in one object)
            save_path = _str(params, "save_path", "torrentParams.save_path")
            category = _str(params, "category", "torrentParams.category")
            raw_tags = params.get("tags", [])
            stopped = params.get("stopped", params.get("paused"))
            layout = params.get("content_layout")
            where = "torrentParams."
        else:
            save_path, category = _str(data, "savePath"), _str(data, "assignedCategory")
            raw_tags, stopped, layout, where = [], data.get("addPaused"), data.get("torrentContentLayout"), ""
        if stopped is not None and not isinstance(stopped, bool):
            raise RuleError("must be true, false or null (the settings')",
                            f"{where}{'stopped' if where else 'addPaused'}")
        if layout is not None and layout != "" and layout not in LAYOUTS.values():
            raise RuleError(f"must be one of {', '.join(LAYOUTS.values())} or null",
                            f"{where}{'content_layout' if where else 'torrentContentLayout'}")
        if not isinstance(raw_tags, (list, str)):
            raise RuleError("must be a list of tags", f"{where}tags")
        try:
            tags = check_tags([t for t in raw_tags.split(",") if t.strip()] if isinstance(raw_tags, str)
                              else raw_tags, "tags")
        except InvalidJobRequest as exc:
            raise RuleError(exc.reason, f"{where}tags") from exc
        try:
            category = check_category(category)
        except InvalidJobRequest as exc:
            raise RuleError(exc.reason, f"{where}{'category' if where else 'assignedCategory'}") from exc
        feeds = data.get("affectedFeeds", [])
        if isinstance(feeds, str):
            feeds = [feeds]
        if not isinstance(feeds, list) or not all(isinstance(f, str) for f in feeds):
            raise RuleError("must be a list of feed URLs", "affectedFeeds")
        matched = data.get("previouslyMatchedEpisodes", [])
        if isinstance(matched, str):
            matched = [matched]
        if not isinstance(matched, list) or not all(isinstance(m, str) for m in matched):
            raise RuleError("must be a list of episodes", "previouslyMatchedEpisodes")
        episode_filter = _str(data, "episodeFilter").strip()
        if episode_filter and not _FILTER.match(episode_filter):
            raise RuleError(f"{episode_filter[:80]!r} is not SEASONxEPISODES; (e.g. 1x2;8-15;20-;)",
                            "episodeFilter")
        ignore_days = data.get("ignoreDays", 0)
        if isinstance(ignore_days, bool) or not isinstance(ignore_days, int) \
                or not 0 <= ignore_days <= 36_500:
            raise RuleError("must be a whole number of days from 0", "ignoreDays")
        priority = data.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise RuleError("must be a whole number", "priority")
        rule = cls(name=name, enabled=_bool(data, "enabled", True), priority=priority, use_regex=use_regex,
                   must_contain=_expressions(_str(data, "mustContain"), use_regex, "mustContain"),
                   must_not_contain=_expressions(_str(data, "mustNotContain"), use_regex, "mustNotContain"),
                   episode_filter=episode_filter, smart_filter=_bool(data, "smartFilter", False),
                   previously_matched=tuple(dict.fromkeys(matched))[-MAX_REMEMBERED:],
                   feeds=tuple(dict.fromkeys(f.strip() for f in feeds if f.strip())),
                   ignore_days=ignore_days, last_match=_date(data.get("lastMatch")),
                   save_path=save_path.strip(),
                   category=category, tags=tags, add_paused=stopped,
                   content_layout=next((ours for ours, theirs in LAYOUTS.items() if theirs == layout), None))
        return rule

    def to_qbt(self) -> dict[str, JSON]:
        """The rule as qBittorrent's ``rss/rules`` gives it (4.x's keys, and 5's ``torrentParams``)."""
        layout = LAYOUTS[self.content_layout] if self.content_layout is not None else None
        return {
            "enabled": self.enabled, "priority": self.priority, "useRegex": self.use_regex,
            "mustContain": "|".join(self.must_contain), "mustNotContain": "|".join(self.must_not_contain),
            "episodeFilter": self.episode_filter, "affectedFeeds": list(self.feeds),
            "lastMatch": "" if self.last_match is None
            else email.utils.formatdate(self.last_match, usegmt=True),
            "ignoreDays": self.ignore_days, "smartFilter": self.smart_filter,
            "previouslyMatchedEpisodes": list(self.previously_matched),
            "addPaused": self.add_paused, "torrentContentLayout": layout, "savePath": self.save_path,
            "assignedCategory": self.category,
            "torrentParams": {"category": self.category, "tags": list(self.tags), "save_path": self.save_path,
                              "stopped": self.add_paused, "content_layout": layout},
        }


# a rule's fields in our API (``rule_json``), and the keys of qBittorrent's ruleDef they are read as
_JSON_KEYS = {"enabled": "enabled", "priority": "priority", "use_regex": "useRegex",
              "must_contain": "mustContain", "must_not_contain": "mustNotContain",
              "episode_filter": "episodeFilter", "smart_filter": "smartFilter", "feeds": "affectedFeeds",
              "ignore_days": "ignoreDays", "previously_matched": "previouslyMatchedEpisodes",
              "last_match": "lastMatch"}
_ADD_KEYS = {"save_path": "save_path", "category": "category", "tags": "tags", "add_paused": "stopped",
             "content_layout": "content_layout"}  # (5.0's torrentParams)
_OUR_FIELDS = {"ruleName": "name", **{theirs: ours for ours, theirs in _JSON_KEYS.items()},
               **{f"torrentParams.{theirs}": ours for ours, theirs in _ADD_KEYS.items()}}
_TEXT, _WHOLE, _FLAG, _LIST = ((str,), "text"), ((int,), "a whole number"), ((bool,), "true or false"), \
    ((list,), "a list")
# every field of our API's rule, and its one kind
_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": _TEXT, "enabled": _FLAG, "priority": _WHOLE, "use_regex": _FLAG, "must_contain": _TEXT,
    "must_not_contain": _TEXT, "episode_filter": _TEXT, "smart_filter": _FLAG, "feeds": _LIST,
    "ignore_days": _WHOLE, "previously_matched": _LIST,
    "last_match": ((int, float, type(None)), "seconds since the epoch, or null"), "save_path": _TEXT,
    "category": _TEXT, "tags": _LIST,
    "add_paused": ((bool, type(None)), "true, false or null (the settings')"),
    "content_layout": ((str, type(None)), f"one of {', '.join(LAYOUTS)} or null (the settings')")}


def rule_from_json(data: Mapping[str, object], kept: FeedRule | None = None) -> FeedRule:
    """A rule as our API gives it (``rule_json``'s fields; one not given is as a new rule has it,
    except what ``kept``, the rule of that name, remembers: its last match and the episodes it
    took). Read as qBittorrent's ruleDef is, with the same checks; ``RuleError`` names our field."""
    unknown = sorted(data.keys() - _KINDS.keys())
    if unknown:
        raise RuleError(f"unknown field (known: {', '.join(_KINDS)})", unknown[0])
    name = data.get("name")
    if not isinstance(name, str):
        raise RuleError("a rule needs a name", "name")
    for key, value in data.items():  # (of its one kind: qBittorrent's reading takes more, a list as text)
        kinds, what = _KINDS[key]
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise RuleError(f"must be {what}", key)
    layout = data.get("content_layout")
    if layout is not None and layout not in LAYOUTS:
        raise RuleError(f"must be one of {', '.join(LAYOUTS)} or null (the settings')", "content_layout")
    qbt: dict[str, object] = {theirs: data[ours] for ours, theirs in _JSON_KEYS.items() if ours in data}
    if kept is not None:
        qbt.setdefault("lastMatch", kept.last_match)
        qbt.setdefault("previouslyMatchedEpisodes", list(kept.previously_matched))
    params = {theirs: data[ours] for ours, theirs in _ADD_KEYS.items() if ours in data}
    if layout is not None:
        params["content_layout"] = LAYOUTS[layout]
    qbt["torrentParams"] = params
    try:
        return FeedRule.from_qbt(qbt, name)
    except RuleError as exc:
        raise RuleError(exc.reason, _OUR_FIELDS.get(exc.field, exc.field)) from None


def rule_json(rule: FeedRule) -> dict[str, JSON]:
    """The rule as our API gives it: ``must_contain`` and ``must_not_contain`` as written (one
    regular expression, or wildcard expressions separated by ``|``), ``last_match`` in seconds
    since the epoch (null: none yet), ``content_layout`` and ``add_paused`` null for the settings'."""
    return {"name": rule.name, "enabled": rule.enabled, "priority": rule.priority,
            "use_regex": rule.use_regex, "must_contain": "|".join(rule.must_contain),
            "must_not_contain": "|".join(rule.must_not_contain), "episode_filter": rule.episode_filter,
            "smart_filter": rule.smart_filter, "feeds": list(rule.feeds), "ignore_days": rule.ignore_days,
            "previously_matched": list(rule.previously_matched),
            "last_match": rule.last_match, "save_path": rule.save_path, "category": rule.category,
            "tags": list(rule.tags), "add_paused": rule.add_paused, "content_layout": rule.content_layout}


def check_rule_name(name: str, field: str = "ruleName") -> str:
    """A rule's name, trimmed: not empty, at most 255 characters, on one line (``RuleError``)."""
    name = name.strip()
    if not name or len(name) > 255 or any(c in name for c in "\x00\n\r"):
        raise RuleError("a rule needs a name (at most 255 characters, on one line)", field)
    return name


def _bool(data: Mapping[str, object], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RuleError("must be true or false", key)
    return value


def _str(data: Mapping[str, object], key: str, field: str = "") -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise RuleError("must be text", field or key)
    return value


def _date(value: object) -> float | None:
    """``lastMatch`` as qBittorrent writes it (RFC 2822; "" none), or epoch seconds (up to the
    year 9999: it is written back as a date)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value <= LAST_DATE:
            raise RuleError(f"{value!r} is no date (seconds since the epoch, to the year 9999)", "lastMatch")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    when = rfc822_time(value.strip())
    if when is None:
        raise RuleError(f"{value[:60]!r} is no date (RFC 2822, as qBittorrent writes it)", "lastMatch")
    return when


def _expressions(text: str, use_regex: bool, field: str) -> tuple[str, ...]:
    """A rule's ``mustContain`` or ``mustNotContain``: one regular expression, or wildcard
    expressions separated by ``|``; each checked (``RuleError`` for one that does not compile)."""
    if len(text) > MAX_EXPRESSION:
        raise RuleError(f"longer than {MAX_EXPRESSION} characters", field)
    parts = [text] if use_regex else text.split("|")
    if parts == [""]:
        return ()
    for part in parts:
        try:
            _patterns(part, use_regex)
        except re.error as exc:
            raise RuleError(f"{part[:80]!r} is not a regular expression: {exc}", field) from None
    return tuple(parts)


@functools.lru_cache(maxsize=1024)
def _patterns(expression: str, use_regex: bool) -> tuple[re.Pattern[str], ...]:
    """What must all be found in a title for ``expression`` to match, any case: the regular
    expression, or each of its wildcard words (``fnmatch``'s ``*``, ``?``, ``[...]``) anywhere."""
    if use_regex:
        return (re.compile(expression, re.IGNORECASE),)
    return tuple(re.compile(fnmatch.translate(f"*{word}*"), re.IGNORECASE) for word in expression.split())


def _matches(title: str, expression: str, use_regex: bool) -> bool:
    # (an empty expression takes everything, as "expr|" would: it has no pattern)
    return all(p.search(title) is not None for p in _patterns(expression, use_regex))


def _episode_filtered(title: str, spec: str) -> bool:
    """Whether ``title`` names an episode ``spec`` (``SxE;E-E;E-;``) asks for."""
    found = _FILTER.match(spec)
    if found is None:
        return False
    season = int(found.group(1))
    named = _SXE.search(title) or _NXN.search(title)
    theirs = (int(named.group(1)), int(named.group(2))) if named is not None else None
    for part in found.group(2).split(";"):
        if not part:
            continue
        first, dash, last = part.partition("-")
        if theirs is None:
            return False
        if not dash:
            if theirs == (season, int(first)):
                return True
        elif not last:  # an open range: that episode on, and every later season
            if (theirs[0] == season and theirs[1] >= int(first)) or theirs[0] > season:
                return True
        elif int(first) <= int(last) and theirs[0] == season and int(first) <= theirs[1] <= int(last):
            return True
    return False


def smart_pattern(patterns: Sequence[str]) -> re.Pattern[str]:
    """The smart filter's expression of ``patterns`` (each a regular expression whose groups
    name the episode); ``RuleError`` for one that does not compile."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise RuleError(f"{pattern[:80]!r} is not a regular expression: {exc}",
                            "rss_smart_episode_filters") from None
    return re.compile(r"(?:_|\b)(?:" + "|".join(patterns) + r")(?:_|\b)", re.IGNORECASE)


def episode_of(title: str, smart: re.Pattern[str]) -> str:
    """The episode ``title`` names, as the smart filter remembers it: its groups, numbers without
    their leading zeros, joined by ``x`` (``S01E05`` is ``1x5``); "" for none."""
    found = smart.search(title[:MAX_TITLE])
    if found is None:
        return ""
    parts = [str(int(g)) if g.isdigit() else g for g in found.groups() if g]
    return "x".join(parts)


def judge(rule: FeedRule, title: str, date: float, *, smart: re.Pattern[str],
          repacks: bool) -> tuple[str, ...] | None:
    """Whether ``rule`` takes the article ``title`` dated ``date``, were it enabled (qBittorrent's
    matching articles show a disabled rule's): None when it does not, else the episodes it
    remembers for it (none without the smart filter)."""
    title = title[:MAX_TITLE]
    if rule.ignore_days > 0 and rule.last_match is not None \
            and date < rule.last_match + rule.ignore_days * 86400:
        return None
    if rule.must_contain and not any(_matches(title, e, rule.use_regex) for e in rule.must_contain):
        return None
    if any(_matches(title, e, rule.use_regex) for e in rule.must_not_contain):
        return None
    if rule.episode_filter and not _episode_filtered(title, rule.episode_filter):
        return None
    if not rule.smart_filter:
        return ()
    episode = episode_of(title, smart)
    if not episode:
        return None  # (a title naming no episode is not taken by the smart filter)
    if episode not in rule.previously_matched:
        return (episode,)
    if not repacks:
        return None
    repack, proper = "repack" in title.lower(), "proper" in title.lower()
    if not (repack or proper):
        return None
    full = episode + ("-REPACK" if repack else "") + ("-PROPER" if proper else "")
    if full in rule.previously_matched:
        return None
    return (full, episode + "-REPACK", episode + "-PROPER") if repack and proper else (full,)


def taken(rule: FeedRule, date: float, episodes: Sequence[str]) -> FeedRule:
    """``rule`` once it took an article dated ``date`` that names ``episodes``."""
    remembered = tuple(dict.fromkeys((*rule.previously_matched, *episodes)))[-MAX_REMEMBERED:]
    return replace(rule, last_match=date, previously_matched=remembered)
