"""The daemon's feed reader: the feeds it reads (RSS, Atom) in folders, their articles, and the
download rules that add the torrents of new articles as jobs (qBittorrent's RSS and its
auto-downloader).

One task reads them all (``run``, in the service's task group: it ends when the service stops):
each feed once its interval is over (its own, else ``rss_refresh_interval``), while
``rss_processing_enabled``, at most ``FETCHES_AT_ONCE`` at once, each within ``FETCH_TIMEOUT``
and ``MAX_FEED_SIZE`` (fetched as a ``.torrent`` URL is: the service's proxy, bound address and
the cookies given for its domain and path, qBittorrent's ``app/setCookies``).
Feeds of one host (and port) are fetched one at a time, each ``rss_fetch_delay`` seconds after
the last ended (qBittorrent's "same host request delay": a site that serves many feeds, a
tracker's RSS, is not asked them all at once).
A feed that cannot be read keeps its articles and says why (``error``). While
``rss_auto_downloading_enabled``, every unread article with a torrent is offered to the rules
that read its feed, lowest priority first; the first that takes it adds its torrent (a magnet
link, or a ``.torrent`` URL the add fetches) with the rule's save path, category, tags, paused
and content layout, and the article is read from then on; an add refused is logged, and the
article is offered again at the next reading with new articles (or a rule set), ``ADD_TRIES``
times at most (then it is read, said as a warning: a torrent link that stays broken is not tried
and logged at every reading for ever). A rule set, or the auto-downloader turned on, offers
every unread article at once.

The feeds, their articles (at most ``rss_max_articles_per_feed`` each), what was read and the
rules are kept in ``state_dir/feeds.json``, written whole (a new file renamed over the old) after
each change; one that cannot be read is kept aside (``feeds.json.unreadable``) and the reader
starts empty, saying so.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import math
import os
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from ..engine.addtorrent import AddTorrent, MagnetLink, TorrentUrl
from ..errors import HttpError, TorrentEngineError
from ..formats.feed import MAX_FEED_SIZE, Article, FeedError, parse_feed
from ..jobs import AddOptions, JobError, JobFeatures, JobService, ServiceSettings
from ..jobs.tuning.settings import MAX_FEED_FETCH_DELAY
from ..jsonvalue import JSON
from ..net.httpclient import http_get
from ..net.httpclient.url import split_http_url
from ..storage.resume import write_atomic
from .rules import FeedRule, RuleError, judge, smart_pattern, taken
from .state import SEP, FeedConflict, FeedEntry, FeedInputError, FeedMissing, FeedState

__all__ = ["FEEDS_FILE", "FETCHES_AT_ONCE", "FETCH_TIMEOUT", "FeedReader"]

log = logging.getLogger(__name__)

FEEDS_FILE = "feeds.json"
FETCH_TIMEOUT = 60.0  # seconds for one feed's answer, redirects and all
FETCHES_AT_ONCE = 4
LOOK_AT_MOST = 30.0  # seconds between two looks at what is due (a setting changed meanwhile)
MIN_INTERVAL = 60.0  # seconds between two readings of a feed at least (as the setting's minimum)
ADD_TRIES = 3  # readings an article's add may be refused at before it is given up (read)
RSS_SETTINGS = tuple(f.name for f in dataclasses.fields(ServiceSettings) if f.name.startswith("rss_"))
_READERS: weakref.WeakKeyDictionary[JobService, FeedReader] = weakref.WeakKeyDictionary()


class FeedReader:
    """The feeds of ``service`` (see the module's docstring); its verbs are qBittorrent's
    ``rss/*`` methods', each raising ``FeedConflict`` (or ``RuleError``) naming the input."""

    def __init__(self, service: JobService, *, clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.state = FeedState()
        self._clock = clock
        state_dir = service.state_dir
        self._path = None if state_dir is None else Path(state_dir) / FEEDS_FILE
        self._loaded = False
        self._loading_record = anyio.Lock()  # (one reading of the record: the others wait for it)
        self._unread: str | None = None  # why the record could not be read (nothing is done then)
        self._running = False
        self._loading: set[str] = set()  # the URLs being read now
        self._asked: set[str] = set()  # the URLs asked to be read now (refresh), whatever the settings
        self._offer_all = False  # every unread article to be offered (a rule set)
        self._wake = anyio.Event()
        self._writing = anyio.Lock()  # one save at a time, each the state as it is then
        self._offering = anyio.Lock()  # one pass of the rules at a time (each remembers what it took)
        self._hosts: dict[tuple[str, int], _HostTurns] = {}  # feeds' hosts being fetched from, or lately

    @classmethod
    def of(cls, service: JobService) -> FeedReader:
        """The one reader of ``service`` (made the first time: every front end over it edits the
        same feeds, read by one task)."""
        reader = _READERS.get(service)
        if reader is None:
            reader = _READERS[service] = cls(service)
            service.watch_settings(reader._settings_changed)
        return reader

    def _settings_changed(self, before: ServiceSettings, after: ServiceSettings) -> None:
        if any(getattr(before, name) != getattr(after, name) for name in RSS_SETTINGS):
            self.wake()

    # -- running -----------------------------------------------------------------------------
    def ensure_running(self) -> None:
        """Run the reader in the service's task group for its run (from its start, when it has
        not started yet: the daemon serves its API first), unless it does."""
        if not self._running:
            self.service.run_with(self.run, name="feed reader")
            self._running = True

    def wake(self) -> None:
        """A setting changed: look at what is due now, and offer every unread article to the
        rules (the auto-downloader may have been turned on)."""
        self._offer_all = True
        self._wake.set()

    async def load(self) -> None:
        """The feeds as kept, once: a record that does not read is kept aside and the reader
        starts empty; one that cannot be read at all (the disk's error) leaves the reader doing
        nothing, each verb saying why (``FeedConflict``), so that no save replaces it."""
        async with self._loading_record:
            if not self._loaded and self._path is not None:
                try:
                    self.state = await anyio.to_thread.run_sync(_read_record, self._path)
                except OSError as exc:
                    self._unread = f"the feeds record {self._path} cannot be read: {exc.strerror or exc}"
                    log.error("%s; the feeds are not read until the daemon restarts", self._unread)
            self._loaded = True
        if self._unread is not None:
            raise FeedConflict(self._unread, "feeds")

    async def run(self) -> None:
        """Read the feeds as they come due, and offer new articles to the rules, until cancelled."""
        self._running = True
        try:
            try:
                await self.load()
            except FeedConflict:
                return  # (said: load)
            limiter = anyio.CapacityLimiter(FETCHES_AT_ONCE)
            async with anyio.create_task_group() as tg:
                while True:
                    self._wake = anyio.Event()
                    wait = self._start_due(tg, limiter)
                    if self._offer_all:
                        self._offer_all = False
                        tg.start_soon(self._guarded, self._offer(None))
                    with anyio.move_on_after(max(wait, 0.01)):
                        await self._wake.wait()
        finally:
            self._running = False

    def _start_due(self, tg: anyio.abc.TaskGroup, limiter: anyio.CapacityLimiter) -> float:
        """The readings due begun; the seconds until the next one is."""
        settings = self.service.get_settings()
        now = self._clock()
        wait = LOOK_AT_MOST
        for _, entry in self.state.feeds():
            if entry.url in self._loading:
                continue
            asked = entry.url in self._asked
            if not (settings.rss_processing_enabled or asked):
                continue
            due = (entry.refreshed_at or 0.0) + (entry.refresh_interval or settings.rss_refresh_interval)
            if asked or due <= now:
                self._asked.discard(entry.url)
                self._loading.add(entry.url)
                tg.start_soon(self._guarded, self._read(entry, limiter))
            else:
                wait = min(wait, due - now)
        return wait

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None]) -> None:
        """``work``, whose failure (a defect) is logged: it must not end the service's task group."""
        try:
            await work
        except Exception:
            log.exception("the feed reader's work failed")

    async def _fetch(self, url: str) -> bytes:
        """The document at ``url``, fetched as a ``.torrent`` URL is, the cookies given for its
        domain and path too (``HttpError``)."""
        config = self.service.manager.config
        proxy = config.proxy  # (straight under "torrents only", unless proxy only)
        if proxy is not None and self.service.get_settings().proxy_torrents_only and not proxy.only:
            proxy = None
        answer = await http_get(url, timeout=FETCH_TIMEOUT, max_body=MAX_FEED_SIZE, proxy=proxy,
                                bind=config.netbind(), cookies=self.service.url_cookie_header)
        if answer.status != 200:
            raise HttpError(f"answered {answer.status} {answer.reason}".strip(), url)
        return answer.body

    async def _read(self, entry: FeedEntry, limiter: anyio.CapacityLimiter) -> None:
        url = entry.url
        try:
            async with self._host_turn(url), limiter:
                data = await self._fetch(url)
            parsed = await anyio.to_thread.run_sync(parse_feed, data, url)  # (a large one: off the loop)
        except (HttpError, FeedError) as exc:
            if entry.url == url:
                entry.error, entry.refreshed_at = str(exc), self._clock()
            log.warning("feed %s cannot be read: %s", url[:200], exc)
        else:
            if entry.url == url:  # (its URL not changed meanwhile)
                new = entry.take(parsed, self._clock(), self.service.get_settings().rss_max_articles_per_feed)
                if new:
                    log.info("feed %s: %d new articles", url[:200], len(new))
                    await self._offer(entry)
        finally:
            self._loading.discard(url)
        await self.save()

    @asynccontextmanager
    async def _host_turn(self, url: str) -> AsyncIterator[None]:
        """``url``'s host's turn: the fetches from it one at a time, each ``rss_fetch_delay``
        seconds after the last one ended (as qBittorrent's sequential services)."""
        key = _host_of(url)
        turns = self._hosts.get(key)
        if turns is None:
            turns = self._hosts[key] = _HostTurns()
        turns.users += 1
        try:
            async with turns.lock:
                wait = turns.ended + self.service.get_settings().rss_fetch_delay - anyio.current_time()
                if wait > 0:
                    await anyio.sleep(wait)
                try:
                    yield
                finally:
                    turns.ended = anyio.current_time()
        finally:
            turns.users -= 1
            # (forgotten once nobody waits and the delay is over: a host not asked again costs nothing)
            for host, other in list(self._hosts.items()):
                if not other.users and other.ended + MAX_FEED_FETCH_DELAY < anyio.current_time():
                    del self._hosts[host]

    # -- the rules at work ---------------------------------------------------------------------
    async def _offer(self, only: FeedEntry | None) -> None:
        """Every unread article with a torrent, of ``only`` (None: of every feed), offered to the
        rules, oldest first (while the auto-downloader is on)."""
        settings = self.service.get_settings()
        if not settings.rss_auto_downloading_enabled or not self.state.rules:
            return
        smart = smart_pattern(settings.rss_smart_episode_filters)
        async with self._offering:
            changed = False
            for _, entry in list(self.state.feeds()):
                if only is not None and entry is not only:
                    continue
                for article in reversed(entry.articles):
                    if article.id in entry.read or not article.torrent_url:
                        continue
                    for rule in self.state.ordered_rules():
                        if not rule.enabled or entry.url not in rule.feeds:
                            continue
                        date = article.date if article.date is not None else self._clock()
                        episodes = judge(rule, article.title, date, smart=smart,
                                         repacks=settings.rss_download_repack_proper_episodes)
                        if episodes is None:
                            continue
                        refusal = await self._add(article, rule)
                        if refusal is None:
                            now_rule = self.state.rules.get(rule.name)
                            if now_rule is not None:  # (not removed while the add ran)
                                self.state.rules[rule.name] = taken(now_rule, date, episodes)
                            entry.read.add(article.id)
                            entry.refused.pop(article.id, None)
                        else:
                            self._refused(entry, article, rule, refusal)
                        changed = True
                        break  # (the first rule that takes it adds it)
        if changed and only is None:
            await self.save()

    async def _add(self, article: Article, rule: FeedRule) -> tuple[str, bool] | None:
        """The article's torrent added as ``rule`` says: None, or why it was not and whether
        that stays so (a link that is no magnet nor http(s) URL)."""
        url = article.torrent_url
        source: AddTorrent
        if url.lower().startswith("magnet:"):
            source = MagnetLink(url)
        elif url.lower().startswith(("http://", "https://")):
            source = TorrentUrl(url)
        else:
            return f"{url[:200]!r} is no magnet link or http(s) URL", True
        features = JobFeatures(category=rule.category, tags=rule.tags,
                               content_layout=rule.content_layout or "original")
        try:
            job, created = await self.service.add(source, AddOptions(
                save_path=rule.save_path or None, paused=rule.add_paused, features=features))
        except (JobError, TorrentEngineError) as exc:
            return str(exc), False
        log.info("feed article %r taken by rule %r: %s job %s", article.title[:120], rule.name,
                 "added as" if created else "already there as", job.id)
        return None

    @staticmethod
    def _refused(entry: FeedEntry, article: Article, rule: FeedRule, refusal: tuple[str, bool]) -> None:
        """``article``'s add, taken by ``rule``, was refused (``refusal``: why, whether for
        good): counted, said, and the article read once it was refused ``ADD_TRIES`` times (or
        for good)."""
        reason, for_good = refusal
        tries = ADD_TRIES if for_good else entry.refused.get(article.id, 0) + 1
        if tries < ADD_TRIES:
            entry.refused[article.id] = tries
            log.warning("feed article %r taken by rule %r, but not added (try %d of %d, again at the "
                        "next reading): %s", article.title[:120], rule.name, tries, ADD_TRIES, reason)
            return
        entry.refused.pop(article.id, None)
        entry.read.add(article.id)
        log.warning("feed article %r taken by rule %r, but not added; given up (marked read)%s: %s",
                    article.title[:120], rule.name, "" if for_good else f" after {tries} tries", reason)

    # -- the verbs ------------------------------------------------------------------------------
    async def save(self) -> None:
        """Write the feeds and the rules as they are now (an error is logged: the next change
        writes them again)."""
        if self._path is None:
            return
        async with self._writing:
            data = json.dumps(self.state.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
            try:
                await anyio.to_thread.run_sync(write_atomic, self._path, data)
            except OSError as exc:
                log.warning("cannot save the feeds to %s: %s", self._path, exc)

    async def _changed(self) -> None:
        await self.save()
        self._wake.set()

    async def add_folder(self, path: str) -> None:
        """A folder at ``path`` (its own folder there)."""
        await self.load()
        self.state.add_folder(path)
        await self._changed()

    async def add_feed(self, url: str, path: str = "", refresh_interval: float = 0.0) -> FeedEntry:
        """A feed read from ``url`` at ``path`` (""; its URL); read at once while processing is on."""
        _check_interval(refresh_interval)
        await self.load()
        entry = self.state.add_feed(url, path)
        entry.refresh_interval = refresh_interval
        await self._changed()
        return entry

    async def set_refresh_interval(self, path: str, seconds: float) -> None:
        """The feed at ``path`` read every ``seconds`` (0: the settings' interval)."""
        _check_interval(seconds)
        await self.load()
        entry = self.state.feed_at(path)
        if entry is None:
            raise FeedMissing(f"Feed doesn't exist: {path}.", "path")
        entry.refresh_interval = seconds
        await self._changed()

    async def remove(self, path: str) -> None:
        """The item at ``path``: a feed, or a folder and all it holds."""
        await self.load()
        self.state.remove(path)
        await self._changed()

    async def move(self, path: str, to: str) -> str:
        """The item at ``path`` (a folder with all it holds) to the path ``to``; where it is now."""
        await self.load()
        where = self.state.move(path, to)
        await self._changed()
        return where

    async def set_url(self, path: str, url: str) -> None:
        """The feed at ``path`` read from ``url`` from now on (its articles forgotten; the rules
        that read it read it there)."""
        await self.load()
        self.state.set_url(path, url)
        await self._changed()

    async def mark_read(self, path: str, article: str | None = None) -> None:
        """The articles of the feeds at or below ``path`` read, or (``article``) that one."""
        await self.load()
        if path and path not in self.state.items:
            return  # (qBittorrent's answer to an unknown item: nothing, 200)
        self.state.mark_read(path, article)
        await self.save()

    async def refresh(self, path: str) -> None:
        """Read the feeds at or below ``path`` now (whatever the settings say)."""
        await self.load()
        self._asked |= {entry.url for _, entry in self.state.feeds(path)}
        self._wake.set()

    async def set_rule(self, rule: FeedRule) -> None:
        """Set ``rule`` (its name's); every unread article is offered to the rules again. Its save
        path must lead inside the download root (``RuleError`` naming ``savePath``)."""
        if rule.save_path:
            root = self.service.download_root
            target = (root / rule.save_path).resolve()
            if target != root and not target.is_relative_to(root):
                raise RuleError(f"{rule.save_path[:120]!r} is outside the download root {root}", "savePath")
        await self.load()
        self.state.set_rule(rule)
        self._offer_all = True
        await self._changed()

    async def rename_rule(self, name: str, new: str) -> None:
        """The rule ``name`` named ``new``."""
        await self.load()
        self.state.rename_rule(name, new)
        await self._changed()

    async def remove_rule(self, name: str) -> None:
        """The rule ``name`` gone (none of that name: nothing changes)."""
        await self.load()
        self.state.rules.pop(name, None)
        await self._changed()

    def items(self, with_data: bool) -> dict[str, JSON]:
        """``rss/items``: the folders as objects of their items, each feed its ``uid`` and ``url``
        (``withData``: its title, its last build date, whether it is being read, whether its last
        reading failed and why, its articles)."""
        root: dict[str, Any] = {}  # (folders nest: each an object of its items)
        for path, entry in sorted(self.state.items.items()):
            *folders, name = path.split(SEP)
            here = root
            for folder in folders:
                inner = here.setdefault(folder, {})
                assert isinstance(inner, dict)
                here = inner
            if entry is None:
                here.setdefault(name, {})
                continue
            feed: dict[str, JSON] = {"uid": entry.uid, "url": entry.url}
            if entry.refresh_interval:
                feed["refreshInterval"] = int(entry.refresh_interval)
            if with_data:
                feed.update(title=entry.title, lastBuildDate=entry.last_build_date,
                            isLoading=entry.url in self._loading, hasError=bool(entry.error),
                            error=entry.error,
                            articles=[_article_json(a, a.id in entry.read) for a in entry.articles])
            here[name] = feed
        return root

    def listing(self) -> dict[str, JSON]:
        """Our API's view: the folders' paths, and each feed as ``feed_view`` shows it."""
        return {"folders": self.folders(), "feeds": [self.feed_view(p, e) for p, e in self.state.feeds()]}

    def folders(self) -> list[JSON]:
        """The folders' paths."""
        return [path for path, item in self.state.items.items() if item is None]

    def feed_view(self, path: str, entry: FeedEntry) -> dict[str, JSON]:
        """The feed at ``path`` as our API shows it: what its last reading said and its articles
        (dates in seconds since the epoch, each read or not)."""
        return {"path": path, "uid": entry.uid, "url": entry.url, "title": entry.title,
                "refresh_interval": entry.refresh_interval, "refreshed_at": entry.refreshed_at,
                "last_build_date": entry.last_build_date, "loading": entry.url in self._loading,
                "error": entry.error, "unread": sum(1 for a in entry.articles if a.id not in entry.read),
                "articles": [{"id": a.id, "title": a.title, "torrent_url": a.torrent_url, "link": a.link,
                              "date": a.date, "author": a.author, "description": a.description,
                              "read": a.id in entry.read} for a in entry.articles]}

    def matching(self, name: str) -> dict[str, list[str]]:
        """``rss/matchingArticles``: by feed name, the titles of its articles the rule ``name``
        takes as it stands (nothing is remembered)."""
        rule = self.state.rules.get(name)
        if rule is None:
            raise FeedMissing(f"no rule {name[:80]!r}", "ruleName")
        settings = self.service.get_settings()
        smart = smart_pattern(settings.rss_smart_episode_filters)
        out: dict[str, list[str]] = {}
        for path, entry in self.state.feeds():
            if entry.url not in rule.feeds:
                continue
            titles = [a.title for a in entry.articles
                      if judge(rule, a.title, a.date if a.date is not None else self._clock(), smart=smart,
                               repacks=settings.rss_download_repack_proper_episodes) is not None]
            if titles:
                out[path.rpartition(SEP)[2]] = titles
        return out


def _check_interval(seconds: float) -> None:
    """A feed's own interval: 0 (the settings'), or at least ``MIN_INTERVAL`` seconds."""
    if seconds != 0 and not MIN_INTERVAL <= seconds < float("inf"):
        raise FeedInputError(f"{seconds:g}: a feed's interval is 0 (the settings') or at least "
                             f"{MIN_INTERVAL:g} seconds", "refreshInterval")


def _read_record(path: Path) -> FeedState:
    """(A worker thread.) The record at ``path`` (none: no feeds); one that does not read is
    renamed aside (``.unreadable``, or ``.unreadable.N`` beside an earlier one) and is no feeds.
    ``OSError`` when the file cannot be read."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return FeedState()
    try:
        return FeedState.from_json(json.loads(text))
    except ValueError as exc:  # (JSON's errors are ValueErrors too)
        aside = path.with_name(f"{path.name}.unreadable")
        n = 1
        while aside.exists():
            aside, n = path.with_name(f"{path.name}.unreadable.{n}"), n + 1
        os.replace(path, aside)
        log.error("the feeds record %s does not read (%s): kept as %s; no feeds", path, exc, aside)
        return FeedState()


def _article_json(article: Article, read: bool) -> dict[str, JSON]:
    return {"id": article.id, "title": article.title, "torrentURL": article.torrent_url, "link": article.link,
            "date": "" if article.date is None else email.utils.formatdate(article.date, usegmt=True),
            "author": article.author, "description": article.description, "isRead": read}


@dataclasses.dataclass(slots=True, eq=False)
class _HostTurns:
    """One feed host's fetches: one at a time (``lock``), the moment the last ended, and how many
    fetches hold or wait for a turn."""

    lock: anyio.Lock = dataclasses.field(default_factory=anyio.Lock)
    ended: float = -math.inf
    users: int = 0


def _host_of(url: str) -> tuple[str, int]:
    """The host (lower case) and port (the scheme's when none is said) ``url`` is fetched from
    (a URL that is none: its own turn, its fetch says what is wrong)."""
    try:
        where = split_http_url(url)
    except ValueError:
        return url, 0
    return where.host, where.port
