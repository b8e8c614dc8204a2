"""The JSON types of our qBittorrent answers against a real ``qbittorrent-nox`` on 127.0.0.1, field
by field: a strictly typed client (Go, Rust, TypeScript with a schema) decodes a field as an
integer where qBittorrent sends one, and breaks on ``1440.0``.

qBittorrent writes its JSON with Qt, which writes a double that holds a whole number without a
fraction (``ratio`` 0 is ``0``): an integer in its answer may be such a double, so the rule is
one-way: where qBittorrent sends an integer we send an integer; where it sends a fraction we send
a number; strings, booleans, lists and objects are the same kind on both sides."""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from tests.conftest import require_program
from tests.integration.api_helpers import TOKEN, running_api
from tests.interop._programs import program
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.formats.metainfo import Torrent

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

MAGNET = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=from-magnet"
# what is added to both: a paused .torrent with share limits, and a paused magnet
ADD_FIELDS = {"paused": "true", "seedingTimeLimit": "1440", "ratioLimit": "1.5", "upLimit": "5000"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


QBT_CONFIG = """[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={torrent_port}
Session\\Interface=lo
Session\\InterfaceName=lo

[Preferences]
WebUI\\Address=127.0.0.1
WebUI\\Port={webui_port}
WebUI\\LocalHostAuth=false
Connection\\UPnP=false
Connection\\ResolvePeerCountries=false
Downloads\\SavePath={save_path}
"""


T = TypeVar("T")


@contextmanager
def qbittorrent_nox(root: Path) -> Iterator[str]:
    """A ``qbittorrent-nox`` on loopback (no DHT, LSD, PeX, UPnP or GeoIP download; the WebUI
    without a login from 127.0.0.1); yields its base URL."""
    qbittorrent = require_program("qbittorrent-nox")
    config = root / "qBittorrent" / "config"
    config.mkdir(parents=True)
    webui_port = _free_port()
    (config / "qBittorrent.conf").write_text(QBT_CONFIG.format(
        torrent_port=_free_port(), webui_port=webui_port, save_path=root / "downloads"))
    url = f"http://127.0.0.1:{webui_port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/api/v2/app/version", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    with program([qbittorrent, f"--profile={root}"], root / "qbittorrent.log", ready, "qbittorrent-nox"):
        yield url


async def asked_of_both(root: Path, add: dict[str, Any],
                        ask: Callable[[httpx.AsyncClient], Awaitable[T]]) -> tuple[T, T]:
    """What ``ask`` reads of a ``qbittorrent-nox`` (under ``root / "qbt"``) and of our daemon
    (``root / "ours"``), each once ``torrents/add`` took ``add`` (httpx's keywords): theirs, ours."""
    with qbittorrent_nox(root / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            assert (await c.post("/api/v2/torrents/add", **add)).text == "Ok."
            theirs = await ask(c)
    async with running_api(root / "ours") as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            assert (await c.post("/api/v2/torrents/add", **add)).status_code == 200
            ours = await ask(c)
    return theirs, ours


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__


def type_differences(theirs: Any, ours: Any, where: str = "") -> list[str]:
    """Where ``ours`` is not of the JSON kind ``theirs`` is (for the keys both have)."""
    a, b = _kind(theirs), _kind(ours)
    if a == "float" and b == "int" or a == b and a not in ("dict", "list"):
        return []
    if a != b:
        return [f"{where}: qBittorrent {a} {theirs!r}, ours {b} {ours!r}"]
    out: list[str] = []
    if isinstance(theirs, dict):
        for key in theirs.keys() & ours.keys():
            out += type_differences(theirs[key], ours[key], f"{where}.{key}")
    else:
        for i, (x, y) in enumerate(zip(theirs, ours, strict=False)):
            out += type_differences(x, y, f"{where}[{i}]")
    return out


async def _answers(c: httpx.AsyncClient, info_hash: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in (("torrents/info", "/api/v2/torrents/info?sort=name"),
                       ("torrents/properties", f"/api/v2/torrents/properties?hash={info_hash}"),
                       ("app/preferences", "/api/v2/app/preferences"),
                       ("sync/maindata", "/api/v2/sync/maindata"),
                       ("transfer/info", "/api/v2/transfer/info")):
        r = await c.get(path)
        assert r.status_code == 200, (name, r.status_code, r.text)
        out[name] = r.json()
    out["sync/maindata"].pop("rid")
    out["sync/maindata"]["torrents"] = [out["sync/maindata"]["torrents"][info_hash]]
    return out


async def _add_both(c: httpx.AsyncClient, data: bytes, *, counts: bool) -> None:
    """Add the torrent and the magnet; ``counts``: the answer is WebAPI 2.14's (ours), else
    4.5.2's ``Ok.``."""
    r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", data)}, data=ADD_FIELDS)
    assert r.status_code == 200 and (r.json()["success_count"] == 1 if counts else r.text == "Ok."), r.text
    r = await c.post("/api/v2/torrents/add", data={"urls": MAGNET, "paused": "true"})
    assert r.status_code == 200 and (r.json()["success_count"] == 1 if counts else r.text == "Ok."), r.text


async def test_every_field_has_the_type_a_real_qbittorrent_gives_it(tmp_path: Path) -> None:
    t = make_torrent([(("a.bin",), payload(40000, 3)), (("b.bin",), payload(30000, 4))], 16384, name="typed")
    data, info_hash = t.to_bytes(), t.info_hash.hex()
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            await _add_both(c, data, counts=False)
            with anyio.fail_after(30):  # (qbittorrent-nox answers Ok. before the torrent is there)
                while len((await c.get("/api/v2/torrents/info")).json()) < 2:
                    await anyio.sleep(0.1)
            theirs = await _answers(c, info_hash)
    async with running_api(tmp_path / "ours") as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            await _add_both(c, data, counts=True)
            ours = await _answers(c, info_hash)
    differences = [d for name in theirs for d in type_differences(theirs[name], ours[name], name)]
    assert differences == [], "\n".join(differences)
    shared = {name: len(theirs[name].keys() & ours[name].keys()) if isinstance(theirs[name], dict)
              else len(theirs[name][0].keys() & ours[name][0].keys()) for name in theirs}
    assert min(shared.values()) >= 5, shared  # (the comparison compared something)


async def _watched_into(c: httpx.AsyncClient, watch: Path, value: int, torrent: Torrent) -> tuple[str, str]:
    """``scan_dirs`` set to {watch: value} and ``torrent`` dropped into ``watch``: the folder it
    is saved to, and the default save path."""
    r = await c.post("/api/v2/app/setPreferences",
                     data={"json": json.dumps({"scan_dirs": {str(watch): value}})})
    assert r.status_code == 200, r.text
    prefs = (await c.get("/api/v2/app/preferences")).json()
    assert prefs["scan_dirs"] == {str(watch): value}
    (watch / "dropped.torrent").write_bytes(torrent.to_bytes())
    info_hash = torrent.info_hash.hex()
    with anyio.fail_after(60):
        while not (found := (await c.get(f"/api/v2/torrents/info?hashes={info_hash}")).json()):
            await anyio.sleep(0.2)
    return found[0]["save_path"], prefs["save_path"]


async def test_a_watched_folder_saves_where_a_real_qbittorrent_says_its_scan_dirs_value_means(
        tmp_path: Path) -> None:
    one = make_torrent([(("a.bin",), payload(20000, 5))], 16384, name="one")
    two = make_torrent([(("b.bin",), payload(20000, 6))], 16384, name="two")
    seen: dict[str, dict[int, tuple[Path, Path]]] = {}
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        watch = tmp_path / "qbt" / "watch"
        watch.mkdir()
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            saved = {v: await _watched_into(c, watch, v, t) for v, t in ((1, one), (0, two))}
        seen["qbittorrent-nox"] = {v: (Path(s), Path(d)) for v, (s, d) in saved.items()}
        seen["qbittorrent-nox watch"] = {0: (watch, watch)}
    async with running_api(tmp_path / "ours") as api:
        watch = api.download_root / "watch"  # (a save path of ours is inside the download root)
        watch.mkdir()
        saved = {v: await _watched_into(api.client, watch, v, t) for v, t in ((1, one), (0, two))}
        seen["ours"] = {v: (Path(s), Path(d)) for v, (s, d) in saved.items()}
        seen["ours watch"] = {0: (watch, watch)}
    for name in ("qbittorrent-nox", "ours"):
        (one_at, default), (two_at, _) = seen[name][1], seen[name][0]
        assert one_at == default, (name, seen)  # 1: the default save path
        assert two_at == seen[f"{name} watch"][0][0], (name, seen)  # 0: the watched folder itself


async def _priorities(c: httpx.AsyncClient, torrents: list[Torrent]) -> list[tuple[str, int]]:
    """Queueing turned off, then ``torrents`` added paused, one a call: each one's ``priority``."""
    r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps({"queueing_enabled": False})})
    assert r.status_code == 200, r.text
    assert (await c.get("/api/v2/app/preferences")).json()["queueing_enabled"] is False
    for t in torrents:
        r = await c.post("/api/v2/torrents/add", data={"paused": "true"},
                         files={"torrents": (f"{t.name}.torrent", t.to_bytes())})
        assert r.status_code == 200, r.text
    with anyio.fail_after(30):
        while len(info := (await c.get("/api/v2/torrents/info?sort=name")).json()) < len(torrents):
            await anyio.sleep(0.2)
    return [(t["name"], t["priority"]) for t in info]


async def test_priority_is_the_queue_position_with_queueing_off_as_a_real_qbittorrent_gives_it(
        tmp_path: Path) -> None:
    """(Not 0, as docs/compat.md once said: qbittorrent-nox 4.5.2 numbers its unfinished
    torrents whether queueing is on or off.)"""
    torrents = [make_torrent([((f"p{n}.bin",), payload(20000, 20 + n))], 16384, name=f"p{n}")
                for n in range(3)]
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            theirs = await _priorities(c, torrents)
    async with running_api(tmp_path / "ours") as api:
        ours = await _priorities(api.client, torrents)
    assert theirs == [("p0", 1), ("p1", 2), ("p2", 3)]
    assert ours == theirs
