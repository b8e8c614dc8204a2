"""The pieces of ``/metrics`` that need no running service: the piece-write histogram, the token
check and the request timer's labels."""

from __future__ import annotations

import threading
from typing import cast

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from torrent_engine.api.metrics import NO_ROUTE, Metrics, RequestTimer
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
