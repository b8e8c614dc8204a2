"""BEP 55 hole punching between three of our sessions on loopback.

B (a seeder) listens on 127.0.0.2 only and reaches the relay R over TCP from 127.0.0.1, so R's
peer exchange hands B out as 127.0.0.1:<B's port>, where nothing answers: A (a leecher) cannot
dial B directly, as when B sits behind a NAT or firewall. Through R, A asks for a rendezvous; R
sends ``connect`` to both; B dials A over uTP and A downloads from B.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine.session import Session
from torrent_engine.session.holepunch import Holepunch

from .helpers import keep_peers, loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio


async def _swarm(tmp_path: Path, *, wait_for_b: bool) -> tuple[bool, int, int, int]:
    """Run R, B and A; return (A complete, bytes A got from B, R's relays, B's punches)."""
    torrent = make_torrent(make_payload(tmp_path / "b", [("one.bin", 2_000_000)]), piece_length=16384)
    # R: the relay, TCP only (so every link to it comes from 127.0.0.1), downloading slowly so
    # that it stays a leecher (two seeds would part) and A's data comes from B
    relay_cfg = loopback_config(transport="tcp", download_rate_limit=16384)
    target_cfg = loopback_config(listen_host="127.0.0.2", max_peers_per_torrent=1)  # dials only R
    async with Session(torrent, tmp_path / "r", config=relay_cfg) as relay:
        await relay.wait_ready()
        r_peer = [("127.0.0.1", relay.listen_port)]
        async with Session(torrent, tmp_path / "b", config=target_cfg, peers=r_peer) as target:
            with anyio.fail_after(30):
                while not any(p.listen_port == target.listen_port for p in relay.peers):
                    await anyio.sleep(0.05)
            async with Session(torrent, tmp_path / "a", config=loopback_config(), peers=r_peer) as leecher:
                met = keep_peers(leecher)  # (once A completes it closes B, a seed, at once)
                with anyio.move_on_after(30 if wait_for_b else 6):
                    await leecher.wait_completed()
                complete = leecher.status().progress == 1.0
                from_b = sum(p.downloaded for p in met if p.host == "127.0.0.2")
                via_utp = all(p.transport == "utp" for p in met if p.host == "127.0.0.2")
                assert via_utp
                if complete:
                    assert same_files(torrent, tmp_path / "b", tmp_path / "a") == []
                return complete, from_b, relay.holepunch.relayed, target.holepunch.punched


async def test_a_peer_reachable_only_through_a_relay_is_reached_by_hole_punching(tmp_path: Path) -> None:
    complete, from_b, relayed, punched = await _swarm(tmp_path, wait_for_b=True)
    assert complete and relayed == 1 and punched == 1
    assert from_b > 1_000_000  # most of it: R holds little


async def test_without_the_rendezvous_a_never_reaches_b(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The set-up is honest: with no rendezvous asked for, A's direct dials of B all fail."""

    async def no_rendezvous(self: Holepunch, key: tuple[str, int]) -> None:
        pass

    monkeypatch.setattr(Holepunch, "dial_failed", no_rendezvous)
    complete, from_b, relayed, punched = await _swarm(tmp_path, wait_for_b=False)
    assert not complete and from_b == 0 and relayed == 0 and punched == 0
