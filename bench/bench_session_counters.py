"""What ``JobService.stats()`` pays a live session: the numbers it sums (rates, bytes, peers) read
from the session, against a whole ``Session.status()`` record (what it made before), in the same
run. ``stats()`` runs for every ``sync/maindata`` poll, Transmission ``session-stats``,
``/metrics`` and ``/api/stats`` call and the tick's stats event, over every awake session.
Likewise what ``JobLifecycle.refresh_counters`` reads for each stats update of a job (bytes,
sizes, state, name: ``Session.sizes``), against a status record.

One running ``Session`` over a 1 MiB torrent it seeds (no peer, no tracker, loopback only);
``--calls`` reads each way, ``--rounds`` rounds; prints µs a read each way and the ratio.

Run: python bench/bench_session_counters.py [--calls 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import anyio

from torrent_engine.config import Config
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent


def as_stats_reads(session: Session) -> tuple[float, float, int, int, int]:
    """What ``JobService.stats()`` reads of a session now."""
    rates = session.rates
    return rates.down_rate, rates.up_rate, session.downloaded, session.uploaded, session.peer_count


def through_status(session: Session) -> tuple[float, float, int, int, int]:
    """The same numbers from a whole status record (the reference: what it did before)."""
    st = session.status()
    return st.download_rate, st.upload_rate, st.downloaded, st.uploaded, st.peers


def as_counters_read(session: Session) -> tuple[int, int, tuple[int, int] | None, str, bool, str]:
    """What ``JobLifecycle.refresh_counters`` reads of a session now."""
    return (session.downloaded, session.uploaded, session.sizes(), session.state.value, session.rechecked,
            session.name)


def counters_through_status(session: Session) -> tuple[int, int, tuple[int, int] | None, str, bool, str]:
    """The same from a status record (what it did before)."""
    st = session.status()
    sizes = (st.total_wanted, st.have_bytes) if session.has_metadata else None
    return st.downloaded, st.uploaded, sizes, st.state, session.rechecked, st.name


PAIRS = (("JobService.stats()", through_status, as_stats_reads),
         ("refresh_counters", counters_through_status, as_counters_read))


async def run(calls: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "a").write_bytes(os.urandom(1 << 20))
        torrent = create_torrent(folder / "a", piece_length=1 << 16, version="v1")
        config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, lsd_enabled=False,
                        port_mapping=False, tracker_enabled=False)
        async with Session(torrent, folder, config=config) as session:
            await session.wait_ready()
            for _, before, now in PAIRS:
                assert before(session) == now(session)
            for r in range(1, rounds + 1):
                for what, before, now in PAIRS:
                    times = []
                    for read in (before, now):
                        t0 = time.perf_counter()
                        for _ in range(calls):
                            read(session)
                        times.append((time.perf_counter() - t0) / calls * 1e6)
                    print(f"round {r}, {what}: status() {times[0]:.2f} us; the numbers read "
                          f"{times[1]:.2f} us; ratio {times[0] / times[1]:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    anyio.run(run, args.calls, args.rounds)


if __name__ == "__main__":
    main()
