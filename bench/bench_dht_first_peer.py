"""Time from a session's start to its first connected peer when only the DHT knows the seeder,
in a loopback DHT swarm of our own nodes (UDP on 127.0.0.1, the node code the engine runs).

Reference, in the same run and on the same swarm: the session's former DHT loop, which waited
for the whole get_peers lookup before handing any peer to the dialer (and then ran a second
lookup to announce). Now each answer's peers are dialed at once. A share of the swarm's nodes
(``--silent``) answer every query but get_peers, as stale contacts of the real DHT time out:
the lookup waits for them (2 s, and once more) while the peers are already known.

    python bench/bench_dht_first_peer.py --nodes 40 --silent 0.25 --trials 5
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from torrent_engine.config import Config
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.engine.runtime import run
from torrent_engine.errors import TorrentEngineError
from torrent_engine.events import PeerConnected
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.dht import krpc
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.session.announce import Announcer
from torrent_engine.storage.create import create_torrent

MISS = 30.0  # a lookup that has not found the seeder by then (its next one is 60 s later) missed


class SilentOnGetPeers(DhtNode):
    """A node that answers everything but get_peers (a contact that times out in lookups)."""

    async def _on_query(self, q: krpc.Query, address: tuple[str, int]) -> None:
        if isinstance(q, krpc.GetPeers):
            return
        await super()._on_query(q, address)


async def _whole_lookup_first(self: Announcer) -> None:
    """The reference: the DHT loop as it was (all peers after the whole lookup, then announce)."""
    session: Any = self._s
    shared: Any = session.shared
    dht = shared.dht
    if dht is None:
        return
    try:
        found = await dht.get_peers(session.info_hash)
        session.add_peers(found)
        await dht.announce_peer(session.info_hash, shared.listen_port)
    except TorrentEngineError:
        pass
    await anyio.sleep_forever()


def config(**kw: Any) -> Config:
    return Config(listen_host="127.0.0.1", tracker_enabled=False, enforce_bep42=False, port_mapping=False,
                  lsd_enabled=False,
                  **kw)


async def first_peer(torrent: Torrent, boot: tuple[tuple[str, int], ...], save: Path,
                     swarm: list[DhtNode]) -> float:
    """Seconds from adding the torrent to its first connected peer (a fresh manager each time;
    its node is then forgotten by the swarm, so no trial meets the dead nodes of earlier ones)."""
    async with TorrentManager(config(dht_enabled=True, dht_bootstrap=boot, dht_interval=3600.0)) as manager:
        connected = anyio.Event()
        started = time.perf_counter()
        session = await manager.add(torrent, save)
        session.events.subscribe(PeerConnected, lambda _event: connected.set())
        with anyio.move_on_after(MISS):
            await connected.wait()
        took = time.perf_counter() - started if connected.is_set() else math.inf
        assert manager.shared.dht is not None
        leecher_id = manager.shared.dht.node_id
    for node in swarm:
        node.table.remove(leecher_id)
    return took


async def measure(nodes: int, silent: float, trials: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with anyio.create_task_group() as tg:
            swarm: list[DhtNode] = []
            quiet = set(rng.sample(range(1, nodes), int(silent * (nodes - 1))))
            for i in range(nodes):
                kind = SilentOnGetPeers if i in quiet else DhtNode
                boot = [swarm[j].address for j in rng.sample(range(len(swarm)), min(3, len(swarm)))]
                # every node sees every other at 127.0.0.1: the per-source limits (meant for one
                # host each) are lifted, or the swarm would throttle itself
                node = kind(bind=("127.0.0.1", 0), enforce_bep42=False, bootstrap=boot,
                            rng=random.Random(seed * 1000 + i), rate=1e6, burst=1e6,
                            reply_bytes_rate=1e9, reply_bytes_burst=1e9,
                            reply_bytes_total_rate=1e9, reply_bytes_total_burst=1e9)
                await tg.start(node.run)
                swarm.append(node)
            for node in swarm:
                await node.wait_bootstrapped()
            print(f"swarm: {nodes} nodes on 127.0.0.1, {len(quiet)} of them silent to get_peers")
            announcer = next(n for i, n in enumerate(swarm) if i not in quiet and i)
            names = ("reference: whole lookup first", "as values arrive")
            times: dict[str, list[float]] = {name: [] for name in names}
            current = Announcer._dht_loop
            async with TorrentManager(config(dht_enabled=False)) as seeds:
                for trial in range(trials):
                    # a torrent (so an info-hash, so a place in the swarm) of its own per trial
                    payload = root / f"seed-{trial}"
                    payload.mkdir()
                    (payload / "data.bin").write_bytes(rng.randbytes(256 * 1024))
                    torrent = create_torrent(payload / "data.bin", piece_length=64 * 1024, version="v1")
                    seeder = await seeds.add(torrent, payload)
                    await seeder.wait_ready()
                    await announcer.announce_peer(torrent.info_hash, seeder.listen_port)
                    boot = tuple(swarm[i].address for i in rng.sample(range(nodes), 3))
                    order = names if trial % 2 == 0 else names[::-1]  # neither always goes first
                    for name in order:
                        loop = _whole_lookup_first if name.startswith("reference") else current
                        Announcer._dht_loop = loop  # type: ignore[method-assign]
                        try:
                            took = await first_peer(torrent, boot, root / f"copy-{trial}-{len(name)}", swarm)
                        finally:
                            Announcer._dht_loop = current  # type: ignore[method-assign]
                        times[name].append(took)
                    print(f"  trial {trial}: " + ", ".join(f"{n} {times[n][-1] * 1e3:.1f} ms" for n in names),
                          flush=True)  # (inf: missed)
            for name, values in times.items():
                found = [v for v in values if v != math.inf]
                print(f"{name:32s} median {statistics.median(values) * 1e3:8.1f} ms  "
                      f"(min {min(found) * 1e3:.1f}, max {max(found) * 1e3:.1f} of the {len(found)} found; "
                      f"{len(values) - len(found)} of {len(values)} missed)")
            ref, new = (statistics.median(times[n]) for n in names)
            print(f"ratio (reference / as values arrive): {ref / new:.1f}x")
            tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--silent", type=float, default=0.25, help="share of nodes silent to get_peers")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    run(lambda: measure(args.nodes, args.silent, args.trials, args.seed))


if __name__ == "__main__":
    main()
