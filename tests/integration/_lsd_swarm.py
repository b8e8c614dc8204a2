"""Swarms that find each other by LSD alone (no tracker, no DHT, no peer given), run by
tests/integration/test_lsd.py and tests/interop/test_lsd_libtorrent.py inside a network
namespace of their own (tests/integration/netns.py): multicast there stays on ``lo``.

``python -m tests.integration._lsd_swarm MODE DIR`` prints one JSON line and exits 0 when the
mode's expectation holds:
- ``ours``: one of our managers seeds, another downloads; both only have LSD.
- ``ours-v6``: the same over the IPv6 group only (needs the namespace's IPv6 veth).
- ``cli``: one of our managers seeds; ``torrent-engine download`` at LSD's default (on; no DHT,
  no tracker, no peer given) downloads.
- ``private``: the same with a private torrent: no announce is sent and nothing is downloaded.
- ``lt-seeds`` / ``lt-leeches``: libtorrent (``enable_lsd``) on the other side.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from tests.integration.helpers import keep_peers, loopback_config, make_payload, make_torrent, same_files
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import create_torrent

FILES = (("a.bin", 300_001), ("sub/b.bin", 70_000))
LIMIT = 60.0


def lsd_config(**kw: Any) -> Any:
    return loopback_config(lsd_enabled=True, **kw)


async def ours(tmp: Path, *, private: bool, ipv6: bool = False) -> dict[str, Any]:
    payload = make_payload(tmp / "seed", FILES)
    if private:
        torrent = create_torrent(payload, piece_length=32 * 1024, version="v1", private=True)
    else:
        torrent = make_torrent(payload)
    started = time.monotonic()
    # IPv6: listening on "::" keeps LSD to the IPv6 group (the namespace's veth carries it)
    kw = {"listen_host": "::"} if ipv6 else {}
    async with TorrentManager(lsd_config(**kw)) as seeds, TorrentManager(lsd_config(**kw)) as leeches:
        seeder = await seeds.add(torrent, save_path=tmp / "seed")
        await seeder.wait_ready()
        leecher = await leeches.add(torrent, save_path=tmp / "copy")
        # (each side's peers kept as they connect: once the leecher completes it closes its seed)
        met = {"leecher": keep_peers(leecher), "seeder": keep_peers(seeder)}
        result: dict[str, Any] = {}
        if private:
            await anyio.sleep(4.0)
            done = leecher.status().progress >= 1.0
        else:
            with anyio.move_on_after(LIMIT):
                await leecher.wait_completed()
            done = leecher.status().progress >= 1.0
        for name, manager in (("seeder", seeds), ("leecher", leeches)):
            lsd = manager.shared.lsd
            assert lsd is not None
            result[name] = {"sent": lsd.announces_sent, "received": lsd.announces_received,
                            "peers_found": lsd.peers_found, "families": lsd.families}
        result["leecher_peers"] = [p.host for p in met["leecher"]]
        result["seeder_peers"] = [p.host for p in met["seeder"]]
        # where each connected peer was heard of: by LSD (the dialing side), or it dialed in
        sources = [list(s.pool.sources(p.key, incoming=p.incoming))
                   for s, name in ((leecher, "leecher"), (seeder, "seeder")) for p in met[name]]
        result["peer_sources"] = sources
        result.update(done=done, seconds=round(time.monotonic() - started, 2),
                      differ=same_files(torrent, tmp / "seed", tmp / "copy") if done else None)
        if private:
            result["ok"] = not done and result["seeder"]["sent"] == 0 and result["leecher"]["sent"] == 0
        else:
            found = result["seeder"]["peers_found"] + result["leecher"]["peers_found"]
            shown = any("lsd" in s for s in sources) and all(set(s) <= {"lsd", "incoming"} and s
                                                             for s in sources)
            result["ok"] = done and not result["differ"] and found > 0 and shown
        return result


async def cli(tmp: Path) -> dict[str, Any]:
    payload = make_payload(tmp / "seed", FILES)
    torrent = make_torrent(payload)
    (tmp / "x.torrent").write_bytes(torrent.to_bytes())
    async with TorrentManager(lsd_config()) as seeds:
        seeder = await seeds.add(torrent, save_path=tmp / "seed")
        await seeder.wait_ready()
        command = [sys.executable, "-m", "torrent_engine", "download", str(tmp / "x.torrent"),
                   "-o", str(tmp / "copy"), "--no-dht", "--no-port-mapping", "--no-trackers",
                   "--no-state", "--listen-host", "127.0.0.1", "--stall-timeout", str(LIMIT), "--json"]
        with anyio.fail_after(LIMIT + 30):
            done = await anyio.run_process(command, check=False)
        lsd = seeds.shared.lsd
        assert lsd is not None
        differ = same_files(torrent, tmp / "seed", tmp / "copy") if done.returncode == 0 else None
        return {"exit": done.returncode, "differ": differ, "seeder_peers_found": lsd.peers_found,
                "stderr": done.stderr.decode(errors="replace")[-2000:],
                "ok": done.returncode == 0 and differ == [] and lsd.peers_found > 0}


def lt_session(lt: Any) -> Any:
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": True, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.all_categories,
    })


async def with_libtorrent(tmp: Path, *, lt_seeds: bool) -> dict[str, Any]:
    import libtorrent as lt

    payload = make_payload(tmp / "seed", FILES)
    torrent: Torrent = make_torrent(payload, version="v1")
    ses = lt_session(lt)
    started = time.monotonic()
    try:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(torrent.to_bytes()))
        params.save_path = str(tmp / ("seed" if lt_seeds else "copy"))
        async with TorrentManager(lsd_config()) as manager:
            handle = ses.add_torrent(params)
            if lt_seeds:
                with anyio.fail_after(LIMIT):
                    while not handle.status().is_seeding:
                        await anyio.sleep(0.05)
                session = await manager.add(torrent, save_path=tmp / "copy")
                with anyio.move_on_after(LIMIT):
                    await session.wait_completed()
                done = session.status().progress >= 1.0
            else:
                session = await manager.add(torrent, save_path=tmp / "seed")
                await session.wait_ready()
                with anyio.move_on_after(LIMIT):
                    while not handle.status().is_seeding:
                        await anyio.sleep(0.05)
                done = handle.status().is_seeding
            lsd = manager.shared.lsd
            assert lsd is not None
            lt_log = [a.message() for a in ses.pop_alerts() if "local service discovery" in a.message()]
            result: dict[str, Any] = {
                "done": done, "seconds": round(time.monotonic() - started, 2),
                "ours": {"sent": lsd.announces_sent, "received": lsd.announces_received,
                         "peers_found": lsd.peers_found},
                "libtorrent": lt_log,
            }
            result["differ"] = same_files(torrent, tmp / "seed", tmp / "copy") if done else None
            result["peer_sources"] = [list(session.pool.sources(p.key, incoming=p.incoming))
                                      for p in session.peers]
            # libtorrent announces when its torrent starts, so the side that starts second is
            # found by the other: libtorrent parses our announce when it seeds, we parse its
            # announce when we seed
            if lt_seeds:
                found = any("received peer from local service discovery" in line for line in lt_log)
            else:
                found = lsd.peers_found > 0
            result["ok"] = bool(done and not result["differ"] and found)
            return result
    finally:
        for h in ses.get_torrents():
            ses.remove_torrent(h)
        del ses


def main() -> int:
    mode, directory = sys.argv[1], Path(sys.argv[2])
    if mode in ("ours", "private", "ours-v6"):
        result = anyio.run(lambda: ours(directory, private=mode == "private", ipv6=mode == "ours-v6"))
    elif mode == "cli":
        result = anyio.run(lambda: cli(directory))
    elif mode in ("lt-seeds", "lt-leeches"):
        result = anyio.run(lambda: with_libtorrent(directory, lt_seeds=mode == "lt-seeds"))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
