"""Two of our sessions and a libtorrent session find each other through a real opentracker
alone (no peers given, no DHT, no LSD) and all complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from tests.interop._opentracker import opentracker
from tests.interop.test_libtorrent_transfer import flush_files
from torrent_engine import events as ev
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.session.state_table import State

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.anyio]


def _lt_session(lt: Any) -> Any:
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "ssrf_mitigation": False,
            "alert_mask": 0,
        }
    )


async def test_our_two_sessions_and_libtorrent_meet_through_opentracker(tmp_path: Path) -> None:
    lt = require_libtorrent()
    payload = make_payload(tmp_path / "seed")
    bare = make_torrent(payload, version="v1")
    with opentracker(tmp_path / "opentracker", [bare.info_hash]) as tracker:
        tiers = [[tracker.http_url], [tracker.udp_url]]
        torrent = Torrent.from_info_bytes(bare.info_bytes, trackers=tiers)
        cfg = loopback_config(tracker_enabled=True)
        lt_session = _lt_session(lt)
        (tmp_path / "lt").mkdir()
        with anyio.fail_after(120):
            bus = ev.EventBus()
            announced = anyio.Event()
            successes: list[ev.Event] = []
            bus.subscribe("tracker.success", lambda e: (successes.append(e), announced.set()))
            async with Session(torrent, tmp_path / "seed", config=cfg, events=bus) as seeder:
                # The others start only once the seeder is on the tracker, since the seeder's
                # next regular announce is half an hour away.
                await announced.wait()
                # (every tier is announced to, each tier on its own: opentracker answers over HTTP
                # and over UDP, in whichever order)
                while len({e.url for e in successes if isinstance(e, ev.TrackerSuccess)}) < 2:
                    await anyio.sleep(0.01)
                assert {e.url for e in successes} == {tracker.http_url, tracker.udp_url}
                await seeder.wait_ready()
                assert seeder.state is State.SEEDING
                async with Session(torrent, tmp_path / "leech", config=cfg) as leecher:
                    atp = lt.add_torrent_params()
                    atp.ti = lt.torrent_info(torrent.to_bytes())
                    atp.save_path = str(tmp_path / "lt")
                    handle = lt_session.add_torrent(atp)
                    try:
                        await leecher.wait_completed()
                        while not handle.status().is_seeding:
                            await anyio.sleep(0.1)
                        flush_files(lt, lt_session)  # (its last blocks may still be queued for its disk)
                        lt_status = handle.status()
                    finally:
                        lt_session.remove_torrent(handle)
                    assert leecher.state is State.SEEDING
                assert seeder.uploaded > 0
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert same_files(torrent, tmp_path / "seed", tmp_path / "lt") == []
    assert lt_status.total_wanted_done == torrent.payload_size
