"""The trackers' scrapes' pacing (``jobs/scrapes.py``): what it keeps stays bounded."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from torrent_engine.jobs.lifecycle import JobLifecycle
from torrent_engine.jobs.scrapes import PACING_KEPT, TrackerScrapes
from torrent_engine.jobs.store import JobRecord


def test_the_pacing_forgets_the_jobs_whose_last_scrape_paces_nothing_any_more() -> None:
    """Every job asked for kept its last scrape's time, removed jobs' too: 30 000 torrents looked
    at once each kept 30 000 entries for the daemon's life."""
    started: list[Any] = []
    run = SimpleNamespace(
        tg=SimpleNamespace(start_soon=lambda *args: started.append(args)),
        session_of=lambda rec: None, seeds={f"job{n}" for n in range(3 * PACING_KEPT)},
        manager=SimpleNamespace(config=SimpleNamespace(tracker_enabled=True)),
        snapshot=lambda rec: SimpleNamespace(trackers=[SimpleNamespace(url="http://127.0.0.1:1/announce")]))
    now = [0.0]
    scrapes = TrackerScrapes(cast(JobLifecycle, run), interval=900.0, in_flight=10**6, clock=lambda: now[0])

    def ask(n: int) -> bool:
        return scrapes.ask(cast(JobRecord, SimpleNamespace(id=f"job{n}", state="seeding")))

    for n in range(2 * PACING_KEPT):
        assert ask(n)
    assert not ask(0)  # (paced: asked again within the interval)
    now[0] = 901.0
    assert ask(2 * PACING_KEPT)
    assert list(scrapes._last) == [f"job{2 * PACING_KEPT}"]  # (the others' times pace nothing now)
