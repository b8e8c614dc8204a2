"""The storages' worker threads (``storage/lanes.py``): every lane's jobs in order, one at a time,
on a pool's few threads — a thousand torrents downloading started two threads each before."""

from __future__ import annotations

import threading
import time

import pytest

from torrent_engine.storage.lanes import Lane, LanePool, shared_pool_size


def test_many_lanes_share_a_few_threads_each_in_order() -> None:
    pool = LanePool(3, "test lanes")
    lanes = [Lane(f"lane {i}", pool) for i in range(200)]
    ran: dict[int, list[int]] = {i: [] for i in range(200)}
    busy: dict[int, int] = {}
    most = {"threads": 0, "at_once": 0}
    lock = threading.Lock()

    def job(i: int, k: int) -> None:
        with lock:
            busy[i] = busy.get(i, 0) + 1
            most["at_once"] = max(most["at_once"], busy[i])  # (one lane's jobs: never two at once)
            names = [t for t in threading.enumerate() if t.name == "test lanes"]
            most["threads"] = max(most["threads"], len(names))
        time.sleep(0.0001)
        with lock:
            ran[i].append(k)
            busy[i] -= 1

    for k in range(20):
        for i, lane in enumerate(lanes):
            lane.submit(lambda i=i, k=k: job(i, k))
    for lane in lanes:
        lane.stop()
    assert all(ran[i] == list(range(20)) for i in ran)
    assert most["at_once"] == 1 and 1 <= most["threads"] <= 3 and pool.threads <= 3
    assert not any(lane.running() for lane in lanes)


def test_a_lane_of_its_own_ends_its_thread_at_stop_and_a_failing_job_does_not_stop_it() -> None:
    lane = Lane("test own lane")
    done: list[int] = []

    def boom() -> None:
        raise RuntimeError("a bug")

    lane.submit(boom)
    lane.submit(lambda: done.append(1))
    deadline = time.monotonic() + 5
    while not done and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.01)
    assert lane.running()  # (its jobs ran, its thread idles: a stop would join it, off the loop)
    lane.stop()
    assert done == [1] and not lane.running()
    assert not [t for t in threading.enumerate() if t.name == "test own lane"]
    lane.submit(lambda: done.append(2))  # (after a stop: a thread again)
    lane.stop()
    assert done == [1, 2]


def test_a_shared_pools_idle_threads_end_by_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    import torrent_engine.storage.lanes as lanes_module

    monkeypatch.setattr(lanes_module, "LANE_IDLE_EXIT", 0.05)
    pool = LanePool(2, "test idle lanes")
    lane = Lane("x", pool)
    lane.submit(lambda: None)
    lane.stop()
    deadline = time.monotonic() + 5
    while pool.threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.threads == 0
    assert shared_pool_size(2) == 4 and shared_pool_size(None) == 4 and shared_pool_size(16) == 18
