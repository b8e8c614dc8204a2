"""What a live torrent with no peer costs each second: the event loop's work per torrent while
thousands of torrents download, check or wait for their turn with nobody to talk to.

    python bench/bench_live_tick.py [--torrents 1000] [--seconds 20] [--peers] [--service [--magnets]]

``--torrents`` small torrents (``bench_seedbox``'s: one 256 KiB file each) are added to one
``TorrentManager`` in this process, saved into an empty folder, with no peer, tracker, DHT, LSD
or port mapping: each session finds nothing on disk and downloads, waiting for a peer. The
process's CPU time (``time.process_time``: every thread) over ``--seconds`` is measured first
with no torrent (the loop's own timers: the baseline) and then with them all downloading, in the
same run; the figure is (with − without) / N per second, in µs of CPU per live torrent, and the
number of ticks the sessions made meanwhile (a downloading session ticks each second while it
waits; a checking or queued one with no peer does not: ``session/tick.py``).

``--peers``: each torrent has one peer — a second ``TorrentManager`` in this process holds the
same torrents (downloading into another empty folder) and each of ours dials it: both sides
live, connected, neither with a piece the other lacks (keep-alives, the choker's rounds, the
rates). The figure is then per live torrent with a peer, over the 2 N sessions of both managers.

``--service``: the same torrents, with no peer, added through a ``JobService`` (what the daemon
runs: its timers, queue rounds and totals over its jobs, besides the sessions), with its state in
the temporary folder; the figure is per live job. ``--magnets``: added as their magnet links
instead (no peer has their metadata: each job fetches it and waits). ``--service --peers``: each
job has one peer, a ``TorrentManager`` in this process holding the same torrents (downloading into
another empty folder) whose sessions dial the service; the figure is then per live torrent over
the 2 N sessions of both sides, as with ``--peers`` alone (the service's limit of connections over
every job lifted); a job's own cost is twice it less ``--peers``' figure (the other side's
sessions are a manager's).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_seedbox import make_torrents  # noqa: E402

from torrent_engine.config import Config  # noqa: E402


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def cpu_share(seconds: float) -> float:
    """The process's CPU time (every thread) over the next ``seconds``, as a share of a core."""
    import anyio

    c0, t0 = time.process_time(), time.monotonic()
    await anyio.sleep(seconds)
    return (time.process_time() - c0) / (time.monotonic() - t0)


async def run_service(args: argparse.Namespace) -> None:
    """(``--service``.) N downloads through a job service, with no peer or one each (``--peers``):
    the CPU per live job."""
    import anyio

    from torrent_engine import events as ev
    from torrent_engine.engine.manager import TorrentManager
    from torrent_engine.formats.metainfo import Torrent
    from torrent_engine.jobs import AddOptions, JobService

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, files = make_torrents(root / "made", args.torrents)
        sources: list[str | bytes] = [f.read_bytes() for f in files]
        if args.magnets:
            sources = [Torrent.load(f).magnet_uri() for f in files]
        waits = "fetching_metadata" if args.magnets else "downloading"
        (root / "empty").mkdir()
        config = Config(listen_host="127.0.0.1", listen_port=0, tracker_enabled=False, dht_enabled=False,
                        lsd_enabled=False, port_mapping=False, state_dir=root / "state")
        other_config = Config(listen_host="127.0.0.1", tracker_enabled=False, dht_enabled=False,
                              lsd_enabled=False, port_mapping=False, state_dir=None)
        async with JobService(config, download_root=root, state_dir=root / "state") as jobs, \
                contextlib.AsyncExitStack() as stack:
            # (the peers' side, with --peers alone: an idle manager would add to both figures)
            other = await stack.enter_async_context(TorrentManager(other_config)) if args.peers else None
            await anyio.sleep(2)
            base = await cpu_share(args.seconds)
            for at in range(0, len(sources), 25):
                await jobs.add_many(sources[at:at + 25], AddOptions(save_path=str(root / "empty")))
            with anyio.fail_after(300):
                while any(j.state.value != waits for j in jobs.list()):
                    await anyio.sleep(0.2)
            theirs: list[Any] = []
            if other is not None:  # (the other side dials: each job's session takes one incoming peer)
                await jobs.update_settings(max_connections=-1)  # (the service's 500 over every job)
                port = jobs.manager.shared.listen_port
                for f in files:
                    s = await other.add(Torrent.load(f), root / "empty2")
                    s.add_peer("127.0.0.1", port)
                    theirs.append(s)
                with anyio.fail_after(300):
                    while sum(len(s.peers) for s in theirs) < len(files) or \
                            sum(len(s.peers) for s in jobs.manager.sessions) < len(files):
                        await anyio.sleep(0.2)
            await anyio.sleep(3)  # (what the adds set off settles)
            churn: list[object] = []  # (a peer connected meanwhile: the figure would count its dial)
            if other is not None:
                other.events.subscribe(ev.PeerConnected, churn.append)
            print(f"measuring {len(sources)} live jobs for {args.seconds:.0f} s", file=sys.stderr, flush=True)
            live = await cpu_share(args.seconds)
            states = {j.state.value for j in jobs.list()}
            connected = sum(len(s.peers) for s in jobs.manager.sessions)
    if args.peers:
        per = (live - base) / (2 * len(sources)) * 1e6
        print(f"{len(sources)} jobs with one peer each, through a job service ({', '.join(sorted(states))}), "
              f"and their {len(theirs)} peers' sessions: {live * 100:.2f} % of a core against "
              f"{base * 100:.2f} % with none; {per:.1f} µs of CPU per live torrent per second over the "
              f"{2 * len(sources)}; "
              f"peers connected {connected}, connects meanwhile {len(churn)} (load {load_avg()})")
        return
    per = (live - base) / len(sources) * 1e6
    print(f"{len(sources)} jobs with no peer, through a job service ({', '.join(sorted(states))}): "
          f"{live * 100:.2f} % of a core against {base * 100:.2f} % with none; {per:.1f} µs of CPU per live "
          f"job per second (load {load_avg()})")


