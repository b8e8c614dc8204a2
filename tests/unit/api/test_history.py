"""The charts' history: average rates between samples, peers, the hour's cap."""

from __future__ import annotations

from collections import deque

import anyio
import pytest

from torrent_engine.api.history import StatsHistory
from torrent_engine.jobs.model import ServiceStats, TransferCounts, TransferStats


def stats(downloaded: int, uploaded: int, *, peers: int = 0, down_rate: float = 0.0,
          up_rate: float = 0.0, held: tuple[int, int] | None = None) -> ServiceStats:
    """The service's totals with this run's bytes as given (the jobs held have ``held``: the
    same unless said)."""
    moved = TransferCounts(downloaded=downloaded, uploaded=uploaded, session_count=1)
    down, up = held if held is not None else (downloaded, uploaded)
    return ServiceStats(download_rate=down_rate, upload_rate=up_rate, downloaded=down, uploaded=up,
                        listen_port=0, dht_nodes=0, jobs={}, peers=peers,
                        transfer=TransferStats(moved, moved))


def test_rates_are_the_bytes_moved_since_the_last_sample_over_the_time_between() -> None:
    h = StatsHistory(interval=10)
    first = h.add(1000.0, stats(0, 0, down_rate=5.0, up_rate=6.0))
    assert (first.download_rate, first.upload_rate) == (5.0, 6.0)  # nothing to average yet
    second = h.add(1010.0, stats(1_000_000, 20_000, peers=3, down_rate=1.0))
    assert (second.download_rate, second.upload_rate, second.peers) == (100_000.0, 2_000.0, 3)


def test_a_job_that_leaves_takes_nothing_from_the_rates() -> None:
    """The jobs' own totals fall when one leaves (the history cleared): the rates are this run's
    bytes, which keep its part (they took the instantaneous rate instead, or were negative)."""
    h = StatsHistory(interval=10)
    h.add(0.0, stats(5_000, 5_000))
    sample = h.add(10.0, stats(6_000, 7_000, down_rate=42.0, held=(1_000, 2_000)))
    assert (sample.download_rate, sample.upload_rate) == (100.0, 200.0)


def test_an_hour_of_samples_is_kept_oldest_first() -> None:
    h = StatsHistory(interval=10, span=3600)
    for i in range(400):
        h.add(float(i * 10), stats(i, i))
    body = h.to_json()
    samples = body["samples"]
    assert isinstance(samples, list) and len(samples) == 360 and body["interval"] == 10
    assert samples[0]["time"] == 400.0 and samples[-1]["time"] == 3990.0


@pytest.mark.anyio
async def test_a_sample_that_fails_is_logged_and_the_sampling_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """The sampler is a task of the API server's task group: a failure of the service's figures
    must not end it, nor with it the server."""
    history = StatsHistory(interval=0.01)
    calls = 0

    def broken() -> ServiceStats:
        nonlocal calls
        calls += 1
        raise RuntimeError("figures unavailable")

    with anyio.move_on_after(0.2):
        await history.sample(broken)
    assert calls >= 2  # (it went on after the first failure)
    assert "rate history could not read" in caplog.text and history.samples == deque()
