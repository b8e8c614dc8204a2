"""A job's details in a real browser (headless Chromium through Selenium, as tests/browser/test_ui.py
drives it): General with its piece map, Trackers (add, edit, remove, each refusal said beside its
control with what was typed kept), HTTP sources, Content as a tree (priorities, several at once,
rename), Peers (a real peer banned), Speed; the sidebar's tracker and tracker status filters; and a
lost event stream that says "reconnecting…" and comes back current without a reload."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.browser.test_ui import FILES, _magnet, chromium, in_thread, side, side_counts, wait
from tests.integration.api_helpers import TOKEN, Api, downloaded, running_api, seeding_job
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.formats.bencode import encode
from torrent_engine.jobs import AddOptions
from torrent_engine.net.peer.peer_id import CLIENT_PREFIX
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# a page whose live events can be cut and refused (a lost connection), and let through again
CUT_STREAM = """
window.blockEvents = false;
let streamAbort = null;
window.cutEvents = () => { if (streamAbort) streamAbort.abort(); };
const realFetch = window.fetch;
window.fetch = function (path, opts) {
  if (String(path).includes("/api/events") && !String(path).includes("ticket")) {
    if (window.blockEvents) return Promise.reject(new TypeError("Failed to fetch (blocked by the test)"));
    streamAbort = new AbortController();
    const given = opts && opts.signal;
    if (given) given.addEventListener("abort", () => streamAbort.abort());
    return realFetch.call(this, path, {...opts, signal: streamAbort.signal});
  }
  return realFetch.apply(this, arguments);
};
"""


def css(driver: Any, selector: str) -> Any:
    """The element ``selector`` finds."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def open_page(driver: Any, api: Api) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{api.url}/#token={TOKEN}")
    # (textContent: at phone width the words are hidden, the dot alone says it)
    wait(driver, lambda d: d.find_element(By.ID, "conn-text").get_attribute("textContent") == "live")


def open_details(driver: Any, job_id: str, sub: str) -> None:
    """A click on the job's row, then on the tab ``sub``."""
    from selenium.webdriver.common.by import By

    wait(driver, lambda d: css(d, f'tr.job[data-job-id="{job_id}"] .name')).click()
    wait(driver, lambda d: d.find_element(By.ID, "details").get_attribute("data-job-id") == job_id)
    css(driver, f'#details [data-sub="{sub}"]').click()
    wait(driver, lambda d: css(d, f'#details [data-sub="{sub}"]')
         .get_attribute("aria-selected") == "true")


def screenshot(driver: Any, name: str) -> None:
    """The page with the details open (a 1400x900 window), into the folder UI_DETAILS_SCREENSHOTS
    names, if it is set (docs/'s pictures: ``UI_DETAILS_SCREENSHOTS=docs python3 -m pytest
    tests/browser/test_ui_details.py``)."""
    folder = os.environ.get("UI_DETAILS_SCREENSHOTS")
    if folder:
        driver.save_screenshot(str(Path(folder) / name))


def typed(driver: Any, element: Any, text: str) -> None:
    """``element``'s text replaced by ``text`` (a textarea or an input)."""
    driver.execute_script("arguments[0].value = ''", element)
    element.send_keys(text)


