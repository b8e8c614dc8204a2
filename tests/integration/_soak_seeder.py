"""A seeder in its own process for the churn soak (so its sockets, files and threads are not
counted with the manager under test): ``python -m tests.integration._soak_seeder KIND PORT
DIR...`` seeds ``DIR/*.torrent`` from each DIR (``ours`` or ``libtorrent``) on 127.0.0.1:PORT,
prints ``ready`` once every torrent seeds, and runs until its stdin closes."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import anyio


def _stdin_closed() -> threading.Event:
    done = threading.Event()

    def watch() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done


def seed_libtorrent(port: int, dirs: list[Path]) -> None:
    import libtorrent as lt

    ses = lt.session({
        "listen_interfaces": f"127.0.0.1:{port}", "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
    })
    handles = []
    for d in dirs:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(str(next(d.glob("*.torrent"))))
        params.save_path = str(d)
        handles.append(ses.add_torrent(params))
    while not all(h.status().is_seeding for h in handles):
        time.sleep(0.05)
    print("ready", flush=True)
    _stdin_closed().wait()


async def seed_ours(port: int, dirs: list[Path]) -> None:
    from torrent_engine.config import Config
    from torrent_engine.engine.manager import TorrentManager

    cfg = Config(listen_host="127.0.0.1", listen_port=port, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    async with TorrentManager(cfg) as manager:
        for d in dirs:
            session = await manager.add(str(next(d.glob("*.torrent"))), d)
            await session.wait_ready()
        print("ready", flush=True)
        closed = _stdin_closed()
        while not closed.is_set():
            await anyio.sleep(0.2)


if __name__ == "__main__":
    kind, port_text, *folders = sys.argv[1:]
    paths = [Path(f) for f in folders]
    if kind == "libtorrent":
        seed_libtorrent(int(port_text), paths)
    else:
        anyio.run(seed_ours, int(port_text), paths)
