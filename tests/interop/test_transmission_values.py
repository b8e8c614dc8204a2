"""The values a real ``transmission-daemon`` (3.00) gives a torrent added paused, against ours,
field by field over Transmission's RPC: every field both know, but those that say where or when
(the folders, the dates of the add) and the defaults each daemon is configured with (peers).
``seedRatioLimit`` (the session's in its mode: 2.0 while none is set), ``manualAnnounceTime`` (-1
while nothing is announced), ``startDate`` (0 until it starts; ours had been the add's date) and
``downloadLimit``/``uploadLimit`` while off (the session's, 100 kB/s by default; ours 0) differed.
Then the torrent started and stopped in both: ``startDate`` the moment it started, kept once it
stopped, and ``transmission-remote -i``'s "Date started" only once it has. Then limits and queues
set a change at a time, as Transmission's GUIs send them."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import require_program
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload, make_torrent
from tests.integration.test_api_tracker_scrapes import transmission
from tests.interop._programs import program

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

# every torrent-get field Transmission 3.00 knows and both answer alike for a paused torrent
FIELDS = ["activityDate", "bandwidthPriority", "comment", "corruptEver", "creator", "dateCreated",
          "desiredAvailable", "doneDate", "downloadLimit", "downloadLimited", "downloadedEver", "error",
          "errorString", "eta", "etaIdle", "files", "fileStats", "hashString", "haveUnchecked", "haveValid",
          "honorsSessionLimits",
          "isFinished", "isPrivate", "isStalled", "labels", "leftUntilDone", "magnetLink",
          "manualAnnounceTime", "metadataPercentComplete", "name", "peers", "peersConnected",
          "peersFrom", "peersGettingFromUs", "peersSendingToUs", "percentDone", "pieceCount", "pieceSize",
          "pieces", "priorities", "queuePosition", "rateDownload", "rateUpload", "recheckProgress",
          "secondsDownloading", "secondsSeeding", "seedIdleLimit", "seedIdleMode", "seedRatioLimit",
          "seedRatioMode", "sizeWhenDone", "startDate", "status", "totalSize", "trackerStats", "trackers",
          "uploadLimit", "uploadLimited", "uploadRatio", "uploadedEver", "wanted", "webseeds",
          "webseedsSendingToUs"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def transmission_daemon(root: Path) -> Iterator[str]:
    """A ``transmission-daemon`` on loopback (no DHT, LPD, PEX or port forwarding; its RPC without
    a login); yields its RPC URL."""
    daemon = require_program("transmission-daemon")
    config = root / "config"
    config.mkdir(parents=True)
    rpc = _free_port()
    (config / "settings.json").write_text(json.dumps({
        "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
        "port-forwarding-enabled": False, "rpc-port": rpc, "rpc-bind-address": "127.0.0.1",
        "rpc-authentication-required": False, "rpc-whitelist-enabled": False, "peer-port": _free_port(),
        "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
        "download-dir": str(root / "downloads")}))
    url = f"http://127.0.0.1:{rpc}/transmission/rpc"

    def ready() -> bool:
        try:
            httpx.post(url, json={"method": "session-get"}, timeout=2)
            return True
        except httpx.TransportError:
            return False

    with program([daemon, "-f", "-g", str(config)], root / "transmission.log", ready, "transmission-daemon"):
        yield url


def _call(url: str, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    sid = httpx.post(url, json={"method": method}, timeout=10).headers["x-transmission-session-id"]
    answer: dict[str, Any] = httpx.post(url, json={"method": method, "arguments": arguments}, timeout=10,
                                        headers={"X-Transmission-Session-Id": sid}).json()
    assert answer["result"] == "success", answer
    return answer["arguments"]


def _settled(url: str, number: int, fields: list[str]) -> dict[str, Any]:
    """(transmission-daemon checks a torrent's files at its add, paused too.) Its answer once
    the check has ended."""
    deadline = time.monotonic() + 30
    asked = {"ids": [number], "fields": fields}
    while (answer := _call(url, "torrent-get", asked)["torrents"][0])["status"]:
        assert time.monotonic() < deadline, answer["status"]
        time.sleep(0.1)
    return answer


async def test_a_paused_torrent_has_the_values_a_real_transmission_gives_it(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000), ("b.bin", 50_000)]), version="v1")
    add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode(), "paused": True}
    with transmission_daemon(tmp_path / "tr") as url:
        number = _call(url, "torrent-add", add)["torrent-added"]["id"]
        theirs = _settled(url, number, FIELDS)
    async with running_api(tmp_path / "ours") as api:
        number = (await transmission(api, "torrent-add", add))["torrent-added"]["id"]
        ours = (await transmission(api, "torrent-get", {"ids": [number], "fields": FIELDS}))["torrents"][0]
    # (4.0's beginPiece and endPiece of each file: ours, unknown to 3.00)
    ours["files"] = [{k: v for k, v in f.items() if k not in ("beginPiece", "endPiece")}
                     for f in ours["files"]]
    assert theirs.keys() == set(FIELDS)  # (it knows each of them)
    assert (theirs["seedRatioLimit"], theirs["manualAnnounceTime"]) == (2, -1)
    differ = {k: (theirs[k], ours.get(k)) for k in FIELDS if ours.get(k) != theirs[k]}
    assert differ == {}, differ


async def test_a_torrent_seeding_what_was_there_has_the_values_a_real_transmission_gives_it(
        tmp_path: Path) -> None:
    """Its data whole in the download folder at the add: checked, it seeds, with no peer. No
    download completed it (``doneDate`` 0: ours said when it completed); when it started and
    how long it has seeded aside."""
    files = [("a.bin", 70_000), ("b.bin", 50_000)]
    torrent = make_torrent(make_payload(tmp_path / "tr" / "downloads", files), version="v1")
    make_payload(tmp_path / "ours" / "downloads", files)
    add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode()}
    asked = {"fields": FIELDS}
    with transmission_daemon(tmp_path / "tr") as url:
        number = _call(url, "torrent-add", add)["torrent-added"]["id"]
        deadline = time.monotonic() + 30
        while (theirs := _call(url, "torrent-get", {"ids": [number], **asked})["torrents"][0])["status"] != 6:
            assert time.monotonic() < deadline, theirs["status"]
            time.sleep(0.1)
    async with running_api(tmp_path / "ours") as api:
        number = (await transmission(api, "torrent-add", add))["torrent-added"]["id"]
        with anyio.fail_after(30):
            while (ours := (await transmission(api, "torrent-get", {"ids": [number], **asked}))[
                    "torrents"][0])["status"] != 6:
                await anyio.sleep(0.1)
    ours["files"] = [{k: v for k, v in f.items() if k not in ("beginPiece", "endPiece")}
                     for f in ours["files"]]
    assert theirs["doneDate"] == 0 and theirs["percentDone"] == 1
    aside = ("startDate", "secondsSeeding")
    differ = {k: (theirs[k], ours.get(k)) for k in FIELDS if ours.get(k) != theirs[k] and k not in aside}
    assert differ == {}, differ


def _remote_started(url: str) -> bool:
    """Whether ``transmission-remote -i`` of torrent 1 at ``url`` shows a "Date started" line."""
    exe = require_program("transmission-remote")
    host = url.removeprefix("http://").split("/", 1)[0]
    shown = subprocess.run([exe, host, "-n", "u:" + TOKEN, "-t", "1", "-i"], capture_output=True, text=True,
                           timeout=60, check=True).stdout
    return any(line.strip().startswith("Date started:") for line in shown.splitlines())


async def test_a_torrent_started_and_stopped_has_the_start_date_a_real_transmission_gives_it(
        tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000)]), version="v1")
    add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode(), "paused": True}
    seen: dict[str, list[object]] = {}
    with transmission_daemon(tmp_path / "tr") as url:
        number = _call(url, "torrent-add", add)["torrent-added"]["id"]
        asked = {"ids": [number], "fields": ["startDate", "status"]}
        before = _remote_started(url)
        begun = time.time()
        _call(url, "torrent-start", {"ids": [number]})
        deadline = time.monotonic() + 30
        while (got := _call(url, "torrent-get", asked)["torrents"][0])["status"] != 4:  # (downloading)
            assert time.monotonic() < deadline, got
            time.sleep(0.1)
        started = got["startDate"]
        _call(url, "torrent-stop", {"ids": [number]})
        while (got := _call(url, "torrent-get", asked)["torrents"][0])["status"] != 0:
            assert time.monotonic() < deadline, got
            time.sleep(0.1)
        seen["theirs"] = [before, int(begun) - 1 <= started <= time.time() + 1, got["startDate"] == started,
                          _remote_started(url)]
    async with running_api(tmp_path / "ours") as api:
        number = (await transmission(api, "torrent-add", add))["torrent-added"]["id"]
        asked = {"ids": [number], "fields": ["startDate", "status"]}
        url = api.server.url + "/transmission/rpc"
        before = await anyio.to_thread.run_sync(_remote_started, url)
        begun = time.time()
        await transmission(api, "torrent-start", {"ids": [number]})
        with anyio.fail_after(30):
            while (got := (await transmission(api, "torrent-get", asked))["torrents"][0])["status"] != 4:
                await anyio.sleep(0.1)
        started = got["startDate"]
        await transmission(api, "torrent-stop", {"ids": [number]})
        with anyio.fail_after(30):
            while (got := (await transmission(api, "torrent-get", asked))["torrents"][0])["status"] != 0:
                await anyio.sleep(0.1)
        seen["ours"] = [before, int(begun) - 1 <= started <= time.time() + 1, got["startDate"] == started,
                        await anyio.to_thread.run_sync(_remote_started, url)]
    assert seen["theirs"] == [False, True, True, True]
    assert seen["ours"] == seen["theirs"]


# Transmission's GUIs (transmission-qt's preferences and torrent properties, its web client) send
# each change alone: a switch when it is ticked, then the spin box it enables. Each step, and the
# values read after it (a limit or size only while its switch is on: this daemon keeps none while
# off, where Transmission keeps the last one).
SESSION_STEPS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"speed-limit-down-enabled": True}, ("speed-limit-down-enabled", "speed-limit-down")),
    ({"speed-limit-down": 250}, ("speed-limit-down-enabled", "speed-limit-down")),
    # (a value turned off is kept: shown while off, and the value once its switch is on again)
    ({"speed-limit-down-enabled": False}, ("speed-limit-down-enabled", "speed-limit-down")),
    ({"speed-limit-down-enabled": True}, ("speed-limit-down-enabled", "speed-limit-down")),
    ({"speed-limit-up": 40, "speed-limit-up-enabled": True}, ("speed-limit-up-enabled", "speed-limit-up")),
    ({"speed-limit-up": 60, "speed-limit-up-enabled": False}, ("speed-limit-up-enabled", "speed-limit-up")),
    ({"speed-limit-up-enabled": True}, ("speed-limit-up-enabled", "speed-limit-up")),
    ({"seedRatioLimited": True}, ("seedRatioLimited", "seedRatioLimit")),
    ({"seedRatioLimit": 1.5}, ("seedRatioLimited", "seedRatioLimit")),
    ({"seedRatioLimited": False}, ("seedRatioLimited", "seedRatioLimit")),
    ({"seedRatioLimited": True}, ("seedRatioLimited", "seedRatioLimit")),
    ({"idle-seeding-limit-enabled": True}, ("idle-seeding-limit-enabled", "idle-seeding-limit")),
    ({"idle-seeding-limit": 45}, ("idle-seeding-limit-enabled", "idle-seeding-limit")),
    ({"idle-seeding-limit-enabled": False}, ("idle-seeding-limit-enabled", "idle-seeding-limit")),
    ({"idle-seeding-limit-enabled": True}, ("idle-seeding-limit-enabled", "idle-seeding-limit")),
    ({"seed-queue-enabled": False, "download-queue-enabled": True, "download-queue-size": 7},
     ("download-queue-enabled", "download-queue-size", "seed-queue-enabled")),
    ({"download-queue-enabled": False}, ("download-queue-enabled", "seed-queue-enabled")),
    ({"download-queue-enabled": True}, ("download-queue-enabled", "download-queue-size")),
    ({"download-queue-size": 4}, ("download-queue-enabled", "download-queue-size")),
]
TORRENT_STEPS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({}, ("downloadLimited", "downloadLimit", "uploadLimited", "uploadLimit")),
    ({"downloadLimited": True}, ("downloadLimited", "downloadLimit")),
    ({"downloadLimit": 40}, ("downloadLimited", "downloadLimit")),
    ({"downloadLimited": False}, ("downloadLimited", "downloadLimit")),  # (its value kept while off)
    ({"downloadLimited": True}, ("downloadLimited", "downloadLimit")),
    # (a value sent with its switch off, in one call: kept for when it is on)
    ({"uploadLimit": 30, "uploadLimited": False}, ("uploadLimited", "uploadLimit")),
    ({"uploadLimited": True}, ("uploadLimited", "uploadLimit")),
    ({"downloadLimit": 70, "downloadLimited": False}, ("downloadLimited", "downloadLimit")),
    ({"downloadLimited": True}, ("downloadLimited", "downloadLimit")),
]


def _steps(call: Callable[[str, dict[str, Any]], dict[str, Any]], number: int) -> list[list[object]]:
    """The values after each step of ``TORRENT_STEPS`` (torrent ``number``), then of ``SESSION_STEPS``
    (the torrent's first: a Transmission torrent's limit starts as the session's)."""
    seen: list[list[object]] = []
    for change, read in TORRENT_STEPS:
        if change:
            call("torrent-set", {"ids": [number], **change})
        got = call("torrent-get", {"ids": [number], "fields": list(read)})["torrents"][0]
        seen.append([got[k] for k in read])
    for change, read in SESSION_STEPS:
        call("session-set", change)
        got = call("session-get", {})
        seen.append([got[k] for k in read])
    return seen


async def test_limits_and_queues_set_a_change_at_a_time_as_transmissions_guis_send_them(
        tmp_path: Path) -> None:
    """A switch ticked alone, then its value alone (as Transmission's GUIs send them) gave no
    limit here: the session's speed limit and queue sizes sent alone while off were lost, a queue
    turned on again alone was refused (its size read as -1), a torrent's limit ticked alone was 0
    (none). Step by step, the values real transmission-daemon answers, and ours."""
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000)]), version="v1")
    add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode(), "paused": True}
    with transmission_daemon(tmp_path / "tr") as url:
        theirs = _steps(lambda method, arguments: _call(url, method, arguments),
                        _call(url, "torrent-add", add)["torrent-added"]["id"])
    async with running_api(tmp_path / "ours") as api:
        number = (await transmission(api, "torrent-add", add))["torrent-added"]["id"]
        url = api.server.url + "/transmission/rpc"

        def ours_call(method: str, arguments: dict[str, Any]) -> dict[str, Any]:
            with httpx.Client(auth=("u", TOKEN), timeout=10) as c:
                sid = c.post(url, json={"method": method}).headers["x-transmission-session-id"]
                answer: dict[str, Any] = c.post(url, json={"method": method, "arguments": arguments},
                                                headers={"X-Transmission-Session-Id": sid}).json()
            assert answer["result"] == "success", (method, arguments, answer)
            return answer["arguments"]

        ours = await anyio.to_thread.run_sync(_steps, ours_call, number)
    assert theirs[:3] == [[False, 100, False, 100], [True, 100], [True, 40]]  # (Transmission's defaults)
    assert ours == theirs


