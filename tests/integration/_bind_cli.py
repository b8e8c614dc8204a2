"""The engine's side of the interface-binding test (tests/integration/test_bind_interface.py),
run in a network namespace with two ways to the far side, ``vpn0`` and ``lan0`` (the preferred
route): a manager bound to ``vpn0`` downloads the first torrent (tracker, DHT, peers), says
"done 0", then on each line "add" on stdin adds the next torrent and says "done N" once it is
complete. At the end (stdin closed) it prints, as JSON, every use of an IPv4/IPv6 socket it
saw (connect, bind, send, listen) with the interface the socket was bound to then.

    python -m tests.integration._bind_cli WORKDIR TORRENT...
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import anyio

SEEN: list[tuple[str, str, str]] = []  # (call, kind, interface bound to)
_Socket = socket.socket


class SpySocket(_Socket):
    """A socket that notes, at each use that sends or listens, where it was bound."""

    def _note(self, call: str) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            device = self.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0").decode()
            kind = "tcp" if self.type == socket.SOCK_STREAM else "udp"
            SEEN.append((call, kind, device))

    def connect(self, *args: Any) -> None:
        self._note("connect")
        super().connect(*args)

    def connect_ex(self, *args: Any) -> int:
        self._note("connect")
        return super().connect_ex(*args)

    def sendto(self, *args: Any) -> int:
        self._note("sendto")
        return super().sendto(*args)

    def sendmsg(self, *args: Any) -> int:
        self._note("sendmsg")
        return super().sendmsg(*args)

    def listen(self, *args: Any) -> None:
        self._note("listen")
        super().listen(*args)


socket.socket = SpySocket  # type: ignore[misc]  # (before the engine is imported)

from torrent_engine import Config, TorrentManager  # noqa: E402
from torrent_engine.formats.metainfo import Torrent  # noqa: E402

FAR_HOST, DHT_PORT = "10.9.0.1", 6882


async def main(workdir: Path, torrents: list[str]) -> None:
    config = Config(bind_interface="vpn0", listen_port=0, dht_enabled=True,
                    dht_bootstrap=((FAR_HOST, DHT_PORT),), lsd_enabled=False, port_mapping=False,
                    state_dir=workdir / "cli-state")
    stdin = anyio.wrap_file(sys.stdin)
    async with TorrentManager(config) as manager:
        for n, path in enumerate(torrents):
            if n:
                if not (await stdin.readline()).strip():
                    break
            session = await manager.add(Torrent.from_bytes(Path(path).read_bytes()), workdir / "dl")
            await session.wait_completed()
            print(f"done {n}", flush=True)
        await stdin.readline()
    print(json.dumps(sorted(set(SEEN))), flush=True)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), sys.argv[2:])
