"""What a tracker's announce says of it in a job's view: its answer, and when it is announced to
next, in epoch seconds from the moment the news was heard."""

from __future__ import annotations

from torrent_engine.events import TrackerFailed, TrackerSuccess
from torrent_engine.jobs.snapshot import tracker_heard

URL = "http://127.0.0.1:9/announce"


def test_a_success_says_its_next_announce_and_its_min_interval() -> None:
    t = tracker_heard(TrackerSuccess(url=URL, peers=3, seeders=1, leechers=2, interval=1800,
                                     min_interval=600, next_in=1800.0), 1000.0)
    assert (t.status, t.peers, t.seeds, t.leechers) == ("working", 3, 1, 2)
    assert (t.announced_at, t.next_announce_at, t.min_announce_at) == (1000.0, 2800.0, 1600.0)
    t = tracker_heard(TrackerSuccess(url=URL, interval=1800, next_in=0.0), 1000.0)  # (a completion next)
    assert (t.next_announce_at, t.min_announce_at) == (1000.0, None)


def test_a_failure_says_its_retry_or_none_when_never_again() -> None:
    t = tracker_heard(TrackerFailed(url=URL, error="busy", retry_in=300.0, kind="refused"), 1000.0)
    assert (t.status, t.message, t.announced_at, t.next_announce_at) == ("failed", "busy", 1000.0, 1300.0)
    assert t.failure == "refused"
    t = tracker_heard(TrackerFailed(url=URL, error="not a tracker", retry_in=None), 1000.0)
    assert (t.next_announce_at, t.min_announce_at) == (None, None)