async def test_general_trackers_http_sources_and_speed_of_a_seeding_job(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    announces: list[str] = []
    release = anyio.Event()

    async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path.startswith("/announce"):
            announces.append(request.path)
        if request.path == "/scrape":  # (BEP 48: asked when the Trackers tab is open)
            files = {h: {b"complete": 7, b"downloaded": 11, b"incomplete": 3}
                     for h in request.query()["info_hash"]}
            await stream.send(http_response(encode({b"files": files})))
            return
        if request.path == "/announce/refused":
            await stream.send(http_response(encode({b"failure reason": b"unregistered torrent"})))
            return
        if request.path == "/announce/held":  # (its answer waits: the tracker shows "Updating…")
            await release.wait()
        await stream.send(http_response(announce_body(interval=1800, complete=7, incomplete=3)))

    async with http_tracker(answer) as server, running_api(
            tmp_path, config_options={"tracker_enabled": True}) as api:
        tracker = f"http://127.0.0.1:{server.port}/announce"
        payload = make_payload(api.download_root, FILES, name="Example Payload")
        torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[[tracker]],
                                 comment="Example comment", created_by="example-maker 2.1")
        job_id = await seeding_job(api, torrent)
        assert torrent.info_hash_v1 is not None
        with chromium(1400, 900) as driver:
            def general() -> tuple[str, str, str, str, str, str]:
                open_page(driver, api)
                open_details(driver, job_id, "general")
                canvas = "#details canvas.piece-map"
                wait(driver, lambda d: css(d, canvas).get_attribute("data-have")
                     == str(torrent.num_pieces))
                def field(name: str) -> str:
                    return str(css(driver, f'#details dd[data-field="{name}"]').text)

                wait(driver, lambda d: field("Created by") == "example-maker 2.1")
                screenshot(driver, "ui-details-general.png")
                return (field("Info-hash v1"), field("Pieces"), field("Comment"),
                        css(driver, canvas).get_attribute("data-pieces"),
                        field("Save path"), field("Last seen complete"))

            v1, pieces, comment, drawn, save_path, seen = await in_thread(general)
            assert v1 == torrent.info_hash_v1.hex()
            assert pieces == f"{torrent.num_pieces} × 32.0 KiB", pieces
            assert comment == "Example comment" and drawn == str(torrent.num_pieces)
            assert save_path == str(api.download_root)
            assert seen == "never"  # (a seed that met no peer with every piece: its own completion not)

            def tracker_row(d: Any, url: str) -> Any:
                rows = [r for r in d.find_elements(By.CSS_SELECTOR, "#details tr[data-url]")
                        if r.get_attribute("data-url") == url]
                return rows[0] if rows else None

            def trackers_shown() -> tuple[str, str, str, str, str]:
                open_details(driver, job_id, "trackers")
                wait(driver, lambda d: tracker_row(d, tracker).find_element(
                    By.CSS_SELECTOR, ".tracker-status").text == "Working")
                wait(driver, lambda d: tracker_row(d, tracker).find_element(  # (the tab's scrape)
                    By.CSS_SELECTOR, ".tracker-downloaded").text == "11")
                cells = wait(driver, lambda d: [c.text for c in tracker_row(d, tracker).find_elements(
                    By.TAG_NAME, "td")])  # (in a wait: the tab redraws, a row found may be gone)
                return cells[3], cells[4], cells[5], cells[6], cells[7]  # seeds … downloaded, next announce

            *counts, next_shown = await in_thread(trackers_shown)
            assert counts == ["7", "0", "3", "11"]
            due = (await api.client.get(f"/api/jobs/{job_id}")).json()["trackers"][0]["next_announce_at"]
            assert due is not None and due - time.time() > 1700, due  # (the tracker's 1 800 s)
            assert next_shown == await in_thread(lambda: str(driver.execute_script(
                "return new Date(arguments[0] * 1000).toLocaleTimeString()", due)))

            def add_bad_then_good() -> tuple[str, str]:
                area = css(driver, 'textarea[data-form="tracker-add"]')
                typed(driver, area, "gopher://nowhere/announce")
                css(driver, 'form[data-form="tracker-add"] button[type=submit]').click()
                error = wait(driver, lambda d: css(d, '[data-error="tracker-add"]').text)
                kept = area.get_attribute("value")
                typed(driver, area, "udp://127.0.0.1:9/announce\nhttp://127.0.0.1:9/second")
                css(driver, 'form[data-form="tracker-add"] button[type=submit]').click()
                wait(driver, lambda d: tracker_row(d, "http://127.0.0.1:9/second"))
                wait(driver, lambda d: area.get_attribute("value") == "")
                return str(error), str(kept)

            error, kept = await in_thread(add_bad_then_good)
            assert "gopher" in error and kept == "gopher://nowhere/announce", (error, kept)
            assert api.service.tracker_tiers(job_id) == (
                (tracker,), ("udp://127.0.0.1:9/announce",), ("http://127.0.0.1:9/second",))

            def click_in_row(url: str, action: str) -> None:
                """Click the row's button (in a wait: the tab redraws, a row found may be gone)."""
                wait(driver, lambda d: tracker_row(d, url).find_element(
                    By.CSS_SELECTOR, f'[data-tracker="{action}"]').click() or True)

            def edit_bad_then_good_then_remove() -> tuple[str, str]:
                click_in_row("udp://127.0.0.1:9/announce", "edit")
                edit = wait(driver, lambda d: css(d, 'input[data-form="tracker-edit"]'))
                typed(driver, edit, "ftp://127.0.0.1/announce\n")
                error = wait(driver, lambda d: d.find_element(
                    By.CSS_SELECTOR, '.edit-form [data-error]').text)
                kept = edit.get_attribute("value")
                typed(driver, edit, "udp://127.0.0.1:10/announce\n")
                wait(driver, lambda d: tracker_row(d, "udp://127.0.0.1:10/announce"))
                click_in_row("http://127.0.0.1:9/second", "remove")
                wait(driver, lambda d: tracker_row(d, "http://127.0.0.1:9/second") is None)
                return str(error), str(kept)

            error, kept = await in_thread(edit_bad_then_good_then_remove)
            assert "ftp" in error and kept == "ftp://127.0.0.1/announce", (error, kept)
            assert api.service.tracker_tiers(job_id) == ((tracker,), ("udp://127.0.0.1:10/announce",))
            refusing = f"http://127.0.0.1:{server.port}/announce/refused"  # (a tracker error, told apart)
            r = await api.client.put(f"/api/jobs/{job_id}/trackers", json={"tiers": [
                [tracker], ["udp://127.0.0.1:10/announce"], [refusing]]})
            assert r.status_code == 200, r.text

            def refused_shown(d: Any) -> bool:
                row = tracker_row(d, refusing)
                return row is not None and row.find_element(By.CSS_SELECTOR, ".tracker-status").text == \
                    "Tracker error"

            assert await in_thread(lambda: wait(driver, refused_shown))
            before = announces.count("/announce")  # (a tracker's Reannounce: it alone, now)
            refused_before = announces.count("/announce/refused")
            await in_thread(lambda: wait(driver, lambda d: tracker_row(d, tracker).find_element(
                By.CSS_SELECTOR, '[data-tracker="reannounce"]').click() or True))  # (a row redrawn: again)
            with anyio.fail_after(30):
                while announces.count("/announce") == before:
                    await anyio.sleep(0.05)
            assert announces.count("/announce/refused") == refused_before

            def reannounce_by_menu() -> None:  # (the jobs' menu: every tracker of the job)
                from selenium.webdriver.common.action_chains import ActionChains

                wait(driver, lambda d: ActionChains(d).context_click(  # (a row redrawn meanwhile: again)
                    css(d, f'tr.job[data-job-id="{job_id}"] .name')).perform() or True)
                wait(driver, lambda d: d.find_element(By.ID, "context-menu").is_displayed())
                css(driver, '#context-menu [data-menu="reannounce"]').click()

            counts = (announces.count("/announce"), announces.count("/announce/refused"))
            await in_thread(reannounce_by_menu)
            with anyio.fail_after(30):
                while not (announces.count("/announce") > counts[0] and
                           announces.count("/announce/refused") > counts[1]):
                    await anyio.sleep(0.05)

            held = f"http://127.0.0.1:{server.port}/announce/held"  # (an announce waiting for its answer)
            r = await api.client.put(f"/api/jobs/{job_id}/trackers", json={"tiers": [[tracker], [held]]})
            assert r.status_code == 200, r.text

            def held_status(text: str) -> Callable[[Any], bool]:
                def shown(d: Any) -> bool:
                    row = tracker_row(d, held)
                    return row is not None and \
                        row.find_element(By.CSS_SELECTOR, ".tracker-status").text == text
                return shown

            try:
                assert await in_thread(lambda: wait(driver, held_status("Updating…")))
            finally:
                release.set()
            assert await in_thread(lambda: wait(driver, held_status("Working")))

            def web_seeds() -> tuple[str, str, bool]:
                open_details(driver, job_id, "http")
                area = wait(driver, lambda d: css(d, 'textarea[data-form="seed-add"]'))
                typed(driver, area, "ftp://127.0.0.1/pub/")
                css(driver, 'form[data-form="seed-add"] button[type=submit]').click()
                error = wait(driver, lambda d: css(d, '[data-error="seed-add"]').text)
                kept = area.get_attribute("value")
                typed(driver, area, "http://127.0.0.1:9/pub/")
                css(driver, 'form[data-form="seed-add"] button[type=submit]').click()
                wait(driver, lambda d: tracker_row(d, "http://127.0.0.1:9/pub/"))
                return str(error), str(kept), True

            error, kept, _ = await in_thread(web_seeds)
            assert "ftp" in error and kept == "ftp://127.0.0.1/pub/", (error, kept)
            assert api.service.web_seeds(job_id) == ["http://127.0.0.1:9/pub/"]

            def remove_web_seed() -> bool:
                wait(driver, lambda d: tracker_row(d, "http://127.0.0.1:9/pub/").find_element(
                    By.CSS_SELECTOR, '[data-seed="remove"]').click() or True)  # (as click_in_row)
                wait(driver, lambda d: tracker_row(d, "http://127.0.0.1:9/pub/") is None)
                return bool(css(driver, "#details .http-sources .empty").is_displayed())

            assert await in_thread(remove_web_seed)
            assert api.service.web_seeds(job_id) == []

            def speed() -> int:
                open_details(driver, job_id, "speed")
                canvas = "#details canvas.speed-graph"
                wait(driver, lambda d: int(css(d, canvas).get_attribute("data-samples")
                                           or 0) >= 3, 20)
                return int(css(driver, canvas).get_attribute("data-samples"))

            assert await in_thread(speed) >= 3


