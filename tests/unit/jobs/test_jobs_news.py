"""The job service hears the engine's news by kind: every kind of event about a torrent has its
typed handler (a new kind of event left out would never wake a job nor change its state)."""

from __future__ import annotations

from torrent_engine import events
from torrent_engine.jobs.news import OTHER_NEWS, SESSION_NEWS, TRACKER_NEWS


def test_every_kind_of_torrent_news_has_a_handler() -> None:
    engine = {cls for name in events.__all__ if isinstance(cls := getattr(events, name), type)
              and issubclass(cls, events.Event) and cls is not events.Event}
    heard = {*SESSION_NEWS, *TRACKER_NEWS, *OTHER_NEWS, events.StatsUpdate, events.SessionMetadataReceived,
             events.SessionFileWanted}
    # (the DHT's news is of no torrent)
    assert heard == engine - {events.DhtBootstrapped}
    assert len(heard) == len(SESSION_NEWS) + len(TRACKER_NEWS) + len(OTHER_NEWS) + 3  # (each once)
