"""qBittorrent's ``sync/maindata``: the state each answer showed, kept by its ``rid``, and what
changed since the one a client names (all of it, ``full_update``, when that one is not kept)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypedDict

from starlette.responses import Response

from ...jobs import JobService, ServiceStats
from ...jobs.tuning.altspeed import effective_limits
from ...jsonvalue import JSON
from .. import pages as paging
from ..pages import LIST_PAGE, PartsResponse, Turns, array_parts, joined_pages
from .kept import Kept, encode
from .qbittorrent_records import MAX_SYNC_SNAPSHOTS, QbtRecord, qt_json


class MainData(TypedDict):
    """What one ``sync/maindata`` answer showed."""

    torrents: dict[str, QbtRecord]  # by info-hash
    categories: dict[str, dict[str, str | None]]
    tags: list[str]
    server_state: QbtRecord


def server_state(service: JobService) -> QbtRecord:
    """``server_state`` (``transfer/info`` shows a part of it)."""
    stats = service.stats()
    s = service.get_settings()
    external = (stats.port_mapping.external_ip or "") if stats.port_mapping is not None else ""
    try:
        free = shutil.disk_usage(service.download_root).free
    except OSError:
        free = 0
    session, all_time = stats.transfer.session, stats.transfer.all_time  # (this run's; every run's)
    return {"dl_info_speed": int(stats.download_rate), "dl_info_data": session.downloaded,
            "up_info_speed": int(stats.upload_rate), "up_info_data": session.uploaded,
            "dl_rate_limit": effective_limits(s)[0], "up_rate_limit": effective_limits(s)[1],
            "dht_nodes": stats.dht_nodes, "connection_status": connection_status(stats),
            "alltime_dl": all_time.downloaded, "alltime_ul": all_time.uploaded,
            "free_space_on_disk": free, "queueing": s.queueing,
            "use_alt_speed_limits": s.alt_speed_enabled,
            "refresh_interval": 1500, "global_ratio": f"{all_time.uploaded / all_time.downloaded:.2f}"
            if all_time.downloaded else "-", "total_peer_connections": stats.peers,
            "total_wasted_session": session.wasted,
            "average_time_queue": 0, "queued_io_jobs": 0, "total_queued_size": 0,
            "total_buffers_size": 0, "read_cache_hits": "0", "read_cache_overload": "0",
            "write_cache_overload": "0",
            # (WebAPI 2.11–2.16: the address the gateway reports, when port mapping has one;
            # libtorrent's disk.request_latency, µs, and tracker.num_queued_tracker_announces)
            "last_external_address_v4": external if "." in external else "",
            "last_external_address_v6": external if ":" in external else "",
            "request_latency": stats.request_latency, "queued_tracker_announces": stats.queued_announces}


def connection_status(stats: ServiceStats) -> str:
    """qBittorrent's ``connection_status``: "disconnected" while nothing listens, "firewalled"
    until a peer from outside this host and its local network connected ("connected" then)."""
    if not stats.listen_port:
        return "disconnected"
    return "connected" if stats.incoming_connections else "firewalled"


def _key(h: str) -> bytes:
    """``h`` as a JSON object's key and its colon: a hex hash written as it is (the encoder's
    call was 1.5 µs a torrent of a full answer), any other string encoded."""
    return b'"%s":' % h.encode() if h.isascii() and h.isalnum() else encode(h) + b":"


def _torrent_json(records: Mapping[str, Kept[QbtRecord]], h: str) -> bytes:
    """Torrent ``h`` of a full answer: its hash and its record's kept JSON. (An answer's
    torrents are walked by their hashes, not as ``items()``: 30 000 pairs made at once were as
    many young objects for the collector to walk, 20-40 ms of the loop.)"""
    return _key(h) + records[h].json()


def _changed_json(records: Mapping[str, Kept[QbtRecord]], torrents: Mapping[str, QbtRecord], h: str) -> bytes:
    """Torrent ``h`` of an answer of changes: its hash and what changed of it (``torrents``'),
    its record's kept JSON when that is its whole record, as ``records`` keeps it."""
    changed = torrents[h]
    kept = records.get(h)
    if kept is not None and kept.record is changed:
        return _torrent_json(records, h)
    if len(changed) == 1 and type(position := changed.get("priority")) is int:  # (a move alone: most
        return b'%s{"priority":%d}' % (_key(h), position)  # of a poll's thousands, 2 us by the encoder)
    return _key(h) + encode(changed)


# torrents of a delta written into one part of its answer: mostly a position each, 1-4 us a torrent
_DELTA_PAGE = LIST_PAGE * 4


@dataclass(slots=True)
class Trackers:
    """Which torrents announce to each tracker URL, as one answer showed them (``sync/maindata``'s
    ``trackers``: URL -> info-hashes). ``of``: each torrent's URLs. A later answer's copy shares
    this one's maps until it changes them, then the URLs' sets, each copied before it changes
    (``track``): a poll where no torrent's trackers changed copies nothing, and one of thousands of
    torrents copies only the sets of the trackers whose torrents changed."""

    of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_url: dict[str, set[str]] = field(default_factory=dict)
    _copied: set[str] = field(default_factory=set)
    _shared: bool = False  # (``of`` and ``by_url`` are the answer's it was copied from)

    def copy(self) -> Trackers:
        """The next answer's, from this one's (which no longer changes)."""
        return Trackers(self.of, self.by_url, _shared=True)

    def track(self, info_hash: str, urls: tuple[str, ...]) -> None:
        """Torrent ``info_hash`` announces to ``urls`` now (none: it is not shown)."""
        old = self.of.get(info_hash, ())
        if old == urls:
            return
        if self._shared:
            self.of, self.by_url, self._shared = dict(self.of), dict(self.by_url), False
        if urls:
            self.of[info_hash] = urls
        else:
            self.of.pop(info_hash, None)
        for url in old:
            if url not in urls:
                members = self._own(url)
                members.discard(info_hash)
                if not members:
                    del self.by_url[url]
        for url in urls:
            if url not in old:
                self._own(url).add(info_hash)

    def _own(self, url: str) -> set[str]:
        """``url``'s set of torrents, this answer's own (copied the first time it changes)."""
        members = self.by_url.get(url)
        if members is None or url not in self._copied:
            members = self.by_url[url] = set() if members is None else set(members)
            self._copied.add(url)
        return members

    def shown(self) -> dict[str, list[str]]:
        """Every tracker URL and its torrents, as a full answer writes them."""
        return {url: sorted(members) for url, members in self.by_url.items()}

    def changes(self, before: Trackers) -> tuple[dict[str, list[str]], list[str]]:
        """The URLs whose torrents changed since ``before`` (with all their torrents now, as
        qBittorrent tells them) and those no torrent announces to any more."""
        was = before.by_url
        if was is self.by_url:
            return {}, []
        changed = {url: sorted(members) for url, members in self.by_url.items()
                   if (old := was.get(url)) is not members and old != members}
        return changed, [url for url in was if url not in self.by_url]


@dataclass(frozen=True, slots=True)
class Shown:
    """What one answer showed, the job service's change cursor it was made at, and the share
    settings its records were made with (records read them: another value remakes them all).
    ``positions``: by info-hash, the queue position shown where it is not its record's
    ``priority`` (a torrent that only moved in the queue keeps the record shown before: a mass
    check moves thousands a poll, and a copy of each record for its one field was 12 % of a
    poll's time and 30 MB made a second)."""

    data: MainData
    cursor: int
    limits: tuple[object, ...]
    positions: dict[str, int] = field(default_factory=dict)
    trackers: Trackers = field(default_factory=Trackers)


class MainDataSync:
    """The answers' ``rid`` (one count for ``sync/maindata`` and ``sync/torrentPeers``) and the
    states shown that a client may still name: each answer no answer was made from yet (a
    client's next ask names it; at most ``MAX_SYNC_SNAPSHOTS``), and the one an answer was last
    made from (a client whose answer was lost asks it again), as qBittorrent keeps its last
    answer and its last accepted one. An older ``rid`` gets a full answer. (Every state kept
    holds the records it showed: 32 kept a second apart held five versions of each of 10 000
    records being checked, 220 MiB.)"""

    def __init__(self) -> None:
        self.rid = 0
        self._shown: dict[int, Shown] = {}
        self._accepted = 0  # the rid an answer was last made from (0: none)

    def next_rid(self) -> int:
        """The next answer's ``rid``."""
        self.rid += 1
        return self.rid

    def shown(self, rid: int) -> Shown | None:
        """What answer ``rid`` showed, while it is kept (0: none, a client's first ask)."""
        return self._shown.get(rid) if rid else None

    async def answer(self, rid: int, records: dict[str, Kept[QbtRecord]], now: Shown,
                     changed: Iterable[str] | None = None, turns: Turns | None = None,
                     ) -> dict[str, JSON] | Response:
        """The answer to ``sync/maindata?rid=rid`` showing ``now`` (whose torrents are
        ``records``'): a record still the same object (its job's snapshot unchanged) is passed
        over without a look at its fields (but its position), and a full answer joins the
        records' kept JSON (``now`` then keeps no position apart). ``changed``: the only
        torrents that may differ from answer ``rid``'s (from the job service's change log; None:
        any may). A full answer's torrents are joined ``LIST_PAGE`` at a time, and sent in those
        parts; the loop is let run as they are made (``turns``': the answer's, when given)."""
        turns = turns or Turns()
        before = self.shown(rid)
        this = self.next_rid()  # (this answer's: another may be made while this one lets the loop run)
        self._shown[this] = now
        if before is not None and rid != self._accepted:  # (the one accepted before is named no more)
            self._shown.pop(self._accepted, None)
            self._accepted = rid
        while len(self._shown) > MAX_SYNC_SNAPSHOTS:
            del self._shown[next(iter(self._shown))]
        if before is None:  # (as json.dumps of {"rid", "full_update", **now} would write it)
            rest = encode({**{k: v for k, v in now.data.items() if k != "torrents"},
                           "trackers": now.trackers.shown()})
            pages = await joined_pages(list(records), partial(_torrent_json, records), turns=turns)
            return PartsResponse(array_parts(pages, b'{"rid":%d,"full_update":true,"torrents":{' % this,
                                             b"}," + rest[1:]), media_type="application/json")
        out = await self._delta(this, before, now, changed, turns)
        torrents = out.get("torrents")
        if not isinstance(torrents, dict) or len(torrents) < LIST_PAGE:
            return out  # (the caller writes it, as any answer)
        # Thousands of torrents (a mass check's poll: 1 400 records and 8 000 positions took 24 ms
        # of qt_json's walk and 30 of json.dumps in one go): their JSON is written a page at a
        # time, the loop let run between pages, a record sent whole as its kept JSON. Their
        # records are qt_json's already (``QbittorrentApi._record``), so only the rest is walked.
        rest = encode(qt_json({k: v for k, v in out.items() if k not in ("rid", "torrents")}))
        pages = await joined_pages(list(torrents), partial(_changed_json, records, torrents),
                                   page=_DELTA_PAGE, turns=turns)
        return PartsResponse(array_parts(pages, b'{"rid":%d,"torrents":{' % this,
                                         b"}}" if rest == b"{}" else b"}," + rest[1:]),
                             media_type="application/json")

    async def _delta(self, rid: int, was: Shown, now: Shown,
                     changed: Iterable[str] | None, turns: Turns) -> dict[str, JSON]:
        """Answer ``rid``: what changed from ``was`` to ``now`` (the loop let run between pages of
        torrents: a mass check's poll tells thousands; the states are kept, nothing changes them
        meanwhile)."""
        out: dict[str, JSON] = {"rid": rid}
        torrents: dict[str, QbtRecord] = {}
        before, after = was.data, now.data
        shown, current = before["torrents"], after["torrents"]
        at_before, at_now = was.positions, now.positions
        looked = list(current) if changed is None else [h for h in changed if h in current]
        for n, h in enumerate(looked):
            if n and n % paging.STEP == 0:
                await turns.take()
            rec = current[h]
            old = shown.get(h)
            position = at_now.get(h)
            if old is None:
                torrents[h] = rec if position is None else {**rec, "priority": position}
                continue
            position_before = at_before.get(h)
            if old is rec and position == position_before:
                continue
            delta = {} if old is rec else {k: v for k, v in rec.items() if old.get(k) != v}
            if position is not None or position_before is not None:  # (a position kept apart)
                told = at_now.get(h, rec["priority"])
                if told != at_before.get(h, old["priority"]):
                    delta["priority"] = told
                else:
                    delta.pop("priority", None)
            if delta:
                torrents[h] = delta
        if torrents:
            out["torrents"] = torrents
        if changed is None:
            removed = [h for h in shown if h not in current]
        else:  # (in the order the earlier answer showed them, as a walk of it would give)
            dropped = {h for h in changed if h in shown and h not in current}
            removed = [h for h in shown if h in dropped] if dropped else []
        if removed:
            out["torrents_removed"] = removed
        cats = {n: c for n, c in after["categories"].items() if before["categories"].get(n) != c}
        if cats:
            out["categories"] = cats
        gone = [n for n in before["categories"] if n not in after["categories"]]
        if gone:
            out["categories_removed"] = gone
        tags = [t for t in after["tags"] if t not in before["tags"]]
        if tags:
            out["tags"] = tags
        gone_tags = [t for t in before["tags"] if t not in after["tags"]]
        if gone_tags:
            out["tags_removed"] = gone_tags
        state = {k: v for k, v in after["server_state"].items() if before["server_state"].get(k) != v}
        if state:
            out["server_state"] = state
        trackers, trackers_gone = now.trackers.changes(was.trackers)
        if trackers:
            out["trackers"] = trackers
        if trackers_gone:
            out["trackers_removed"] = trackers_gone
        return out