async def test_content_is_a_tree_whose_priorities_and_names_are_set_on_the_server(tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    async with running_api(tmp_path) as api:
        torrent = make_torrent(make_payload(api.download_root, FILES, name="Example Payload"),
                               piece_length=32 * 1024)
        job_id = await seeding_job(api, torrent)
        index = {"/".join(f.path): i for i, f in enumerate(torrent.files)}
        movie, notes, cover = (index[f"Example Payload/{p}"] for p in ("movie.mkv", "extras/notes.txt",
                                                                         "extras/cover.jpg"))
        with chromium(1400, 900) as driver:
            def row(d: Any, path: str) -> Any:
                rows = [r for r in d.find_elements(By.CSS_SELECTOR, "#details tr[data-path]")
                        if r.get_attribute("data-path") == path]
                return rows[0] if rows else None

            def tree() -> tuple[list[str], bool, bool]:
                open_page(driver, api)
                open_details(driver, job_id, "content")
                wait(driver, lambda d: row(d, "Example Payload/movie.mkv"))
                paths = [r.get_attribute("data-path") for r in driver.find_elements(
                    By.CSS_SELECTOR, "#details tr[data-path]")]
                css(driver, '#details button[data-fold="Example Payload/extras"]').click()
                wait(driver, lambda d: row(d, "Example Payload/extras/notes.txt") is None)
                folded = row(driver, "Example Payload/extras") is not None
                css(driver, '#details button[data-fold="Example Payload/extras"]').click()
                unfolded = wait(driver, lambda d: row(d, "Example Payload/extras/notes.txt")) is not None
                return [str(p) for p in paths], folded, unfolded

            paths, folded, unfolded = await in_thread(tree)
            # (each folder before what it holds; files in the metainfo's order, which sorts them)
            assert paths == ["Example Payload", "Example Payload/extras", "Example Payload/extras/cover.jpg",
                             "Example Payload/extras/notes.txt", "Example Payload/movie.mkv"], paths
            assert folded and unfolded

            def one_high() -> None:
                Select(css(driver, f'#details select[data-prio-index="{movie}"]')
                       ).select_by_visible_text("High")
                wait(driver, lambda d: (lambda s: s.get_attribute("value") == "6" and s.is_enabled())(
                    css(d, f'#details select[data-prio-index="{movie}"]')))

            await in_thread(one_high)
            def file(i: int) -> Any:
                return next(f for f in api.service.get(job_id).files if f.index == i)

            assert file(movie).priority == 6

            def two_skipped() -> str:
                css(row(driver, "Example Payload/extras/notes.txt"), "td.size").click()
                ActionChains(driver).key_down(Keys.CONTROL).click(
                    css(row(driver, "Example Payload/extras/cover.jpg"), "td.size")
                ).key_up(Keys.CONTROL).perform()
                wait(driver, lambda d: css(d, "#details .picked-count").text == "2 picked")

                def do_not_download(d: Any) -> bool:  # (again if a redraw took the select meanwhile)
                    Select(css(d, '#details select[data-content="priority"]')).select_by_visible_text(
                        "Do not download")
                    return True

                wait(driver, do_not_download)

                def skipped(d: Any) -> bool:
                    boxes = [css(d, f'#details input[data-file-index="{i}"]')
                             for i in (notes, cover)]
                    return all(not b.is_selected() and b.is_enabled() for b in boxes)

                wait(driver, skipped)
                folder_box = row(driver, "Example Payload/extras").find_element(By.CSS_SELECTOR, "input")
                screenshot(driver, "ui-details-content.png")
                return "unticked" if not folder_box.is_selected() else "ticked"

            assert await in_thread(two_skipped) == "unticked"
            assert (file(notes).priority, file(cover).priority, file(movie).priority) == (0, 0, 6)

            def rename() -> tuple[str, str]:
                row(driver, "Example Payload/movie.mkv").find_element(By.CSS_SELECTOR, "td.size").click()
                wait(driver, lambda d: css(d, "#details .picked-count").text == "1 picked")
                css(driver, '#details [data-content="rename"]').click()
                name = css(driver, 'input[data-form="rename"]')
                assert name.get_attribute("value") == "movie.mkv"
                typed(driver, name, "extras\n")  # (a folder of that name is there)
                error = wait(driver, lambda d: css(d, '[data-error="rename"]').text)
                kept = name.get_attribute("value")
                typed(driver, name, "film.mkv\n")
                wait(driver, lambda d: row(d, "Example Payload/film.mkv"))
                return str(error), str(kept)

            error, kept = await in_thread(rename)
            assert error and kept == "extras", (error, kept)
            assert file(movie).path == "Example Payload/film.mkv"
            assert (api.download_root / "Example Payload" / "film.mkv").is_file()


async def test_a_connected_peer_is_listed_with_its_flags_and_banned(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="Example Payload"),
                           piece_length=32 * 1024)
    cfg = loopback_config(upload_rate_limit=150_000)  # (the download lasts: the peer stays)
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            added = await api.client.post("/api/jobs", json={
                "source": torrent.magnet_uri(), "peers": [f"127.0.0.1:{seeder.listen_port}"]})
            job_id = added.json()["id"]
            with chromium(1400, 900) as driver:
                def ban() -> tuple[str, str, str, str, str, str, str]:
                    open_page(driver, api)
                    open_details(driver, job_id, "peers")
                    # (the bytes it sent us, counted as they come: the tab redraws each second)
                    got = str(wait(driver, lambda d: (text := css(
                        d, '#details td[data-peer-total="downloaded"]').text) != "0 B" and text))
                    # (a seed has every piece we lack; the files of the piece asked of it)
                    relevance = str(css(driver, "#details td[data-peer-relevance]").text)
                    client = str(css(driver, "#details td[data-peer-client]").get_attribute("title"))
                    files = str(wait(driver, lambda d: css(d, "#details td[data-peer-files]").text))
                    # (each read and click in one try: a row found may be redrawn before it is used)
                    address, flags = wait(driver, lambda d: (row := css(d, "#details tr[data-address]")) and (
                        row.get_attribute("data-address"), row.find_elements(By.TAG_NAME, "td")[2].text))
                    ban_button = '#details tr[data-address] [data-peer="ban"]'
                    wait(driver, lambda d: css(d, ban_button).click() or True)
                    wait(driver, lambda d: css(d, '#details [data-peer="ban-yes"]').click() or True)
                    said = wait(driver, lambda d: css(d, "#details .peers-said").text)
                    return str(address), str(flags), str(said), got, relevance, files, client

                address, flags, said, got, relevance, files, client = await in_thread(ban)
            assert client == f"peer id {CLIENT_PREFIX.decode()}", client  # (qBittorrent's Peer ID Client)
            assert address.startswith("127.0.0.1:") and "U" in flags.split(), (address, flags)
            assert got.endswith(("KiB", "MiB")), got  # (what came from it before the ban)
            assert relevance == "100 %", relevance
            paths = {f.path for f in api.service.get(job_id).files}
            assert files and set(files.split(", ")) <= paths, (files, paths)
            assert said.startswith(f"Banned {address}"), said
            assert "127.0.0.1" in api.service.get_settings().banned_ips
            with anyio.fail_after(20):  # (dropped, and refused from then on)
                while api.service.get(job_id).peers:
                    await anyio.sleep(0.1)


