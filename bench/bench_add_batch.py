"""Adding torrents in batches to a ``JobService`` in this process: what one ``add_many`` of
``--batch`` torrents costs, without HTTP in front of it.

    python bench/bench_add_batch.py [--torrents 400] [--batch 25] [--seed-mode] [--no-data] [--settled]
                                    [--list-waiting K] [--profile FILE]

N small single-file torrents (256 KiB, 32 KiB pieces, data on disk: ``bench_seedbox``'s) are
added ``--batch`` at a time to a fresh service (state folder in a temporary directory, DHT, LSD,
port mapping and trackers off, peers on loopback only); each call's wall time and the process's
CPU time over it are measured. The first two batches are left out of the figures (imports,
the first worker threads). ``--seed-mode`` adds them as libtorrent's seed mode does (nothing
hashed at the add). ``--no-data``: they are added to an empty folder (new downloads: each
starts its session, finds nothing and waits for a peer). ``--settled``: once all are added, wait
(at most 60 s) until none is queued or checking, and report the process's CPU from the first add
until then, a torrent: what an add costs with all it sets off (the check, the session's start,
the service's rounds). ``--list-waiting K``: the checks held back (the first one's hashing
waits, as a large torrent's would, with one check at a time), every job listed ``K`` times
(``JobService.list``, what each API list reads) while all wait for their check, and the median
of those lists printed. ``--profile FILE`` writes a cProfile of the measured batches. ``--split``
also reports the wall time spent keeping the torrents' metainfo (``save_torrents``, a
worker thread) and the job records (``JobStore.write_many``), a batch, over all batches.
``--spread``: also the median of each fifth of the batches (what a batch costs as the service
fills). ``--collector``: once all are added (the service still holding them), what the daemon's
sweep costs (a collection of everything but what the start froze: cli/collector.py), against a
full collection of everything, the start's objects too, best of three each. ``--census``: once
all are added, the objects the collector tracks below each job record (each field's, the
record's own lists and their lists), on average a record: what a sweep walks for each job's
record.

The reference is the same script run from another tree (``PYTHONPATH=OTHER python
OTHER/bench/bench_add_batch.py``), alternated: both print the median and p95 of a batch.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import dataclasses
import enum
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_seedbox import make_torrents, quantiles  # noqa: E402

from torrent_engine.cli.collector import freeze_start  # noqa: E402
from torrent_engine.config import Config  # noqa: E402
from torrent_engine.engine.manager import TorrentManager  # noqa: E402
from torrent_engine.jobs import AddOptions, JobService, JobState  # noqa: E402
from torrent_engine.jobs.intake import checks  # noqa: E402
from torrent_engine.jobs.store import JobStore  # noqa: E402


def timed(owner: type, name: str, spent: list[float]) -> None:
    """Wrap ``owner.name`` so that each call's wall time is added to ``spent`` (``--split``)."""
    real = getattr(owner, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        t0 = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    setattr(owner, name, wrapper)


def report_collector() -> None:
    """(``--collector``.) A sweep as the daemon makes it (what the start made frozen, since
    ``freeze_start``), then a full collection of everything (as the daemon swept before)."""
    def best_of_three() -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            gc.collect()
            times.append((time.perf_counter() - t0) * 1000)
        return min(times)

    walked, frozen = len(gc.get_objects()), gc.get_freeze_count()
    sweep = best_of_three()
    gc.unfreeze()
    everything = best_of_three()
    print(f"  a sweep walking {walked} tracked objects (the start's {frozen} frozen): {sweep:.1f} ms; "
          f"a full collection walking all {walked + frozen}: {everything:.1f} ms")


def report_census(records: list[object]) -> None:
    """(``--census``.) The tracked objects below each record, by field, on average a record."""
    def below(value: object, seen: set[int]) -> int:
        n = 0
        for ref in gc.get_referents(value):
            if gc.is_tracked(ref) and not isinstance(ref, type) and id(ref) not in seen:
                seen.add(id(ref))
                n += 1 + below(ref, seen)
        return n

    by_field: collections.Counter[str] = collections.Counter()
    for rec in records:
        for f in dataclasses.fields(rec):  # type: ignore[arg-type]
            value = getattr(rec, f.name)
            if gc.is_tracked(value) and not isinstance(value, enum.Enum):  # (an enum is shared)
                by_field[f.name] += 1 + below(value, set())
    n = max(1, len(records))
    shown = ", ".join(f"{name} {count / n:.2f}" for name, count in by_field.most_common())
    print(f"  tracked objects below a job record, a record: {sum(by_field.values()) / n:.2f} ({shown})")


async def report_settled(jobs: JobService, c_first: float, n: int) -> None:
    """(``--settled``.) Wait (at most 60 s) until no job is queued or checking, then the
    process's CPU from the first add, a torrent: what an add costs with all that follows it."""
    waiting = {JobState.QUEUED, JobState.CHECKING}
    t0 = time.perf_counter()
    while any(j.state in waiting for j in jobs.list()) and time.perf_counter() - t0 < 60:
        await asyncio.sleep(0.05)
    left = sum(1 for j in jobs.list() if j.state in waiting)
    states = collections.Counter(j.state.value for j in jobs.list())
    cpu = time.process_time() - c_first
    print(f"  settled {time.perf_counter() - t0:.1f} s after the last add ({left} still waiting; "
          f"{dict(states)}): CPU from the first add {cpu:.2f} s, {cpu / n * 1000:.2f} ms a torrent")


def hold_checks() -> threading.Event:
    """(``--list-waiting``.) Every check of data on disk waits until the event returned is set."""
    release = threading.Event()
    real = checks.check_on_disk

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(120)
        return real(*args, **kwargs)

    checks.check_on_disk = held
    return release


async def report_lists(jobs: JobService, times: int) -> None:
    """(``--list-waiting``.) Every job listed ``times`` times, 0.2 s apart."""
    spent = []
    for _ in range(times):
        t0 = time.perf_counter()
        listed = jobs.list()
        spent.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.2)
    waiting = sum(1 for j in listed if j.state is JobState.CHECKING)
    print(f"  a list of every job ({len(listed)}, {waiting} waiting for their check): median "
          f"{statistics.median(spent):.1f} ms ({', '.join(f'{t:.1f}' for t in spent)})")


