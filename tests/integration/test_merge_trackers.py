"""qBittorrent's "merge trackers to existing torrent" (``merge_trackers``), driven by
qbittorrent-api: a torrent added again gives the job there the trackers it lacks, as tiers of
their own after its own, and the web seeds it lacks; never a private torrent's, never while it is
off; a URL no tracker has is passed over."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import qbt_client, running_api
from tests.integration.helpers import make_payload
from torrent_engine.formats.bencode import decode, encode
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio

A, B, C = (f"http://127.0.0.1:9/{n}/announce" for n in "abc")
S1, S2 = "http://127.0.0.1:9/one/", "http://127.0.0.1:9/two/"  # (web seeds)


def drive(url: str, public: list[bytes], private: list[bytes], magnet: str, info_hash: str,
          secret_hash: str) -> tuple[list[str], list[str]]:
    qbittorrentapi = require_module("qbittorrentapi")
    client = qbt_client(url)
    assert client.app_preferences()["merge_trackers"] is False
    client.torrents_add(torrent_files=public[0], is_paused=True)
    client.torrents_add(torrent_files=private[0], is_paused=True)
    with pytest.raises(qbittorrentapi.Conflict409Error):  # (there already; off: nothing merged)
        client.torrents_add(torrent_files=public[1], is_paused=True)
    assert [t.url for t in client.torrents_trackers(info_hash) if t.tier >= 0] == [A]
    client.app_set_preferences({"merge_trackers": True})
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="merge_trackers"):
        client.app_set_preferences({"merge_trackers": "yes"})
    for again in (public[1], private[1]):
        with pytest.raises(qbittorrentapi.Conflict409Error):
            client.torrents_add(torrent_files=again, is_paused=True)
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_add(urls=magnet, is_paused=True)
    return ([f"{t.tier}:{t.url}" for t in client.torrents_trackers(info_hash) if t.tier >= 0]
            + [s.url for s in client.torrents_webseeds(info_hash)],
            [t.url for t in client.torrents_trackers(secret_hash) if t.tier >= 0]
            + [s.url for s in client.torrents_webseeds(secret_hash)])


async def test_a_torrent_added_again_gives_its_trackers_to_the_job_there(tmp_path: Path) -> None:
    root = tmp_path / "downloads"
    payload = make_payload(root, (("a.bin", 40_000),), name="public")
    secret = make_payload(root, (("s.bin", 40_000),), name="secret")
    public = [create_torrent(payload, version="v1", trackers=t, web_seeds=w)
              for t, w in (([[A]], [S1]), ([[A, B]], [S1, S2]))]
    private = [create_torrent(secret, version="v1", trackers=t, web_seeds=w, private=True)
               for t, w in (([[A]], ()), ([[B]], [S2]))]
    info_hash, secret_hash = public[0].info_hash.hex(), private[0].info_hash.hex()
    assert public[1].info_hash.hex() == info_hash and private[1].info_hash.hex() == secret_hash
    magnet = f"magnet:?xt=urn:btih:{info_hash}&tr={C}&tr={A}&ws={S1}"
    again = decode(public[1].to_bytes())  # (as another tool wrote it: a URL no tracker has too)
    assert isinstance(again, dict)
    again[b"announce-list"] = [[A.encode(), B.encode()], [b"udp://"]]
    async with running_api(tmp_path) as api:
        merged, kept = await anyio.to_thread.run_sync(
            drive, api.url, [public[0].to_bytes(), encode(again)], [t.to_bytes() for t in private], magnet,
            info_hash, secret_hash)
        assert api.service.get_settings().merge_trackers
    # its own tier first, then the new ones in their order ("udp://" no tracker's URL), the
    # magnet's tracker it lacked last; its web seed, then the one it lacked
    assert merged == [f"0:{A}", f"1:{B}", f"2:{C}", S1, S2]
    assert kept == [A]  # (private: its trackers are its own, and it has no web seed)