def filtered_to_one(driver: Any, api: Api, filter: str, value: str) -> tuple[dict[str, str], str]:
    """The page opened on its 4 jobs: the counts of the sidebar's ``filter``, then the id of the
    one job shown once its entry ``value`` is chosen."""
    from selenium.webdriver.common.by import By

    open_page(driver, api)
    wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "4")
    shown = side_counts(driver, filter)
    side(driver, filter, value).click()
    wait(driver, lambda d: d.find_element(By.ID, "view-count").text == "1")
    return shown, css(driver, "tr.job[data-job-id]").get_attribute("data-job-id")


async def test_the_sidebar_filters_by_tracker_host_with_live_counts(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        a, b = "http://a.example:80/announce", "udp://b.example:6969/announce"
        ids = []
        for i, trackers in enumerate(([a], [a, b], [a], [])):
            magnet = _magnet(i) + "".join(f"&tr={t}" for t in trackers)
            job, _ = await api.service.add(magnet, AddOptions(paused=True))
            ids.append(job.id)
        with chromium(1400, 900) as driver:
            shown, only = await in_thread(lambda: filtered_to_one(driver, api, "tracker", "b.example"))
            assert shown == {"": "4", "\u0000": "1", "a.example": "3", "b.example": "1"}, shown
            assert only == ids[1]
            r = await api.client.put(f"/api/jobs/{ids[3]}/trackers", json={"tiers": [[b]]})
            assert r.status_code == 200, r.text

            def live() -> dict[str, str]:
                wait(driver, lambda d: d.find_element(By.ID, "view-count").text == "2")
                side(driver, "tracker", "\u0000").click()
                wait(driver, lambda d: d.find_element(By.ID, "view-count").text == "0")
                return side_counts(driver, "tracker")

            assert await in_thread(live) == {"": "4", "\u0000": "0", "a.example": "3", "b.example": "2"}


async def test_the_sidebar_filters_by_tracker_status_as_the_announces_are_answered(tmp_path: Path) -> None:
    """The sidebar's tracker status (qBittorrent 5.1's): the jobs whose tracker answered with a
    warning, refused the announce, or could not be reached, counted; one chosen shows its jobs;
    a later answer moves a job out of it while the page is open."""
    from selenium.webdriver.common.by import By

    refusing = [True]

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path.startswith("/announce/refused") and refusing[0]:
            await stream.send(http_response(encode({"failure reason": "unregistered torrent"})))
        elif request.path.startswith("/announce/warn"):
            await stream.send(http_response(announce_body(**{"warning message": "your client is too old"})))
        else:
            await stream.send(http_response(announce_body()))

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        base = f"http://127.0.0.1:{web.port}/announce"
        ids = []
        for i, url in enumerate((f"{base}/warn", f"{base}/refused", "http://127.0.0.1:1/announce", base)):
            job, _ = await api.service.add(f"{_magnet(i)}&tr={url}", AddOptions())
            ids.append(job.id)
        with anyio.fail_after(30):
            while any(t.status == "unknown" for j in api.service.list() for t in j.trackers):
                await anyio.sleep(0.05)
        with chromium(1400, 900) as driver:
            shown, only = await in_thread(lambda: filtered_to_one(driver, api, "issue", "tracker_error"))
            assert shown == {"": "4", "warning": "1", "tracker_error": "1", "other_error": "1"}, shown
            assert only == ids[1]
            refusing[0] = False  # (answered again: it works now)
            r = await api.client.post(f"/api/jobs/{ids[1]}/reannounce")
            assert r.status_code in (200, 202), r.text

            def live() -> tuple[dict[str, str], str]:
                wait(driver, lambda d: d.find_element(By.ID, "view-count").text == "0")
                counted = side_counts(driver, "issue")
                side(driver, "issue", "other_error").click()
                wait(driver, lambda d: d.find_element(By.ID, "view-count").text == "1")
                return counted, css(driver, "tr.job[data-job-id]").get_attribute("data-job-id")

            counted, unreached = await in_thread(live)
            assert counted == {"": "4", "warning": "1", "tracker_error": "0", "other_error": "1"}, counted
            assert unreached == ids[2]


async def test_a_lost_event_stream_says_reconnecting_and_comes_back_current(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        await api.service.add(_magnet(0), AddOptions(paused=True))
        with chromium(1400, 900) as driver:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CUT_STREAM})

            def cut() -> tuple[str, str]:
                open_page(driver, api)
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "1")
                driver.execute_script("window.blockEvents = true; window.cutEvents()")
                wait(driver, lambda d: d.find_element(By.ID, "sb-conn").text == "reconnecting…")
                return css(driver, "#sb-conn").text, css(driver, "#conn-text").text

            bar, top = await in_thread(cut)
            assert bar == "reconnecting…" and top == "reconnecting…"
            # what happens while the page is cut off: a job added, the first one resumed
            second, _ = await api.service.add(_magnet(1), AddOptions(paused=True))
            first = next(j for j in api.service.list() if j.id != second.id)
            await api.service.resume(first.id)

            def back() -> tuple[str, int, str]:
                loaded = driver.execute_script("return performance.timeOrigin")
                assert driver.find_element(By.ID, "count-active").text == "1"  # (not yet: cut off)
                driver.execute_script("window.blockEvents = false")
                wait(driver, lambda d: d.find_element(By.ID, "sb-conn").text == "connected", 30)
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "2")
                state = wait(driver, lambda d: (lambda s: s if s != "paused" else None)(
                    css(d, f'tr.job[data-job-id="{first.id}"] .state').text.lower()))
                same_page = driver.execute_script("return performance.timeOrigin") == loaded
                return str(state), int(same_page), driver.find_element(By.ID, "conn-text").text

            state, same_page, top = await in_thread(back)
            assert state != "paused" and same_page == 1 and top == "live", (state, top)


