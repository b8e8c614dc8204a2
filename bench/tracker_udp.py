"""UDP tracker announces of many torrents at once against a real opentracker on loopback: each
torrent's client with connection ids of its own (as every torrent had them before
``SharedResources.udp_ids``; the reference) against clients sharing one ``ConnectionIds``
(BEP 15's connect once for all of them), in the same run, alternated. Each round: ``N``
torrents' clients announce ``started`` at once (``--at-once`` in flight, as the engine's
``active_tracker_limit``); the tracker's datagrams received are read from the client side as
connects and announces sent (loopback loses none: no resend), with the round's wall time and
this process's CPU an announce.

    python bench/tracker_udp.py [N] [--rounds 3] [--at-once 10] [--profile]

``--profile``: after the rounds, one more round with the ids shared under ``cProfile``, and the
share of its CPU that the socket each announce opens takes (``_Socket.connect`` and closing it).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.interop._opentracker import opentracker  # noqa: E402
from torrent_engine.engine.runtime import run  # noqa: E402
from torrent_engine.net.tracker.messages import AnnounceRequest  # noqa: E402
from torrent_engine.net.tracker.udp import ConnectionIds, UdpTrackerClient, _Socket  # noqa: E402


async def one_round(
    url: str, hashes: list[bytes], ids: ConnectionIds | None, at_once: int
) -> dict[str, float]:
    """Every torrent announces once; ``ids`` None: each its own."""
    slots = anyio.CapacityLimiter(at_once)
    connects: list[int] = []
    failures: list[str] = []

    async def announce(n: int, info_hash: bytes) -> None:
        client = UdpTrackerClient(ids=ids)
        request = AnnounceRequest(info_hash=info_hash, peer_id=b"-TE0100-" + b"%012d" % n,
                                  port=7000 + n % 1000, left=1, event="started")
        async with slots:
            try:
                await client.announce(url, request, timeout=30)
            except Exception as exc:  # (counted, not raised: a round is measured whole)
                failures.append(str(exc))
        if ids is None:
            connects.append(client.connects_sent)

    before = ids.connects_sent if ids is not None else 0
    cpu, wall = time.process_time(), time.perf_counter()
    async with anyio.create_task_group() as tg:
        for n, info_hash in enumerate(hashes):
            tg.start_soon(announce, n, info_hash)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sent = sum(connects) if ids is None else ids.connects_sent - before
    return {"connects": sent, "failed": len(failures), "wall_ms": wall * 1000,
            "cpu_us_an_announce": cpu / len(hashes) * 1e6}


def socket_share(url: str, hashes: list[bytes], at_once: int) -> str:
    """A round with the ids shared under cProfile: the socket's part of its CPU."""
    profile = cProfile.Profile()

    async def profiled() -> None:
        profile.enable()
        await one_round(url, hashes, ConnectionIds(), at_once)
        profile.disable()

    run(profiled)
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = {_Socket.connect.__func__.__code__.co_firstlineno, _Socket.__aexit__.__code__.co_firstlineno}
    socket_time = sum(row[3] for (path, line, _), row in stats.stats.items()  # type: ignore[attr-defined]
                      if path.endswith("tracker/udp.py") and line in lines)
    return (f"  the socket an announce opens (_Socket.connect, its close): {socket_time / total:.1%} of a "
            f"profiled round's CPU ({total:.2f} s for {len(hashes)} announces)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", type=int, nargs="?", default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--at-once", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    hashes = [n.to_bytes(20, "big") for n in range(1, args.n + 1)]
    with tempfile.TemporaryDirectory() as folder, opentracker(Path(folder), hashes) as tracker:
        results: dict[str, list[dict[str, float]]] = {"own": [], "shared": []}

        async def rounds() -> None:
            for _ in range(args.rounds):
                for kind in ("own", "shared"):  # (a fresh ConnectionIds: as a minute after the last)
                    ids = ConnectionIds() if kind == "shared" else None
                    results[kind].append(await one_round(tracker.udp_url, hashes, ids, args.at_once))

        run(rounds)
        share = socket_share(tracker.udp_url, hashes, args.at_once) if args.profile else ""
    print(f"{args.n} torrents announcing to opentracker over UDP, {args.at_once} at once, "
          f"{args.rounds} rounds alternated (medians)")
    for kind, label in (("own", "a torrent's own ids (reference)"), ("shared", "ids shared")):
        rows = results[kind]
        print(f"  {label:32} connects sent {statistics.median(r['connects'] for r in rows):6.0f};"
              f" datagrams sent {statistics.median(r['connects'] for r in rows) + args.n:6.0f};"
              f" failed {max(r['failed'] for r in rows):.0f};"
              f" round {statistics.median(r['wall_ms'] for r in rows):7.1f} ms;"
              f" CPU an announce {statistics.median(r['cpu_us_an_announce'] for r in rows):6.1f} µs")
    if share:
        print(share)


if __name__ == "__main__":
    main()
