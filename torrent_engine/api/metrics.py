"""Prometheus metrics: ``GET /metrics`` (the text exposition format, ``prometheus_client``).

Nothing is counted twice: at each scrape ``EngineCollector`` reads the job service, its
sessions, their trackers, the DHT and the storages' write timings, the objects that own those
facts. What no object owned before is measured here by its one owner: the latency of API
requests (``RequestTimer``, an ASGI middleware), the event loop's lag (``Metrics.watch_loop``,
a task of the API server's task group), and the process's descriptors, memory and CPU
(``prometheus_client``'s process collector, which counts ``/proc/self/fd``). Every metric is
listed in docs/metrics.md.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import cast

import anyio
from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _untyped_go_float
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..beats import sleep_to_beat
from ..jobs import Job, JobService
from ..storage.timing import PIECE_WRITES, DurationsSnapshot
from .pages import LIST_PAGE, STEP, PartsResponse, Turns

__all__ = ["LAG_INTERVAL", "PREFIX", "EngineCollector", "JobSeries", "Metrics", "RequestTimer"]

PREFIX = "torrent_engine"
LAG_INTERVAL = 1.0  # seconds between two wake-ups of the event-loop lag probe (an idle daemon
# wakes for it: twice a second was a third of its wake-ups, with uvicorn's and the service's tick)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NO_ROUTE = "none"  # the route label of a request no route took (refused before routing, or 404)
# the method label; any other method counts as "other" (a client's made-up methods make no series)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
JOB_LABELS = ("job", "info_hash")


def _histogram(name: str, doc: str, snap: DurationsSnapshot) -> HistogramMetricFamily:
    cumulative, running = [], 0
    for bound, count in zip(snap.bounds, snap.counts, strict=False):
        running += count
        cumulative.append((repr(bound), running))
    cumulative.append(("+Inf", snap.count))
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], cumulative, snap.total)
    return family


class EngineCollector(Collector):
    """The job service's facts as Prometheus metrics, read from their owners at each scrape:
    the totals and job counts of ``JobService.stats()``, the DHT's routing table, the bandwidth
    groups and the storages' piece-write durations (every unfinished job's own series are
    ``JobSeries``': history entries get none, they would only grow)."""

    def __init__(self, service: JobService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        """Every metric family, read now (on the event loop's thread: see ``Metrics.endpoint``)."""
        p = PREFIX
        service = self.service
        stats = service.stats()
        info = GaugeMetricFamily(f"{p}_build_info", "The engine's version (always 1).", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily(f"{p}_download_bytes_per_second",
                                "Download rate of all jobs together (payload bytes per second).",
                                value=stats.download_rate)
        yield GaugeMetricFamily(f"{p}_upload_bytes_per_second",
                                "Upload rate of all jobs together (payload bytes per second).",
                                value=stats.upload_rate)
        yield GaugeMetricFamily(
            f"{p}_jobs_downloaded_bytes",
            "Bytes received by the jobs the service holds, history included; it falls when finished "
            "jobs leave the history (a gauge: take rates from torrent_engine_job_downloaded_bytes_total).",
            value=stats.downloaded)
        yield GaugeMetricFamily(
            f"{p}_jobs_uploaded_bytes",
            "Bytes sent by the jobs the service holds, history included; it falls when finished "
            "jobs leave the history (a gauge: take rates from torrent_engine_job_uploaded_bytes_total).",
            value=stats.uploaded)
        moved = stats.transfer.session
        yield CounterMetricFamily(f"{p}_downloaded_bytes", "Payload bytes received since the service "
                                  "started, every job's (those that left too).", value=moved.downloaded)
        yield CounterMetricFamily(f"{p}_uploaded_bytes", "Payload bytes sent since the service started, "
                                  "every job's (those that left too).", value=moved.uploaded)
        jobs = GaugeMetricFamily(f"{p}_jobs", "Jobs in each state (queued: the queue's length).",
                                 labels=["state"])
        for state, count in sorted(stats.jobs.items()):
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(f"{p}_dht_nodes", "Nodes in the DHT routing table.", value=stats.dht_nodes)
        yield GaugeMetricFamily(f"{p}_queued_tracker_announces", "Tracker announces and scrapes waiting for "
                                "a slot (active_tracker_limit, max_concurrent_http_announces).",
                                value=stats.queued_announces)
        yield GaugeMetricFamily(f"{p}_request_latency_seconds", "Time a piece a peer asked for takes to be "
                                "read from disk, each read weighing 5 % (libtorrent's disk.request_latency).",
                                value=stats.request_latency / 1e6)
        yield GaugeMetricFamily(f"{p}_asyncio_tasks", "Tasks alive on the event loop (asyncio.all_tasks).",
                                value=_tasks_alive())
        yield GaugeMetricFamily(f"{p}_threads", "Threads of the process (threading.active_count: the "
                                "loop's, the worker threads', the storages').",
                                value=threading.active_count())
        allowed = GaugeMetricFamily(
            f"{p}_bandwidth_group_rate_limit_bytes_per_second",
            "What each bandwidth group may move now: its weighted share of the global limit while that "
            "binds, else its own limit (0: none); group \"\" is the jobs of no group.",
            labels=["group", "direction"])
        bandwidth = service.manager.shared.bandwidth
        for direction, limits in (("download", bandwidth.download), ("upload", bandwidth.upload)):
            for name, rate in sorted(limits.rates().items()):
                allowed.add_metric([name, direction], rate)
        yield allowed
        yield _histogram(f"{p}_piece_write_seconds",
                         "Time the storages' writing threads took to write one whole piece.",
                         PIECE_WRITES.snapshot())


# The per-job families: (name as exposed, type, help, the labels beside JOB_LABELS). First those
# read from the job's view alone (their lines kept while the view is the same: ``JobSeries``),
# in the order ``JobSeries._view_lines`` writes them; then those read from its session.
_Family = tuple[str, str, str, tuple[str, ...]]
_VIEW_JOB_FAMILIES: tuple[_Family, ...] = (
    ("job_info", "gauge", "One per unfinished job: its name and state (always 1).", ("name", "state")),
    ("job_downloaded_bytes_total", "counter", "Payload bytes the job received.", ()),
    ("job_uploaded_bytes_total", "counter", "Payload bytes the job sent.", ()),
    ("job_download_bytes_per_second", "gauge", "The job's download rate.", ()),
    ("job_upload_bytes_per_second", "gauge", "The job's upload rate.", ()),
    ("job_peers", "gauge", "Peers connected to the job.", ()),
    ("job_seeds", "gauge", "Connected peers that have every piece.", ()),
    ("job_wanted_bytes", "gauge", "Bytes of the files the job downloads.", ()),
    ("job_verified_bytes", "gauge", "Wanted bytes verified on disk.", ()),
    ("job_queue_position", "gauge", "The job's place in the queue (1 = next to run; 0 = not queued).", ()),
)
_JOB_FAMILIES: tuple[_Family, ...] = (
    *_VIEW_JOB_FAMILIES,
    ("job_pieces", "gauge", "Pieces of the torrent (once its metadata is known).", ()),
    ("job_pieces_verified", "gauge", "Pieces verified on disk.", ()),
    ("job_trackers", "gauge", "The job's trackers by state (idle, updating, working, failing, disabled) "
     "while the job announces.", ("state",)),
    ("job_tracker_errors_total", "counter", "Failed tracker announces since the job last started.", ()),
)
_VIEW_FAMILIES = len(_VIEW_JOB_FAMILIES)
_library_go_float = cast(Callable[[float], str], _untyped_go_float)


def _go_float(value: float) -> str:
    """``value`` as prometheus_client writes it (as Go formats a float64). A whole number below a
    million (Go writes an exponent from there on), most of a job's samples (peers, places, zero
    rates), is written here without the library's float conversion and look for infinities."""
    kind = type(value)
    if kind is int and 0 <= value < 1_000_000:
        return f"{value}.0"
    if kind is float and value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    return _library_go_float(value)
JOB_PAGE = STEP  # jobs read and written out between two looks at the time (``engine.turns``)


def _label(value: str) -> str:
    """A label value escaped as the text exposition format wants it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


class JobSeries:
    """Every unfinished job's series (``_JOB_FAMILIES``) in the text exposition format, written
    here rather than through ``prometheus_client``'s families: at 30 000 jobs those made 330 000
    samples and formatted them in one go, 2–3 s of the event loop at each scrape. Read a page of
    jobs at a time (``JobService.active_pages``) with the loop let run between pages. A job's
    samples read from its view are kept while the service keeps the same view object (it makes a
    new one when the job changes), so a scrape of 10 000 idle seeds formats none of them again."""

    def __init__(self, service: JobService) -> None:
        self.service = service
        # job id -> (the view the lines were made from, its lines: those of the first
        # _VIEW_FAMILIES families), for the jobs the last scrape listed
        self._kept: dict[str, tuple[Job, tuple[str, ...]]] = {}

    def _view_lines(self, job: Job, kept: dict[str, tuple[Job, tuple[str, ...]]]) -> tuple[str, ...]:
        """The samples of ``job``'s view (without the metric's name), those of the last scrape
        while the view is the same; kept in ``kept`` for the next."""
        hit = self._kept.get(job.id)
        if hit is not None and hit[0] is job:
            kept[job.id] = hit
            return hit[1]
        f = _go_float
        ids = f'info_hash="{job.info_hash}",job="{_label(job.id)}"'
        lines = (f'{{{ids},name="{_label(job.name)}",state="{job.state.value}"}} 1.0',
                 f"{{{ids}}} {f(job.downloaded)}", f"{{{ids}}} {f(job.uploaded)}",
                 f"{{{ids}}} {f(job.download_rate)}", f"{{{ids}}} {f(job.upload_rate)}",
                 f"{{{ids}}} {f(job.peers)}", f"{{{ids}}} {f(job.seeds)}",
                 f"{{{ids}}} {f(job.total_size)}", f"{{{ids}}} {f(job.done_size)}",
                 f"{{{ids}}} {f(job.queue_position)}")
        kept[job.id] = (job, lines)
        return lines

    async def text(self) -> list[bytes]:
        """The families, one after the other (a part each), each sample line as ``prometheus_client`` writes
        it (labels sorted by name, values as Go floats), and the total of peers."""
        lines: list[list[str]] = [[] for _ in _JOB_FAMILIES]
        viewed = lines[:_VIEW_FAMILIES]
        pieces, have, trackers, errors = lines[_VIEW_FAMILIES:]
        peers_total = 0
        kept: dict[str, tuple[Job, tuple[str, ...]]] = {}  # (the jobs listed now: no other's lines kept)
        f = _go_float
        manager = self.service.manager
        turns = Turns()
        for page in self.service.active_pages(JOB_PAGE):
            for job in page:
                for family, line in zip(viewed, self._view_lines(job, kept), strict=True):
                    family.append(line)
                peers_total += job.peers
                session = manager.get(job.info_hash)
                if session is None:
                    continue
                ids = f'info_hash="{job.info_hash}",job="{_label(job.id)}"'
                if session.has_metadata:
                    st = session.status()
                    pieces.append(f"{{{ids}}} {f(st.num_pieces)}")
                    have.append(f"{{{ids}}} {f(st.pieces)}")
                coordinator = session.announcer.tracker
                if coordinator is not None:
                    tracker_states = coordinator.status()
                    errors.append(f"{{{ids}}} {f(sum(t.errors for t in tracker_states))}")
                    by_state = Counter(t.state for t in tracker_states)
                    for state in sorted(by_state):
                        trackers.append(f'{{{ids},state="{_label(state)}"}} {f(by_state[state])}')
            await turns.take()  # (the loop's other work between two pages, once the work had its turn)
        self._kept = kept
        out = [f"# HELP {PREFIX}_peers Peers connected, all jobs together.\n# TYPE {PREFIX}_peers gauge\n"
               f"{PREFIX}_peers {f(peers_total)}\n".encode()]
        for (name, kind, doc, _), samples in zip(_JOB_FAMILIES, lines, strict=True):
            full = f"{PREFIX}_{name}"
            out.append(f"# HELP {full} {doc}\n# TYPE {full} {kind}\n".encode())
            between = "\n" + full
            for at in range(0, len(samples), LIST_PAGE):  # (parts of 500 lines: tens of kB each)
                out.append(f"{full}{between.join(samples[at:at + LIST_PAGE])}\n".encode())
                await turns.take()
            samples.clear()
        return out


def _tasks_alive() -> int:
    """The running loop's unfinished tasks (0 when read off the loop)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop
        return 0


class RequestTimer:
    """ASGI middleware: how long each HTTP request took until its answer's status line, by
    method, route (its path template, so a job id makes no series of its own) and status: every
    label has a bounded set of values, whatever clients send."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram,
                 on_request: Callable[[], object] | None = None) -> None:
        self.app = app
        self.histogram = histogram
        self.on_request = on_request  # told as each request begins (the daemon's collector)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, timing it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.on_request is not None:
            self.on_request()
        start = time.perf_counter()
        answered = False

        def observe(status: int) -> None:
            route = getattr(scope.get("route"), "path", None) or NO_ROUTE
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.histogram.labels(method, route, str(status)).observe(time.perf_counter() - start)

        async def timed_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except Exception:
            if not answered:  # an error the server answers with 500 outside this middleware
                observe(500)
            raise


class Metrics:
    """The ``/metrics`` endpoint and what it reports, for one API server: ``tokens`` are the
    bearer tokens it accepts (the API token, and a metrics-only token if one is given)."""

    def __init__(self, service: JobService, *, tokens: Iterable[str]) -> None:
        self._tokens = [t.encode() for t in tokens if t]
        self._lag_max = 0.0
        if not self._tokens:
            raise ValueError("/metrics needs at least one token")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(EngineCollector(service))
        self.jobs = JobSeries(service)
        ProcessCollector(namespace=PREFIX, registry=self.registry)
        self.requests = Histogram(
            f"{PREFIX}_api_request_duration_seconds",
            "Time from an HTTP request's arrival to its answer's status line (route: the path template).",
            ["method", "route", "code"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            f"How late the event loop woke a task that slept {LAG_INTERVAL} s (measured every "
            f"{LAG_INTERVAL} s).", buckets=LAG_BUCKETS, registry=self.registry)
        self.loop_lag_max = Gauge(
            f"{PREFIX}_event_loop_lag_max_seconds",
            "The worst event-loop lag the probe has seen since the daemon started.", registry=self.registry)

    def authorised(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header carries one of the accepted bearer tokens."""
        if authorization[:7].lower() != "bearer ":
            return False
        given = authorization[7:].strip().encode()
        ok = False
        for token in self._tokens:  # (every token compared: no early answer to time)
            ok |= hmac.compare_digest(given, token)
        return bool(given) and ok

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics``: every metric, read now (401 without a right bearer token)."""
        if not self.authorised(request.headers.get("authorization", "")):
            return JSONResponse(
                {"error": "missing or wrong token: send Authorization: Bearer with the API token "
                          "or the --metrics-token"}, status_code=401,
                headers={"cache-control": "no-store",
                         "www-authenticate": 'Bearer realm="torrent-engine metrics"'})
        # On the loop's thread: the collector reads the service, which only that thread may
        # touch; the jobs' series a page at a time, the loop let run between pages.
        jobs = await self.jobs.text()
        return PartsResponse([generate_latest(self.registry), *jobs], media_type=CONTENT_TYPE_LATEST,
                             headers={"cache-control": "no-store"})

    async def watch_loop(self, interval: float = LAG_INTERVAL) -> None:
        """Until cancelled: sleep ``interval`` seconds and count how much later than asked the
        loop woke this task (its lag: callbacks and tasks that held it)."""
        while True:
            due = await sleep_to_beat(interval)  # (woken with the daemon's other timers)
            lag = max(0.0, anyio.current_time() - due)
            self.loop_lag.observe(lag)
            if lag > self._lag_max:
                self._lag_max = lag
                self.loop_lag_max.set(lag)
