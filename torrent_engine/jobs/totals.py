"""The service's transfer statistics, this run's and across runs: the bytes downloaded and
uploaded, the torrents added, the seconds it ran, how many times it started and the bytes
wasted (qBittorrent's ``alltime_dl`` and ``alltime_ul`` beside its session's ``dl_info_data``,
``up_info_data`` and ``total_wasted_session``;
Transmission's ``session-stats`` ``current-stats`` and ``cumulative-stats``; our ``/api/stats``
``transfer``). This run's bytes and adds are the job table's (``JobTable.transferred``,
``added``: a job removed keeps what it moved); the runs before are ``stats.json`` in the state
folder, written every few minutes and at the stop. ``service_stats`` makes the service's
totals."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from ..engine.shared import SharedResources
from ..storage.resume import write_atomic
from .lifecycle import JobLifecycle
from .model import JobState, PortMappingStatus, ServiceStats, TransferCounts, TransferStats

__all__ = ["SAVE_EVERY", "STATS_FILE", "TransferTotals", "read_counts", "service_stats"]

log = logging.getLogger("torrent_engine.jobs.totals")

STATS_FILE = "stats.json"
SAVE_EVERY = 300.0  # seconds between two writes of the file while the service runs (and at its stop)


def read_counts(state_dir: Path | None) -> TransferCounts:
    """What ``stats.json`` says of the runs before (none without a state folder or a file). A
    file that cannot be read, or a count that is not a whole number from 0, is said in the log
    with what is wrong and counted as 0: the others are kept."""
    if state_dir is None:
        return TransferCounts()
    path = state_dir / STATS_FILE
    try:
        raw = json.loads(path.read_bytes())
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return TransferCounts()
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable; the transfer statistics start again from 0: %s", path, exc)
        return TransferCounts()
    counts: dict[str, int] = {}
    for field in dataclasses.fields(TransferCounts):
        value = raw.get(field.name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            log.warning("%s: %s = %.40r is not a whole number from 0; counted as 0", path, field.name, value)
            value = 0
        counts[field.name] = value
    return TransferCounts(**counts)


class TransferTotals:
    """The runs before this one (``stats.json``) and this run's time: ``of`` adds this run's
    bytes and adds to them; ``save`` writes them (nothing when they did not change)."""

    def __init__(self, state_dir: Path | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.state_dir = state_dir
        self._clock = clock
        self.before = TransferCounts()  # every run before this one, as the file says
        self._started: float | None = None  # (the clock at this run's start: loaded)
        self._saved: TransferCounts | None = None
        self._saved_at = -math.inf

    async def load(self) -> None:
        """Read the file; this run begins now."""
        self.before = await anyio.to_thread.run_sync(read_counts, self.state_dir)
        self._saved = self.before
        self._started = self._saved_at = self._clock()

    def of(self, downloaded: int, uploaded: int, added: int, wasted: int = 0) -> TransferStats:
        """This run's counts (its bytes and adds as given), and every run's."""
        seconds = 0 if self._started is None else int(self._clock() - self._started)
        session = TransferCounts(downloaded, uploaded, added, seconds, 1 if self._started is not None else 0,
                                 wasted)
        return TransferStats(session, self.before.plus(session))

    def due(self) -> bool:
        """Whether ``SAVE_EVERY`` passed since the last write."""
        return self._clock() - self._saved_at >= SAVE_EVERY

    async def save(self, stats: TransferStats) -> None:
        """Write ``stats``' every-run counts (when they changed since the last write); a failure
        is said in the log (the counts are written again at the next save)."""
        if self.state_dir is None or self._started is None:
            return
        self._saved_at = self._clock()
        if stats.all_time == self._saved:
            return
        data = json.dumps(stats.all_time.to_json()).encode()
        try:
            await anyio.to_thread.run_sync(write_atomic, self.state_dir / STATS_FILE, data)
        except OSError as exc:
            log.warning("the transfer statistics could not be written to %s: %s", self.state_dir / STATS_FILE,
                        exc.strerror or exc)
            return
        self._saved = stats.all_time


def service_stats(run: JobLifecycle, shared: SharedResources, totals: TransferTotals) -> ServiceStats:
    """The service's totals: rates, bytes (the records' and this run's), jobs per state, the
    listening port, the DHT, peers and port mapping. Every second: the table keeps the totals
    as the records say; the sessions of the awake jobs, and of the quiet ones with peers
    (``Sleepers.with_peers``), are read."""
    down_rate = up_rate = 0.0
    peers = 0
    counts = {s.value: 0 for s in JobState}
    finished, downloaded, uploaded = run.jobs.finished_totals()
    unfinished, records_down, records_up = run.jobs.unfinished_totals()
    downloaded += records_down
    uploaded += records_up
    for by_state in (finished, unfinished):
        for state, n in by_state.items():
            counts[state.value] += n
    live_down = live_up = live_wasted = 0  # (what the sessions counted beyond their records)
    for rec in run.moving() + run.sleepers.with_peers(run.jobs):
        session = run.session_of(rec)
        if session is not None:  # (its counters are the session's: the record's are older)
            rates = session.rates  # (the numbers the session keeps, read: not a status record)
            down_rate += rates.down_rate
            up_rate += rates.up_rate
            more_down, more_up = session.downloaded - rec.downloaded, session.uploaded - rec.uploaded
            downloaded += more_down
            uploaded += more_up
            live_down += max(0, more_down)
            live_up += max(0, more_up)
            live_wasted += max(0, session.wasted + session.corrupt - rec.wasted - rec.corrupt)
            peers += session.peer_count
    dht = shared.dht if run.running else None
    mapper = shared.port_mapper if run.running else None
    mapping = None if mapper is None else PortMappingStatus(
        method=mapper.method, external_ip=mapper.external_ip, error=mapper.last_error,
        mappings=tuple((m.protocol, m.internal_port, m.external_port, m.lifetime) for m in mapper.mappings))
    moved = run.jobs.transferred
    return ServiceStats(download_rate=down_rate, upload_rate=up_rate, downloaded=downloaded,
                        uploaded=uploaded, listen_port=shared.listen_port if run.running else 0,
                        dht_nodes=len(dht.table) if dht is not None else 0, jobs=counts,
                        peers=peers, port_mapping=mapping,
                        transfer=totals.of(moved[0] + live_down, moved[1] + live_up, run.jobs.added,
                                           moved[2] + live_wasted),
                        queued_announces=shared.queued_announces if run.running else 0,
                        request_latency=round(shared.request_latency),
                        incoming_connections=run.running and shared.reached_from_outside)
