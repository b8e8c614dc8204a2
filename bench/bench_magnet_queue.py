"""A magnet job from its add until it downloads, with the job queue on and a slot free, against
the same with the queue off (the same-run reference).

With queueing on, a job's session starts paused and the queue resumes it; a magnet's session then
fetches the metadata, checks the data and (held for the queue's word after that check) is resumed
by the queue's round that the check's end sets off. That round must come at once, not with the
service's 1 s tick: this times ``add()`` until the job's state is ``downloading`` (its
``job.state`` event), each round with a fresh service and a fresh magnet of the one seeder's
torrent (a loopback ``Session`` that serves the metadata and the data, rate-limited so the job
stays downloading), alternating queue on and off.

Run: PYTHONPATH=. python bench/bench_magnet_queue.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from torrent_engine.config import Config
from torrent_engine.events import Event
from torrent_engine.jobs import JobService, JobState, JobStateChanged
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent


def config(**kw: object) -> Config:
    return dataclasses.replace(Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False,
                                      port_mapping=False, lsd_enabled=False, tracker_enabled=False),
                               **kw)  # type: ignore[arg-type]


async def add_to_downloading(root: Path, magnet: str, slots: int) -> float:
    """Milliseconds from ``add()`` until the job downloads, with ``slots`` downloads at once (0:
    no queue)."""
    downloading = anyio.Event()

    def seen(event: Event) -> None:
        if isinstance(event, JobStateChanged) and event.new is JobState.DOWNLOADING:
            downloading.set()

    async with JobService(config(seed=False, max_active_downloads=slots), download_root=root / "dl",
                          state_dir=root / "state") as jobs:
        jobs.events.subscribe("job.state", seen)
        t0 = time.perf_counter()
        await jobs.add(magnet)
        with anyio.fail_after(30):
            await downloading.wait()
        return (time.perf_counter() - t0) * 1e3


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        payload = root / "seed" / "payload"
        payload.mkdir(parents=True)
        (payload / "data.bin").write_bytes(random.Random(1).randbytes(4 * 1024 * 1024))
        torrent = create_torrent(payload, piece_length=64 * 1024, version="v1")
        async with Session(torrent, root / "seed", config=config(upload_rate_limit=200_000)) as seed:
            await seed.wait_ready()
            magnet = f"magnet:?xt=urn:btih:{torrent.info_hash.hex()}&x.pe=127.0.0.1:{seed.listen_port}"
            queued: list[float] = []
            unqueued: list[float] = []
            for n in range(rounds):
                for slots, out in ((3, queued), (0, unqueued)):
                    out.append(await add_to_downloading(root / f"r{n}-{slots}", magnet, slots))
    ratios = [q / u for q, u in zip(queued, unqueued, strict=True)]
    print(f"add -> downloading of a magnet, {rounds} rounds: queue on (3 slots, one free) median "
          f"{statistics.median(queued):.1f} ms (max {max(queued):.1f}); queue off (reference) median "
          f"{statistics.median(unqueued):.1f} ms (max {max(unqueued):.1f}); on / off median "
          f"{statistics.median(ratios):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    anyio.run(main, parser.parse_args().rounds)