async def test_on_a_phone_the_details_are_a_sheet_without_sideways_scrolling(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    async with running_api(tmp_path) as api:
        torrent = make_torrent(make_payload(api.download_root, FILES, name="Example Payload"),
                               piece_length=32 * 1024)
        job_id = await seeding_job(api, torrent)
        with chromium(400, 800) as driver:
            def sheet() -> tuple[list[bool], bool, bool]:
                open_page(driver, api)
                open_details(driver, job_id, "general")
                sideways = []
                for sub in ("general", "trackers", "peers", "http", "content", "speed"):
                    tab = f'#details [data-sub="{sub}"]'
                    css(driver, tab).click()
                    def chosen(d: Any, tab: str = tab) -> bool:
                        return bool(css(d, tab).get_attribute("aria-selected") == "true")

                    wait(driver, chosen)
                    sideways.append(bool(driver.execute_script(
                        "return document.documentElement.scrollWidth > window.innerWidth")))
                covers = bool(driver.execute_script(
                    "const r = document.getElementById('details').getBoundingClientRect();"
                    "return r.left <= 0 && r.right >= window.innerWidth && r.top <= 0"))
                driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
                wait(driver, lambda d: not d.find_element(By.ID, "details").is_displayed())
                return sideways, covers, True

            sideways, covers, closed = await in_thread(sheet)
        assert sideways == [False] * 6 and covers and closed


async def test_a_restarted_server_is_followed_again_without_a_reload(tmp_path: Path) -> None:
    """The API server stopped (its streams end, its port refuses) and started again on the same
    port: the page says "reconnecting…" meanwhile, then follows the new server's events from
    every job anew, the one added while it was down included."""
    from selenium.webdriver.common.by import By

    from torrent_engine.api import ApiServer

    async with running_api(tmp_path) as api:
        await api.service.add(_magnet(0), AddOptions(paused=True))
        port = api.server.bound_port
        with chromium(1400, 900) as driver:
            def live() -> float:
                open_page(driver, api)
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "1")
                return float(driver.execute_script("return performance.timeOrigin"))

            loaded = await in_thread(live)
            api.server.stop()

            def lost() -> str:
                wait(driver, lambda d: d.find_element(By.ID, "sb-conn").text == "reconnecting…", 30)
                return str(driver.find_element(By.ID, "sb-conn").text)

            assert await in_thread(lost) == "reconnecting…"
            await api.service.add(_magnet(1), AddOptions(paused=True))  # (while no server runs)
            again = ApiServer(api.service, token=TOKEN, port=port)
            async with anyio.create_task_group() as tg:
                await tg.start(again.serve)
                try:
                    def back() -> tuple[str, float]:
                        wait(driver, lambda d: d.find_element(By.ID, "sb-conn").text == "connected", 30)
                        wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "2")
                        return (str(driver.find_element(By.ID, "count-active").text),
                                float(driver.execute_script("return performance.timeOrigin")))

                    count, origin = await in_thread(back)
                finally:
                    again.stop()
            assert count == "2" and origin == loaded  # (the same page: no reload)