async def run(args: argparse.Namespace) -> None:
    import anyio

    from torrent_engine import events as ev
    from torrent_engine.engine.manager import TorrentManager
    from torrent_engine.formats.metainfo import Torrent

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, files = make_torrents(root / "made", args.torrents)
        torrents = [Torrent.load(f) for f in files]
        config = Config(listen_host="127.0.0.1", tracker_enabled=False, dht_enabled=False, lsd_enabled=False,
                        port_mapping=False, state_dir=None)
        async with TorrentManager(config) as manager, TorrentManager(config) as other:
            await anyio.sleep(2)
            base = await cpu_share(args.seconds)
            sessions = [await manager.add(t, root / "empty") for t in torrents]
            if args.peers:
                sessions += [await other.add(t, root / "empty2") for t in torrents]
            with anyio.fail_after(300):
                while any(s.status().state != "downloading" for s in sessions):
                    await anyio.sleep(0.2)
            if args.peers:
                port = other.shared.listen_port
                for s in sessions[:len(torrents)]:
                    s.add_peer("127.0.0.1", port)
                with anyio.fail_after(300):
                    while sum(len(s.peers) for s in sessions) < 2 * len(torrents):
                        await anyio.sleep(0.2)
            await anyio.sleep(3)  # (what the adds set off settles)
            ticks0 = sum(s.tick.ticks for s in sessions)
            churn: list[object] = []  # (a peer connected meanwhile: the figure would count its dial)
            manager.events.subscribe(ev.PeerConnected, churn.append)
            other.events.subscribe(ev.PeerConnected, churn.append)
            # (on stderr: the moment a profiler may attach, py-spy record -p PID)
            print(f"measuring {len(sessions)} live torrents for {args.seconds:.0f} s", file=sys.stderr,
                  flush=True)
            live = await cpu_share(args.seconds)
            ticks = sum(s.tick.ticks for s in sessions) - ticks0
            connected = sum(len(s.peers) for s in sessions)
        per = (live - base) / len(sessions) * 1e6
        what = "with one peer each" if args.peers else "with no peer"
        print(f"{len(sessions)} torrents downloading {what}: {live * 100:.2f} % of a core against "
              f"{base * 100:.2f} % with none; {per:.1f} µs of CPU per live torrent per second; "
              f"{ticks / args.seconds:.0f} session ticks a second; peers connected {connected}, connects "
              f"meanwhile {len(churn)} (load {load_avg()})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torrents", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--peers", action="store_true", help="each torrent with one connected peer")
    p.add_argument("--service", action="store_true", help="the torrents as jobs of a job service")
    p.add_argument("--magnets", action="store_true", help="(--service) added as magnet links")
    args = p.parse_args()
    if args.magnets and not args.service:
        p.error("--magnets: with --service")
    if args.magnets and args.peers:
        p.error("--magnets and --peers: one or the other (a peer would hand over the metadata)")
    import anyio

    anyio.run(run_service if args.service else run, args)


if __name__ == "__main__":
    main()