async def test_a_paused_magnet_has_the_values_a_real_transmission_gives_it(tmp_path: Path) -> None:
    """A magnet added paused, its metadata not fetched: every field both know alike but those
    that say where, when or whence; ``metadataPercentComplete`` said 1 (only a magnet fetching
    its metadata said 0), where it has none: a GUI showed it as a transfer with its metadata."""
    magnet = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=from-magnet"
    add = {"filename": magnet, "paused": True}
    with transmission_daemon(tmp_path / "tr") as url:
        number = _call(url, "torrent-add", add)["torrent-added"]["id"]
        theirs = _call(url, "torrent-get", {"ids": [number], "fields": FIELDS})["torrents"][0]
    async with running_api(tmp_path / "ours") as api:
        number = (await transmission(api, "torrent-add", add))["torrent-added"]["id"]
        ours = (await transmission(api, "torrent-get", {"ids": [number], "fields": FIELDS}))["torrents"][0]
    assert theirs["metadataPercentComplete"] == 0 and theirs["name"] == "from-magnet"  # (compared something)
    differ = {k: (theirs[k], ours.get(k)) for k in FIELDS if ours.get(k) != theirs[k]}
    assert differ == {}, differ


async def test_a_torrent_none_of_whose_files_is_wanted_has_the_values_a_real_transmission_gives_it(
        tmp_path: Path) -> None:
    """Every file unwanted (``files-unwanted``): transmission-daemon's ``percentDone`` is 0 (its
    ratio of 0 bytes wanted reads none); ours said 1."""
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000), ("b.bin", 50_000)]), version="v1")
    add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode(), "paused": True}
    fields = ["percentDone", "sizeWhenDone", "leftUntilDone", "wanted", "status"]
    with transmission_daemon(tmp_path / "tr") as url:
        number = _call(url, "torrent-add", add)["torrent-added"]["id"]
        _call(url, "torrent-set", {"ids": [number], "files-unwanted": [0, 1]})
        theirs = _settled(url, number, fields)
    async with running_api(tmp_path / "ours") as api:
        number = (await transmission(api, "torrent-add", add))["torrent-added"]["id"]
        await transmission(api, "torrent-set", {"ids": [number], "files-unwanted": [0, 1]})
        ours = (await transmission(api, "torrent-get", {"ids": [number], "fields": fields}))["torrents"][0]
    assert theirs["wanted"] == [0, 0] and theirs["percentDone"] == 0  # (compared something)
    assert ours == theirs