async def test_the_details_tabs_are_used_from_the_keyboard(tmp_path: Path) -> None:
    """Enter on the current row opens its details; the arrows move between the tabs; Enter on a
    tab's button presses it (not taken for the list's Enter); Escape closes the details."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    async with running_api(tmp_path) as api:
        job, _ = await api.service.add(_magnet(0), AddOptions(paused=True))
        with chromium(1400, 900) as driver:
            def keys() -> tuple[str, str, str, bool]:
                open_page(driver, api)
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "1")
                css(driver, "#jobs-head th.c-name").click()  # (the page has the focus)
                ActionChains(driver).send_keys(Keys.ARROW_DOWN, Keys.ENTER).perform()
                wait(driver, lambda d: css(d, "#details").get_attribute("data-job-id") == job.id)
                css(driver, '#details [data-sub="general"]').click()
                ActionChains(driver).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT).perform()
                by_arrows = str(driver.switch_to.active_element.get_attribute("data-sub"))
                driver.execute_script("document.querySelector('#details [data-sub=\"speed\"]').focus()")
                ActionChains(driver).send_keys(Keys.ENTER).perform()
                wait(driver, lambda d: css(d, '#details [data-sub="speed"]').get_attribute("aria-selected")
                     == "true", 10)
                pressed = str(css(driver, '#details [aria-selected="true"]').get_attribute("data-sub"))
                shown = str(css(driver, "#details .subbody > *").get_attribute("class"))
                ActionChains(driver).send_keys(Keys.ESCAPE).perform()
                wait(driver, lambda d: not d.find_element(By.ID, "details").is_displayed())
                return by_arrows, pressed, shown, True

            assert await in_thread(keys) == ("peers", "speed", "speed", True)


async def test_the_details_of_a_job_close_when_a_tab_that_does_not_list_it_is_shown(tmp_path: Path) -> None:
    """An active job's details close when the History tab is shown (they stayed open under a
    list without it), and a finished job's when Active is; a tab that lists it keeps them."""
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        active, _ = await api.service.add(_magnet(0), AddOptions(paused=True))
        gone, _ = await api.service.add(_magnet(1), AddOptions(paused=True))
        await api.service.cancel(gone.id)
        with chromium(1400, 900) as driver:
            def shown_after(tab: str) -> str | None:
                css(driver, f"#tab-{tab}").click()
                wait(driver, lambda d: "selected" in str(css(d, f"#tab-{tab}").get_attribute("class")))
                panel = driver.find_element(By.ID, "details")
                return str(panel.get_attribute("data-job-id")) if panel.is_displayed() else None

            def tabs() -> list[str | None]:
                open_page(driver, api)
                wait(driver, lambda d: d.find_element(By.ID, "count-history").text == "1")
                open_details(driver, active.id, "general")
                seen = [shown_after("active"), shown_after("history")]
                open_details(driver, gone.id, "general")
                return [*seen, shown_after("history"), shown_after("active")]

            assert await in_thread(tabs) == [active.id, None, gone.id, None]