async def run(args: argparse.Namespace) -> None:
    metainfo: list[float] = []
    records: list[float] = []
    if args.split:
        timed(TorrentManager, "save_torrents", metainfo)
        timed(JobStore, "write_many", records)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, files = make_torrents(work, args.torrents)
        blobs = [f.read_bytes() for f in files]
        config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                        lsd_enabled=False, tracker_enabled=False, seed=True, state_dir=work / "state")
        walls: list[float] = []
        cpus: list[float] = []
        profile = cProfile.Profile() if args.profile else None
        if args.collector:
            freeze_start()  # (as the daemon does before its jobs)
        save = data
        if args.no_data:  # (a new download's add: nothing of the torrents on disk)
            save = data / "empty"
            save.mkdir()
        if args.list_waiting:
            config = dataclasses.replace(config, active_checking_limit=1)
            release = hold_checks()
        async with JobService(config, download_root=data, state_dir=work / "state") as jobs:
            options = AddOptions(save_path=str(save), seed_mode=args.seed_mode)
            c_first = time.process_time()
            for n, i in enumerate(range(0, len(blobs), args.batch)):
                measured = n >= 2
                if profile is not None and measured:
                    profile.enable()
                t0, c0 = time.perf_counter(), time.process_time()
                results = await jobs.add_many(blobs[i:i + args.batch], options)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                if profile is not None and measured:
                    profile.disable()
                refused = [r for r in results if not isinstance(r, tuple)]
                if refused:
                    raise SystemExit(f"refused: {refused[0]}")
                if measured:
                    walls.append(wall * 1000)
                    cpus.append(cpu * 1000)
            if args.list_waiting:
                await report_lists(jobs, args.list_waiting)
                release.set()
            if args.settled:
                await report_settled(jobs, c_first, len(blobs))
            if args.collector:
                report_collector()
            if args.census:
                gc.collect()
                report_census(list(jobs._run.jobs))  # (the records: what the bench looks into)
        if profile is not None:
            profile.dump_stats(args.profile)
        med, p95 = quantiles(walls)
        print(f"{args.torrents} torrents, {args.batch} a batch{' (seed mode)' if args.seed_mode else ''}: "
              f"a batch {med:.1f} ms median, p95 {p95:.1f} ms; CPU {statistics.median(cpus):.1f} ms "
              f"median (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        if args.spread:  # (a batch's cost as the service fills: the median of each fifth)
            fifth = max(1, len(walls) // 5)
            medians = [statistics.median(walls[at:at + fifth]) for at in range(0, fifth * 5, fifth)]
            shown = ", ".join(f"{m:.1f}" for m in medians)
            print(f"  a batch, median of each fifth of the adds: {shown} ms")
    if args.split:
        batches = -(-args.torrents // args.batch)
        print(f"  a batch's metainfo kept: {sum(metainfo) / batches * 1000:.1f} ms "
              f"({len(metainfo)} calls); its job records written: {sum(records) / batches * 1000:.1f} ms "
              f"({len(records)} calls) (wall time in worker threads, over all batches)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=400)
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--seed-mode", action="store_true")
    p.add_argument("--profile", default="")
    p.add_argument("--split", action="store_true")
    p.add_argument("--collector", action="store_true")
    p.add_argument("--census", action="store_true")
    p.add_argument("--spread", action="store_true")
    p.add_argument("--no-data", action="store_true")
    p.add_argument("--settled", action="store_true")
    p.add_argument("--list-waiting", type=int, default=0)
    args = p.parse_args()
    if args.list_waiting < 0:
        p.error("--list-waiting: how many lists, 0 or more")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
