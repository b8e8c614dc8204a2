"""The pieces of ``/metrics`` that need no running service: the piece-write histogram, the token
check, the request timer's labels and the jobs' series."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import cast

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from torrent_engine.api import metrics as metrics_module
from torrent_engine.api.metrics import NO_ROUTE, JobSeries, Metrics, RequestTimer
from torrent_engine.engine import turns as turns_module
from torrent_engine.jobs import JobService
from torrent_engine.storage.timing import Durations

pytestmark = pytest.mark.anyio


def test_durations_count_each_observation_in_the_first_bucket_that_holds_it() -> None:
    d = Durations((0.01, 0.1, 1.0))
    for seconds in (0.005, 0.01, 0.05, 0.5, 3.0):
        d.observe(seconds)
    snap = d.snapshot()
    assert snap.counts == (2, 1, 1, 1)  # 0.01 is "at most 0.01"; 3.0 is above every bound
    assert snap.count == 5 and snap.total == pytest.approx(3.565)


def test_durations_lose_nothing_when_threads_observe_at_once() -> None:
    d = Durations((1.0,))

    def observe() -> None:
        for _ in range(5000):
            d.observe(0.5)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert d.snapshot().counts == (20000, 0)


@pytest.mark.parametrize("bounds", [(), (0.0, 1.0), (1.0, 0.5), (0.1, 0.1)])
def test_durations_refuse_bounds_that_are_not_positive_and_increasing(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="increasing"):
        Durations(bounds)


def metrics(*tokens: str) -> Metrics:
    # The collector reads the service only at a scrape: the token check never touches it.
    return Metrics(cast(JobService, object()), tokens=tokens)


def test_the_token_check_takes_either_token_as_a_bearer_and_nothing_else() -> None:
    m = metrics("api-token", "scrape-token")
    assert m.authorised("Bearer api-token") and m.authorised("bearer scrape-token")
    for header in ("", "Bearer", "Bearer ", "Bearer wrong", "Basic api-token", "api-token",
                   "Bearer api-token-and-more", "Bearer api"):
        assert not m.authorised(header), header


def test_an_empty_metrics_token_opens_nothing() -> None:
    m = metrics("api-token", "")
    assert not m.authorised("Bearer ") and m.authorised("Bearer api-token")
    with pytest.raises(ValueError, match="at least one token"):
        metrics("", "")


async def test_the_request_timer_labels_by_route_template_and_bounds_the_method() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "t", ["method", "route", "code"], registry=registry)

    async def job(request: Request) -> Response:
        return PlainTextResponse(request.path_params["job_id"])

    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/jobs/{job_id}", job, methods=["GET"]), Route("/broken", broken)],
                    middleware=[Middleware(RequestTimer, histogram=histogram)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for job_id in ("a", "b", "c"):
            assert (await client.get(f"/jobs/{job_id}")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.request("BREW", "/jobs/a")).status_code == 405
        assert (await client.get("/broken")).status_code == 500

    def count(method: str, route: str, code: str) -> float | None:
        return registry.get_sample_value("t_seconds_count", {"method": method, "route": route, "code": code})

    assert count("GET", "/jobs/{job_id}", "200") == 3  # one series for every job id
    assert count("GET", NO_ROUTE, "404") == 1
    assert count("other", "/jobs/{job_id}", "405") == 1  # a made-up method makes no series
    assert count("GET", "/broken", "500") == 1  # answered outside the middleware: still counted


async def test_the_request_timer_tells_of_each_request_as_it_begins() -> None:
    """(The daemon's collector looks at what requests make from their start: ``Sweeper.stir``.)"""
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "t", ["method", "route", "code"], registry=registry)
    begun: list[int] = []

    async def slow(request: Request) -> Response:
        begun.append(len(begun))  # (told before the endpoint ran)
        return PlainTextResponse("ok")

    told: list[int] = []
    app = Starlette(routes=[Route("/slow", slow)],
                    middleware=[Middleware(RequestTimer, histogram=histogram,
                                           on_request=lambda: told.append(len(begun)))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(3):
            assert (await client.get("/slow")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    assert told == [0, 1, 2, 3]  # (each, the unrouted too, before its endpoint)


class FakeJobs:
    """What ``JobSeries`` reads of a job service: its unfinished jobs a page at a time, and no
    session for any (a dormant seed's or a queued job's series)."""

    def __init__(self, jobs: list[SimpleNamespace]) -> None:
        self.jobs = jobs
        self.manager = SimpleNamespace(get=lambda _info_hash: None)

    def active_pages(self, size: int) -> Iterator[list[SimpleNamespace]]:
        for at in range(0, len(self.jobs), size):
            yield self.jobs[at:at + size]


def fake_job(n: int, name: str) -> SimpleNamespace:
    return SimpleNamespace(id=f"job{n}", info_hash=f"{n:040x}", name=name,
                           state=SimpleNamespace(value="seeding"), downloaded=n * 123_456_789_012,
                           uploaded=n, download_rate=n * 1.5, upload_rate=0.0, peers=n % 3, seeds=0,
                           total_size=262_144 * n, done_size=262_144, queue_position=0)


async def test_the_jobs_series_are_written_as_prometheus_client_writes_them_with_the_loop_run_between_pages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At 30 000 jobs ``prometheus_client`` formatted 330 000 samples in one go: 2-3 s of the event
    loop at each scrape. The series are written here, a page of jobs at a time with the loop let
    run between pages, byte for byte what ``prometheus_client`` writes for the same values."""
    monkeypatch.setattr(metrics_module, "JOB_PAGE", 2)
    monkeypatch.setattr(metrics_module, "LIST_PAGE", 2)  # (a family's lines in parts of 2)
    monkeypatch.setattr(turns_module, "TURN", 0.0)  # (a turn at each page)
    jobs = [fake_job(n, name) for n, name in enumerate(["a", 'we"ird \\ name', "two\nlines", "ünï", "e"])]
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await anyio.sleep(0)
            turns += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(count_turns)
        await anyio.sleep(0)
        before = turns
        parts = await JobSeries(cast(JobService, FakeJobs(jobs))).text()
        ours = b"".join(parts).decode()
        assert turns - before >= 3  # (5 jobs in pages of 2, then a turn a part)
        samples = [p for p in parts if not p.startswith(b"#")]  # (a family's lines, in parts of 2)
        assert samples and max(p.count(b"\n") for p in samples) <= 2
        tg.cancel_scope.cancel()

    class Reference:
        def collect(self) -> Iterator[Metric]:
            labels = ["job", "info_hash"]
            total = GaugeMetricFamily("torrent_engine_peers", "Peers connected, all jobs together.",
                                      value=sum(j.peers for j in jobs))
            info = GaugeMetricFamily("torrent_engine_job_info",
                                     "One per unfinished job: its name and state (always 1).",
                                     labels=[*labels, "name", "state"])
            down = CounterMetricFamily("torrent_engine_job_downloaded_bytes",
                                       "Payload bytes the job received.", labels=labels)
            rate = GaugeMetricFamily("torrent_engine_job_download_bytes_per_second",
                                     "The job's download rate.", labels=labels)
            for j in jobs:
                info.add_metric([j.id, j.info_hash, j.name, j.state.value], 1)
                down.add_metric([j.id, j.info_hash], j.downloaded)
                rate.add_metric([j.id, j.info_hash], j.download_rate)
            yield from (total, info, down, rate)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Reference())
    reference = generate_latest(registry).decode()
    for family in reference.split("# HELP ")[1:]:
        assert "# HELP " + family in ours


@pytest.mark.parametrize("values", [
    [0, 1, 7, 999_999, 1_000_000, 1_500_000, 10**15, 10**20, -1, -1_000_000, True, False],
    [0.0, -0.0, 0.5, 1.0, 999_999.0, 1e6, 2.5e7, -3.0, 1e-9, float("inf"), float("-inf"), float("nan")],
    list(range(0, 2_000_000, 7919)) + [n * 1.25 for n in range(0, 2_000_000, 7919)],
])
def test_a_value_is_written_as_prometheus_client_writes_it_whatever_its_kind(values: list[float]) -> None:
    """``_go_float`` writes a whole number below a million and a zero itself (most of a job's
    samples: a scrape of 10 000 jobs spent a quarter of its formatting in the library's call),
    the library the rest: each exactly as the library does."""
    from prometheus_client.utils import floatToGoString

    assert [metrics_module._go_float(v) for v in values] == [floatToGoString(v) for v in values]


async def test_a_scrape_formats_again_only_the_jobs_whose_view_changed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The service keeps a job's view object until the job changes: a scrape of 10 000 idle seeds
    formatted all their samples again each time (90-115 ms of the loop). A job's view samples are
    kept while its view is the same object; a changed view is written anew, a job gone is forgotten."""
    jobs = [fake_job(n, f"job {n}") for n in range(4)]
    service = FakeJobs(jobs)
    series = JobSeries(cast(JobService, service))
    formatted: list[float] = []
    real = metrics_module._go_float

    def counting(value: float) -> str:
        formatted.append(value)
        return real(value)

    monkeypatch.setattr(metrics_module, "_go_float", counting)
    first = b"".join(await series.text()).decode()
    assert len(formatted) > 4 * 9
    formatted.clear()
    again = b"".join(await series.text()).decode()
    assert again == first
    assert len(formatted) <= 1  # (the peers' total alone)

    changed = fake_job(2, "job 2")
    changed.downloaded = 777_777  # a new view object, as the service makes when the job changes
    jobs[2] = changed
    del jobs[0]
    formatted.clear()
    third = b"".join(await series.text()).decode()
    assert f'job_downloaded_bytes_total{{info_hash="{2:040x}",job="job2"}} 777777.0' in third
    assert f'job="job2"}} {real(2 * 123_456_789_012)}' in first
    assert f'job="job2"}} {real(2 * 123_456_789_012)}' not in third and 'job="job0"' not in third
    assert 9 <= len(formatted) <= 10  # (the changed job's samples and the peers' total)
    assert set(series._kept) == {"job1", "job2", "job3"}