def js_bytes(n: int) -> str:
    """``n`` as the page's ``bytes`` writes it."""
    units, i, x = ["B", "KiB", "MiB", "GiB", "TiB"], 0, float(n)
    while abs(x) >= 1024 and i < len(units) - 1:
        x, i = x / 1024, i + 1
    return f"{round(x)} B" if i == 0 else f"{x:.{2 if x < 10 else 1 if x < 100 else 0}f} {units[i]}"


async def test_general_shows_the_bytes_wasted_and_those_moved_this_run(tmp_path: Path) -> None:
    from tests.integration.test_bad_peers import FILES as BAD_FILES
    from tests.integration.test_bad_peers import FakePeer

    torrent = make_torrent(make_payload(tmp_path / "seed", BAD_FILES), piece_length=16 * 1024)
    liar = FakePeer(torrent, "liar")  # random bytes for every block asked: its pieces fail

    def general(driver: Any, api: Api, job_id: str) -> tuple[str, str]:
        open_page(driver, api)
        open_details(driver, job_id, "general")
        def field(name: str) -> str:
            return str(wait(driver, lambda d: css(d, f'#details dd[data-field="{name}"]').text))
        return field("Wasted"), field("Downloaded")

    with chromium(1400, 900) as driver:
        async with anyio.create_task_group() as tg:
            await tg.start(liar.serve)
            seed_config = loopback_config(upload_rate_limit=1_500_000)  # (the liar gets its share)
            async with Session(torrent, tmp_path / "seed", config=seed_config) as seed, \
                    running_api(tmp_path) as api:
                await seed.wait_ready()
                done = job = await downloaded(api, torrent, [("127.0.0.1", liar.port),
                                                             ("127.0.0.1", seed.listen_port)])
                assert done.corrupt > 0
                wasted, down = await in_thread(lambda: general(driver, api, job.id))
            tg.cancel_scope.cancel()
        assert wasted == (f"{js_bytes(done.wasted + done.corrupt)} "
                          f"({js_bytes(done.corrupt)} failed the hash check)"), wasted
        assert down == js_bytes(done.downloaded), down  # (all of it this run)
        async with running_api(tmp_path) as api:  # a restart: nothing moved in this run yet
            wasted, down = await in_thread(lambda: general(driver, api, job.id))
        assert down == f"{js_bytes(done.downloaded)} (0 B this run)", down


