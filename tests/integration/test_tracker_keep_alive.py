"""HTTP tracker connections kept open between announces (``Config.tracker_keep_alive``): the
announces of a daemon's torrents — running ones' and dormant seeds' — to one tracker go over one
connection, which the daemon closes when it stops; at 0, a connection each."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import anyio
import pytest

from tests.integration.api_helpers import add_with_trackers, running_api
from tests.unit.httpclient.test_kept_connections import Server, server

pytestmark = pytest.mark.anyio


def announced(s: Server) -> set[str]:
    """The info-hashes the tracker heard of (hex)."""
    hashes = set()
    for target in s.targets:
        for pair in urlsplit(target.decode()).query.split("&"):
            name, _, value = pair.partition("=")
            if name == "info_hash":
                hashes.add(unquote_to_bytes(value).hex())
    return hashes


@pytest.mark.parametrize("keep_alive", [30.0, 0.0], ids=["kept", "off"])
async def test_announces_to_one_tracker_share_a_connection(tmp_path: Path, keep_alive: float) -> None:
    async with server("keep") as tracker:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        config = {"tracker_enabled": True, "tracker_keep_alive": keep_alive}
        async with running_api(tmp_path, config_options=config) as api:
            hashes: set[str] = set()
            for n in range(4):  # (one after another: each announce after the last one's answer)
                info_hash, _ = await add_with_trackers(api, tmp_path / "elsewhere", [[url]],
                                                       seed=n % 2 == 1, n=n)
                hashes.add(info_hash)
                kept = api.service.manager.shared.http_kept
                with anyio.fail_after(20):
                    while announced(tracker) != hashes or (kept is not None and len(kept) != 1):
                        await anyio.sleep(0.02)  # (and the connection given back, when kept)
            assert tracker.requests == 4
            assert tracker.connections == (1 if keep_alive else 4)
            if not keep_alive:  # (each closed by the daemon once its answer is read)
                with anyio.fail_after(10):
                    while not all(tracker.closed):
                        await anyio.sleep(0.02)
            else:
                await anyio.sleep(0.3)
                assert tracker.closed == [False]  # (kept while the daemon runs)
        with anyio.fail_after(10):  # the daemon stopped: its kept connection closed ("stopped" sent on it)
            while not all(tracker.closed):
                await anyio.sleep(0.02)


async def test_a_connection_idle_for_longer_is_closed(tmp_path: Path) -> None:
    async with server("keep") as tracker:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        async with running_api(tmp_path, config_options={"tracker_enabled": True,
                                                         "tracker_keep_alive": 0.3}) as api:
            info_hash, _ = await add_with_trackers(api, tmp_path / "elsewhere", [[url]], seed=True)
            with anyio.fail_after(20):
                while announced(tracker) != {info_hash}:
                    await anyio.sleep(0.02)
                while not tracker.closed[0]:  # (the engine clock's deadline, 0.3 s after it)
                    await anyio.sleep(0.02)
            assert len(api.service.manager.shared.http_kept or ()) == 0


def test_the_setting_is_checked() -> None:
    from torrent_engine.config import Config
    from torrent_engine.errors import ConfigError

    for bad in (-1, 3601, float("nan"), "30"):
        with pytest.raises(ConfigError, match="tracker_keep_alive"):
            Config(tracker_keep_alive=bad)  # type: ignore[arg-type]
