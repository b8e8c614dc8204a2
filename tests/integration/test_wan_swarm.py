"""A short WAN swarm (bench/wan_swarm.py's, small): our downloader fetches a torrent from four
seeders, two libtorrent and two ours, each behind its own emulated link (tests/linkemu) with
delay, a cap, a 1 500-byte path MTU, and one link lossy and reachable over uTP only. It checks
completion and integrity through the links, not speed."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.linkemu.model import Duplex, LinkSpec
from tests.linkemu.relay import Emulator, LinkPlan
from torrent_engine.net.utp import socket as utp_socket
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = [pytest.mark.anyio, pytest.mark.interop, pytest.mark.slow]

LINKS = [  # (seeder, rate bytes/s, one-way delay s, loss)
    ("libtorrent", 2e6, 0.02, 0.0),
    ("ours", 1e6, 0.06, 0.0),
    ("libtorrent", 0.5e6, 0.1, 0.0),
    ("ours", 1.5e6, 0.04, 0.02),  # lossy: the seeder speaks uTP only
]


def lt_seeder(lt: Any, torrent_file: Path, save_path: Path) -> tuple[Any, Any]:
    ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False, "alert_mask": 0,
                      "allow_multiple_connections_per_ip": True,
                      "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.enabled})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent_file))
    params.save_path = str(save_path)
    return ses, ses.add_torrent(params)


async def test_a_download_from_seeders_behind_links_completes_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lt = require_libtorrent()
    # the links stand for Internet paths: our uTP must not offer loopback's 64 KiB datagrams
    monkeypatch.setattr(utp_socket.UtpSocket, "max_datagram", lambda self, host: utp_socket.PACKET_SIZE)
    payload = make_payload(tmp_path / "seed", [("a.bin", 3_000_000), ("b/c.bin", 1_000_000)])
    torrent = make_torrent(payload, piece_length=64 * 1024, version="v1")
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    duplexes = [Duplex.symmetric(LinkSpec(delay=delay, jitter=0.002, rate=rate, loss=loss, mtu=1500,
                                          queue_bytes=max(64 * 1024, int(rate * 0.2))), seed=2 * i)
                for i, (_, rate, delay, loss) in enumerate(LINKS)]
    async with contextlib.AsyncExitStack() as stack:
        ports: list[int] = []
        keep: list[Any] = []
        for kind, _, _, loss in LINKS:
            if kind == "libtorrent":
                ses, handle = lt_seeder(lt, torrent_file, tmp_path / "seed")
                with anyio.fail_after(30):
                    while not handle.status().is_seeding:
                        await anyio.sleep(0.05)
                keep.append(ses)
                ports.append(ses.listen_port())
            else:
                seeder = await stack.enter_async_context(Session(
                    torrent, tmp_path / "seed", config=loopback_config(transport="utp" if loss else "any")))
                await seeder.wait_ready()
                ports.append(seeder.listen_port)
        plans = [LinkPlan(("127.0.0.1", port), duplex, tcp=not loss, host="127.0.0.2",
                          source_host="127.0.0.3")
                 for port, duplex, (_, _, _, loss) in zip(ports, duplexes, LINKS, strict=True)]
        with Emulator(plans) as emu:
            peers = [("127.0.0.2", port) for port in emu.ports]
            async with Session(torrent, tmp_path / "leech", config=loopback_config(transport="any"),
                               peers=peers) as leecher:
                with anyio.fail_after(120):
                    await leecher.wait_completed()
            udp_carried = emu.links[3].udp.stats.udp_bytes_up if emu.links[3].udp else 0
        del keep
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    carried = sum(d.up.sent_bytes for d in duplexes)
    assert carried >= torrent.payload_size  # every byte came through the links
    assert all(d.up.dropped_mtu == 0 for d in duplexes)  # uTP kept to the path MTU
    assert udp_carried > 0  # the lossy link's seeder delivered over uTP