async def test_general_shows_the_bytes_taken_from_files_held(tmp_path: Path) -> None:
    """A v1 torrent holding a complete job's file under another name: its General says how many
    bytes its add took from there (deduplication); the job it took them from says nothing of it."""
    size = 1_572_867  # (from the dedup's LENGTH_MATCH_MIN)
    data = os.urandom(size)

    def general(driver: Any, api: Api, job_id: str) -> tuple[str, list[str]]:
        open_page(driver, api)
        open_details(driver, job_id, "general")
        fields = wait(driver, lambda d: [e.get_attribute("data-field")
                                         for e in d.find_elements("css selector", "#details dd[data-field]")])
        taken = wait(driver, lambda d: css(d, '#details dd[data-field="Taken from files held"]').text) \
            if "Taken from files held" in fields else ""
        return str(taken), fields

    with chromium(1400, 900) as driver:
        async with running_api(tmp_path) as api:
            held = api.download_root / "A"
            held.mkdir()
            (held / "a.mkv").write_bytes(data)
            a_id = await seeding_job(api, make_torrent(held, piece_length=32 * 1024, version="v1"))
            with anyio.fail_after(10):
                while not api.service.dedup.of_length(size):
                    await anyio.sleep(0.02)
            other = tmp_path / "mk" / "Show"
            other.mkdir(parents=True)
            (other / "Show.mkv").write_bytes(data)
            b = make_torrent(other, piece_length=64 * 1024, version="v1")
            job, _ = await api.service.add(b.to_bytes(), save_path="got", paused=True)
            assert job.dedup_bytes == size
            taken, _ = await in_thread(lambda: general(driver, api, job.id))
            assert taken == js_bytes(size), taken
            nothing, fields = await in_thread(lambda: general(driver, api, a_id))
            assert nothing == "" and "Downloaded" in fields
