"""The web UI in a real browser: headless Chromium from Debian, driven by Selenium through the
system chromedriver (nothing is downloaded at run time). The daemon's API runs in this process
on 127.0.0.1; a seeder of ours serves the torrent on loopback."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from tests.conftest import require_program
from tests.integration.api_helpers import TOKEN, add_kept_from_its_save_path, running_api
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from torrent_engine.jobs import AddOptions, JobFeatures, JobState
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

T = TypeVar("T")
FILES = (("movie.mkv", 2_500_000), ("extras/notes.txt", 20_000), ("extras/cover.jpg", 180_000))


@contextmanager
def chromium(width: int = 1200, height: int = 800) -> Iterator[Any]:
    chrome = require_program("chromium")
    driver_path = require_program("chromedriver")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch a browser or a driver
    os.environ["SE_AVOID_STATS"] = "true"  # nor send its usage statistics
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="te-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chrome
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                     f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # (console, for ``wait``'s message)
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            yield driver
            # (every page a test went through: what the CSP refused would not be shown)
            refusals = [str(e.get("message")) for e in driver.get_log("browser")
                        if "Content Security Policy" in str(e.get("message"))]
            assert refusals == [], refusals
        finally:
            driver.quit()


async def in_thread(fn: Callable[[], T]) -> T:
    """Selenium blocks; the API server runs on this loop, so the browser is driven from a thread."""
    return await anyio.to_thread.run_sync(fn)


def wait(driver: Any, condition: Callable[[Any], Any], limit: float = 60) -> Any:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    # The UI redraws open details every 2 s: an element found a moment ago may be gone.
    try:
        return WebDriverWait(driver, limit, poll_frequency=0.1, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(condition)
    except TimeoutException:
        raise AssertionError(f"waited {limit:g} s in vain; the page: {page_state(driver)}") from None


def job_row(d: Any, job_id: str) -> Any:
    """The list's row of the job ``job_id``."""
    from selenium.webdriver.common.by import By

    return d.find_element(By.CSS_SELECTOR, f'#jobs tr.job[data-job-id="{job_id}"]')


def use_menu(d: Any, job_id: str, action: str) -> None:
    """The jobs' menu opened on ``job_id``'s row (a right-click), its ``action`` clicked."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    ActionChains(d).context_click(job_row(d, job_id).find_element(By.CSS_SELECTOR, ".name")).perform()
    wait(d, lambda d: d.find_element(By.ID, "context-menu").is_displayed())
    d.find_element(By.CSS_SELECTOR, f'#context-menu [data-menu="{action}"]').click()


def answer_prompt(d: Any, text: str) -> None:
    """``text`` typed into the open prompt (as the menu's Category… asks), and Set."""
    from selenium.webdriver.common.by import By

    wait(d, lambda d: d.find_element(By.ID, "prompt-dialog").is_displayed())
    box = d.find_element(By.ID, "prompt-input")
    box.clear()
    box.send_keys(text)
    d.find_element(By.ID, "prompt-ok").click()


def page_state(driver: Any) -> str:
    """What a wait in vain saw: the dialogs open, the focus, the errors shown (the page's and the
    add dialog's) and the browser console's messages: a failure says where the page stood."""
    try:
        shown = driver.execute_script("""
            const text = (id) => (document.getElementById(id) || {}).textContent || "";
            return JSON.stringify({
              dialogs: [...document.querySelectorAll("dialog[open]")].map((d) => d.id),
              focus: (document.activeElement || {}).id || (document.activeElement || {}).tagName,
              errors: text("errors"), add_errors: text("ad-errors"), connection: text("conn-text"),
              add_submit_disabled: (document.getElementById("ad-submit") || {}).disabled,
            });""")
        console = [f"{e.get('level')}: {e.get('message')}" for e in driver.get_log("browser")]
    except Exception as exc:  # (the browser itself may be what failed)
        return f"(not read: {exc!r})"
    return f"{shown}; console: {console}"


async def test_add_watch_pause_resume_cancel_and_history(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="Example Payload"),
                           piece_length=32 * 1024)
    cfg = loopback_config(upload_rate_limit=1_500_000)  # about two seconds: the bar visibly moves
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            with chromium() as driver:
                def job_node(d: Any) -> Any:
                    nodes = d.find_elements(By.CSS_SELECTOR, ".job[data-job-id]")
                    return nodes[0] if nodes else None

                def add() -> None:
                    driver.get(f"{api.url}/#token={TOKEN}")
                    wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
                    # The token left the address bar (and so the history) at once.
                    assert "token" not in driver.current_url
                    driver.find_element(By.ID, "add-source").send_keys(torrent.magnet_uri())
                    driver.find_element(By.CSS_SELECTOR, ".more summary").click()
                    driver.find_element(By.ID, "add-peers").send_keys(f"127.0.0.1:{seeder.listen_port}")
                    driver.find_element(By.ID, "add-button").click()

                await in_thread(add)
                node = await in_thread(lambda: wait(driver, job_node))
                job_id = node.get_attribute("data-job-id")

                def reaches_full() -> list[str]:
                    seen: list[str] = []

                    def full(d: Any) -> bool:
                        text = d.find_element(By.CSS_SELECTOR, ".job .pct").text
                        if not seen or seen[-1] != text:
                            seen.append(text)
                        return text == "100 %"

                    wait(driver, full, 120)
                    return seen

                seen = await in_thread(reaches_full)
                assert seen[-1] == "100 %"
                if os.environ.get("UI_SCREENSHOT"):
                    await in_thread(lambda: driver.save_screenshot(os.environ["UI_SCREENSHOT"]))

                def click(action: str, then_state: str) -> None:
                    wait(driver, lambda d: d.find_element(
                        By.CSS_SELECTOR, f'.job [data-action="{action}"]').is_displayed())
                    driver.find_element(By.CSS_SELECTOR, f'.job [data-action="{action}"]').click()
                    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".job .state").text.lower()
                         == then_state)

                await in_thread(lambda: click("pause", "paused"))
                assert api.service.get(job_id).state == "paused"
                await in_thread(lambda: click("resume", "seeding"))

                def details() -> list[str]:
                    driver.find_element(By.CSS_SELECTOR, '.job [data-action="details"]').click()
                    driver.find_element(By.CSS_SELECTOR, '#details [data-sub="content"]').click()
                    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#details tr.tree-file td.path"))
                    return [e.get_attribute("data-path")
                            for e in driver.find_elements(By.CSS_SELECTOR, "#details tr.tree-file td.path")]

                assert sorted(await in_thread(details)) == sorted(
                    f"Example Payload/{path}" for path, _ in FILES)

                def stream_links() -> list[str]:
                    def links(d: Any) -> list[Any]:
                        return list(d.find_elements(By.CSS_SELECTOR, "#details a.stream"))

                    wait(driver, lambda d: len(links(d)) == len(FILES))
                    return [e.get_attribute("href") for e in links(driver)]

                links = await in_thread(stream_links)
                # a player given only the link gets the file (no API token: the link's stream token)
                async with httpx.AsyncClient(timeout=30) as player:
                    for href in links:
                        r = await player.get(href, headers={"Range": "bytes=0-99"})
                        assert r.status_code == 206, href
                        index = int(href.split("/files/")[1].split("/")[0])
                        path = Path(*torrent.files[index].path)
                        assert r.content == (tmp_path / "seed" / path).read_bytes()[:100]

                def skip_a_file() -> int:
                    def click_second(d: Any) -> int:
                        box = d.find_elements(By.CSS_SELECTOR, "#details input[data-file-index]")[1]
                        assert box.is_selected()
                        index = int(box.get_attribute("data-file-index"))
                        box.click()
                        return index

                    index: int = wait(driver, click_second)
                    selector = f'#details input[data-file-index="{index}"]'
                    # Unticked and enabled again: the box waits (disabled) for the server's answer
                    # (an error the server answered instead is shown, and fails the test).
                    def answered(d: Any) -> bool:
                        if d.find_elements(By.CSS_SELECTOR, ".error"):
                            return True
                        box = d.find_element(By.CSS_SELECTOR, selector)
                        return not box.is_selected() and box.is_enabled()

                    wait(driver, answered)
                    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".error")]
                    assert not errors, errors
                    return index

                skipped = await in_thread(skip_a_file)
                assert not next(f for f in api.service.get(job_id).files if f.index == skipped).selected
                assert sum(f.selected for f in api.service.get(job_id).files) == len(FILES) - 1

                def cancel_with_delete() -> None:
                    driver.find_element(By.CSS_SELECTOR, '.job [data-action="cancel"]').click()
                    driver.find_element(By.ID, "cancel-delete").click()
                    driver.find_element(By.ID, "cancel-confirm").click()
                    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".job[data-job-id]"))
                    driver.find_element(By.ID, "tab-history").click()
                    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".job .state").text.lower()
                         == "cancelled")

                await in_thread(cancel_with_delete)
                assert api.service.get(job_id).state == "cancelled"
                assert not (api.download_root / "Example Payload").exists()

                def clear() -> None:
                    driver.find_element(By.ID, "clear-history").click()
                    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".job[data-job-id]"))

                await in_thread(clear)
                assert api.service.list() == []


async def test_the_start_paused_box_follows_the_add_paused_setting_and_the_add_says_what_it_shows(
        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        await api.service.update_settings(add_paused=True)
        with chromium() as driver:
            def add(link: str, start: bool) -> bool:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
                box = driver.find_element(By.ID, "add-paused")
                shown = wait(driver, lambda d: box.is_selected())  # (the setting: added paused)
                driver.find_element(By.ID, "add-source").send_keys(link)
                if start:
                    driver.find_element(By.CSS_SELECTOR, ".more summary").click()
                    box.click()  # (unticked: this add starts, whatever the setting)
                driver.find_element(By.ID, "add-button").click()
                # (added once the field is emptied: the page loaded again before that ends the add)
                wait(driver, lambda d: d.find_element(By.ID, "add-source").get_attribute("value") == "")
                return bool(shown)

            held, started = f"magnet:?xt=urn:btih:{'a' * 40}", f"magnet:?xt=urn:btih:{'b' * 40}"
            assert await in_thread(lambda: add(held, start=False))
            assert await in_thread(lambda: add(started, start=True))
            with anyio.fail_after(10):
                while len(api.service.list()) < 2:
                    await anyio.sleep(0.05)
            paused = {j.info_hash: j.options.paused for j in api.service.list()}
            assert paused == {"a" * 40: True, "b" * 40: False}


async def test_errors_are_shown_and_narrow_window_works(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        with chromium(width=380, height=760) as driver:
            def bad_magnet() -> str:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "conn-text").get_attribute("textContent")
                     == "live")
                driver.find_element(By.ID, "add-source").send_keys("magnet:?xt=urn:btih:zzz")
                driver.find_element(By.ID, "add-button").click()
                error = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".error"))[0]
                # Nothing sticks out sideways on a phone-sized window.
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 0
                return str(error.text)

            assert "magnet" in (await in_thread(bad_magnet)).lower()
            assert api.service.list() == []


# Wraps the page's fetch: while window.holdChanges is true a PATCH is held (as a slow server
# would hold it) until window.releaseChanges() is called; window.answered counts GET answers.
HOLD_CHANGES = """
window.holdChanges = false; window.answered = 0;
const held = [];
window.releaseChanges = () => { window.holdChanges = false; for (const go of held.splice(0)) go(); };
const realFetch = window.fetch;
window.fetch = async function (path, opts) {
  const method = (opts && opts.method) || "GET";
  if (method === "PATCH" && window.holdChanges) await new Promise((go) => held.push(go));
  const res = await realFetch.apply(this, arguments);
  if (method === "GET" && !String(path).includes("/api/events")) window.answered++;
  return res;
};
"""


async def test_a_file_change_the_server_has_not_answered_is_never_shown_stale(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="Example Payload"),
                           piece_length=32 * 1024)
    async with running_api(tmp_path) as api:
        job, _ = await api.service.add(torrent, paused=True)
        with chromium() as driver:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOLD_CHANGES})

            def untick_while_held() -> tuple[int, list[tuple[bool, bool]]]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
                details = '.job [data-action="details"]'
                wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, details)).click()
                driver.find_element(By.CSS_SELECTOR, '#details [data-sub="content"]').click()
                boxes = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR,
                                                               "#details input[data-file-index]"))
                index = int(boxes[1].get_attribute("data-file-index"))
                selector = f'#details input[data-file-index="{index}"]'
                driver.execute_script("window.holdChanges = true")
                wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).is_selected())
                driver.find_element(By.CSS_SELECTOR, selector).click()
                seen: list[tuple[bool, bool]] = []

                def box_state() -> tuple[bool, bool]:
                    box = driver.find_element(By.CSS_SELECTOR, selector)
                    return box.is_selected(), box.is_enabled()

                seen.append(box_state())
                # Two refreshes of the details answered while the change is held: the view must
                # keep the choice (waiting for the server), not redraw what the server had before.
                answered = driver.execute_script("return window.answered")
                wait(driver, lambda d: d.execute_script("return window.answered") >= answered + 2, 15)
                seen.append(box_state())
                return index, seen

            index, seen = await in_thread(untick_while_held)
            assert seen == [(False, False), (False, False)]  # unticked, disabled until answered
            assert next(f for f in api.service.get(job.id).files if f.index == index).selected

            def release() -> None:
                driver.execute_script("window.releaseChanges()")
                selector = f'#details input[data-file-index="{index}"]'
                wait(driver, lambda d: (lambda box: not box.is_selected() and box.is_enabled())(
                    d.find_element(By.CSS_SELECTOR, selector)))

            await in_thread(release)
            assert not next(f for f in api.service.get(job.id).files if f.index == index).selected


async def test_a_stuck_job_shows_why(tmp_path: Path) -> None:
    """A magnet with no possible peer source: the job's card says why it is stuck and since when."""
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        api.service.manager.config.stall_after = 0.3  # (read by each session as it starts)
        added = await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "ef" * 20
                                                          + "&dn=stuck"})
        assert added.status_code == 201, added.text
        with chromium() as driver:
            def stall_line() -> str:
                driver.get(f"{api.url}/#token={TOKEN}")
                line = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".job .stall-line"))[0]
                return str(line.text)

            shown = await in_thread(stall_line)
    assert shown.startswith("Stalled since") and "no peer sources" in shown, shown


async def test_a_complete_download_that_cannot_reach_its_save_path_shows_why(tmp_path: Path) -> None:
    """Complete in its incomplete folder, a job whose save path has a file of its name with other
    data stays where it is: its card says so, and why."""
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        payload = make_payload(api.download_root / "part", FILES, name="Example Payload")
        torrent = make_torrent(payload, piece_length=32 * 1024)
        theirs = api.download_root / "done" / "Example Payload" / "extras" / "notes.txt"
        await add_kept_from_its_save_path(api, torrent, theirs, b"the user's own notes")
        with chromium() as driver:
            def stall_line() -> str:
                driver.get(f"{api.url}/#token={TOKEN}")
                line = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".job .stall-line"), 20)[0]
                return str(line.text)

            shown = await in_thread(stall_line)
        assert theirs.read_bytes() == b"the user's own notes"
    assert shown.startswith("Not moved since") and "other data" in shown and "/part" in shown, shown


async def test_the_charts_draw_the_rate_and_peers_of_the_last_hour(tmp_path: Path) -> None:
    """The small charts: the server's samples on load, then the live ones, as polylines."""
    from selenium.webdriver.common.by import By

    torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="Example Payload"),
                           piece_length=32 * 1024)
    cfg = loopback_config(upload_rate_limit=400_000)  # about seven seconds of download
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path, history_interval=0.5) as api:
            added = await api.client.post("/api/jobs", json={
                "source": torrent.magnet_uri(), "peers": [f"127.0.0.1:{seeder.listen_port}"]})
            assert added.status_code == 201, added.text
            with anyio.fail_after(30):
                while api.service.stats().download_rate == 0:  # the server samples a download
                    await anyio.sleep(0.1)
            await anyio.sleep(1.5)
            history = (await api.client.get("/api/stats/history")).json()
            assert history["interval"] == 0.5
            assert any(s["download_rate"] > 0 and s["peers"] == 1 for s in history["samples"]), history
            with chromium() as driver:
                def charts() -> tuple[int, int, str, str]:
                    driver.get(f"{api.url}/#token={TOKEN}")
                    wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")

                    def drawn(d: Any) -> bool:
                        down = d.find_element(By.ID, "chart-down").get_attribute("points").split()
                        top = d.find_element(By.ID, "chart-rate-max").text
                        return len(down) >= 4 and top.startswith("top")

                    wait(driver, drawn, 30)
                    down = driver.find_element(By.ID, "chart-down").get_attribute("points").split()
                    peers = driver.find_element(By.ID, "chart-peers-line").get_attribute("points").split()
                    heights = {float(p.split(",")[1]) for p in down}
                    if os.environ.get("UI_CHARTS_SCREENSHOT"):
                        driver.save_screenshot(os.environ["UI_CHARTS_SCREENSHOT"])
                    return (len(down), len(heights), driver.find_element(By.ID, "chart-rate-max").text,
                            driver.find_element(By.ID, "chart-peers-now").text) if peers else (0, 0, "", "")

                points, heights, top, peers_now = await in_thread(charts)
    assert points >= 4 and heights >= 2, (points, heights)  # a line that rises off the floor
    assert top.startswith("top ") and "/s" in top, top
    assert "top 1" in peers_now, peers_now


def side(driver: Any, filter: str, value: str) -> Any:
    """The sidebar's entry of ``filter`` (status, category, tag) for ``value`` ("": all)."""
    from selenium.webdriver.common.by import By

    for b in driver.find_elements(By.CSS_SELECTOR, f'#sidebar button[data-filter="{filter}"]'):
        if b.get_attribute("data-value") == value:
            return b
    raise AssertionError(f"no {filter} entry {value!r} in the sidebar")


def side_counts(driver: Any, filter: str) -> dict[str, str]:
    """The counts the sidebar shows for ``filter``'s entries, by value."""
    return dict(driver.execute_script(
        "return [...document.querySelectorAll(`#sidebar button[data-filter='${arguments[0]}']`)]"
        ".map((b) => [b.dataset.value, b.querySelector('.count').textContent])", filter))


def _magnet(i: int) -> str:
    return f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i:05d}"


async def test_ten_thousand_jobs_scroll_sort_filter_search_and_bulk_actions(tmp_path: Path) -> None:
    """10 000 jobs: the table draws only the rows in view, scrolls to the last, sorts, filters by
    category, tag and status from the sidebar (each with its count), searches, and pauses or
    resumes exactly the filtered selection."""
    from selenium.webdriver.common.by import By

    n = 10_000
    async with running_api(tmp_path) as api:
        service = api.service
        await service.create_category("linux")
        plain = [_magnet(i) for i in range(n) if i % 10]
        linux = [_magnet(i) for i in range(n) if i % 10 == 0]
        await service.add_many(plain, AddOptions(paused=True))
        await service.add_many(linux, AddOptions(paused=True, features=JobFeatures(
            category="linux", tags=("iso",))))
        everything = service.list()
        assert len(everything) == n and all(j.state is JobState.PAUSED for j in everything)
        newest = max(everything, key=lambda j: (j.created_at, j.number))
        with chromium(1280, 900) as driver:
            def count(d: Any) -> int:
                return int("".join(c for c in d.find_element(By.ID, "view-count").text if c.isdigit()) or 0)

            def names(d: Any) -> list[str]:
                return [e.text for e in d.find_elements(By.CSS_SELECTOR, "#jobs tr.job .name")]

            def first_name(d: Any) -> str:
                shown = names(d)
                return shown[0] if shown else ""

            def rows_in_dom(d: Any) -> int:
                return int(d.execute_script("return document.querySelectorAll('tr').length"))

            def open_and_scroll() -> tuple[int, int, str]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == str(n), 120)
                wait(driver, lambda d: count(d) == n)
                rows = rows_in_dom(driver)
                driver.execute_script(
                    "const s = document.getElementById('jobs-scroll'); s.scrollTop = s.scrollHeight")
                last = wait(driver, lambda d: d.find_elements(
                    By.CSS_SELECTOR, f'#jobs tr.job[data-job-id="{newest.id}"]'))[0]
                assert last.is_displayed()
                return rows, rows_in_dom(driver), str(last.find_element(By.CSS_SELECTOR, ".name").text)

            rows_at_top, rows_at_end, last_name = await in_thread(open_and_scroll)
            assert rows_at_top < 200 and rows_at_end < 200, (rows_at_top, rows_at_end)
            assert last_name == newest.name

            def sort_by_name() -> tuple[str, str]:
                driver.find_element(By.CSS_SELECTOR, 'button.sort[data-sort="name"]').click()
                wait(driver, lambda d: first_name(d) == "job-00000")
                driver.find_element(By.CSS_SELECTOR, 'button.sort[data-sort="name"]').click()
                wait(driver, lambda d: first_name(d) == f"job-{n - 1:05d}")
                return first_name(driver), driver.find_element(
                    By.CSS_SELECTOR, '.jobs-table th[data-sort="name"]').get_attribute("aria-sort")

            assert await in_thread(sort_by_name) == (f"job-{n - 1:05d}", "descending")

            def by_category_and_tag() -> tuple[dict[str, str], dict[str, str], set[str], int, int]:
                categories, tags = side_counts(driver, "category"), side_counts(driver, "tag")
                side(driver, "category", "linux").click()
                wait(driver, lambda d: count(d) == n // 10)
                tails = {name[-1] for name in names(driver)}
                side(driver, "tag", "\u0000").click()  # (untagged, within linux: none)
                wait(driver, lambda d: count(d) == 0)
                side(driver, "tag", "iso").click()
                wait(driver, lambda d: count(d) == n // 10)
                pressed = side(driver, "tag", "iso").get_attribute("aria-pressed")
                side(driver, "category", "").click()
                side(driver, "tag", "").click()
                wait(driver, lambda d: count(d) == n)
                assert pressed == "true"
                return categories, tags, tails, n // 10, count(driver)

            categories, tags, tails, linux_shown, everything_shown = await in_thread(by_category_and_tag)
            every, untagged, tenth = f"{n:,}", f"{n - n // 10:,}", f"{n // 10:,}"
            assert categories == {"": every, "\u0000": untagged, "linux": tenth}, categories
            assert tags == {"": every, "\u0000": untagged, "iso": tenth}, tags
            assert (tails, linux_shown, everything_shown) == ({"0"}, n // 10, n)
            statuses = await in_thread(lambda: side_counts(driver, "status"))
            assert statuses["paused"] == statuses["downloading"] == statuses["inactive"] == f"{n:,}", statuses
            assert statuses["running"] == statuses["seeding"] == statuses["active"] == "0", statuses

            wanted = {f"job-{i:05d}" for i in range(120, 130)}

            def search_select_resume() -> list[str]:
                driver.find_element(By.ID, "search").send_keys("JOB-0012")  # (any case)
                wait(driver, lambda d: count(d) == len(wanted))
                shown = names(driver)
                driver.find_element(By.ID, "select-all").click()
                wait(driver, lambda d: d.find_element(By.ID, "bulk-count").text == str(len(wanted)))
                driver.find_element(By.CSS_SELECTOR, '[data-bulk="resume"]').click()
                wait(driver, lambda d: all(e.text.lower() != "paused" for e in d.find_elements(
                    By.CSS_SELECTOR, "#jobs tr.job .state")))
                return shown

            assert set(await in_thread(search_select_resume)) == wanted
            running = {j.name: j.state for j in service.list() if j.state is not JobState.PAUSED}
            assert set(running) == wanted, sorted(running)[:20]
            assert len(set(running.values())) == 1  # (no peers: waiting for the metadata, or queued)

            def sort_by_state() -> list[str]:
                search = driver.find_element(By.ID, "search")
                search.clear()
                search.send_keys(" ")  # (an input event: the search box is empty again)
                wait(driver, lambda d: count(d) == n)
                driver.find_element(By.CSS_SELECTOR, 'button.sort[data-sort="state"]').click()
                wait(driver, lambda d: first_name(d) in wanted)
                if os.environ.get("UI_10K_SCREENSHOT"):
                    driver.save_screenshot(os.environ["UI_10K_SCREENSHOT"])
                return names(driver)[:len(wanted) + 1]

            # (the resumed jobs' state sorts before "paused")
            first = await in_thread(sort_by_state)
            assert set(first[:-1]) == wanted and first[-1] not in wanted, first

            def filter_state_and_pause() -> list[str]:
                side(driver, "status", "running").click()
                wait(driver, lambda d: count(d) == len(wanted))
                assert side_counts(driver, "status")["running"] == str(len(wanted))
                shown = names(driver)
                # (the selection made before is still there: cleared, then made again)
                driver.find_element(By.ID, "bulk-clear").click()
                wait(driver, lambda d: not d.find_element(By.ID, "bulk").is_displayed())
                driver.find_element(By.ID, "select-all").click()
                wait(driver, lambda d: d.find_element(By.ID, "bulk-count").text == str(len(wanted)))
                driver.find_element(By.CSS_SELECTOR, '[data-bulk="pause"]').click()
                wait(driver, lambda d: count(d) == 0)  # (paused: they left the filtered list)
                return shown

            assert set(await in_thread(filter_state_and_pause)) == wanted
            assert all(j.state is JobState.PAUSED for j in service.list())


async def test_sidebar_counts_collapses_and_is_a_drawer_on_a_phone(tmp_path: Path) -> None:
    """The sidebar's status, category and tag entries count the tab's jobs; it collapses (kept
    by the browser across a reload); a state badge fits its column at 1 400 px; at 400 px the
    page has no sideways scrolling and the sidebar is a drawer, closed once a filter is chosen."""
    from selenium.webdriver.common.by import By

    torrent = make_torrent(make_payload(tmp_path / "nowhere", FILES, name="Long Downloading Name"),
                           piece_length=32 * 1024)
    async with running_api(tmp_path) as api:
        await api.service.create_category("films")
        downloading, _ = await api.service.add(torrent.to_bytes(), AddOptions())  # (no peer: downloading)
        await api.service.add(_magnet(1), AddOptions(paused=True, features=JobFeatures(category="films",
                                                                                       tags=("hd",))))
        await api.service.add(_magnet(2), AddOptions(paused=True))

        def fits(d: Any) -> bool:
            return bool(d.execute_script(
                "const s = document.querySelector(`tr.job[data-job-id='${arguments[0]}'] .state`);"
                "const c = s.closest('td').getBoundingClientRect(), r = s.getBoundingClientRect();"
                "return s.textContent === 'downloading' && r.right <= c.right && r.width > 0",
                downloading.id))

        with chromium(1400, 900) as driver:
            def wide() -> tuple[dict[str, str], dict[str, str], dict[str, str], bool, bool, bool, bool]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "3")
                wait(driver, fits)
                statuses = side_counts(driver, "status")
                categories, tags = side_counts(driver, "category"), side_counts(driver, "tag")
                if os.environ.get("UI_SIDEBAR_SCREENSHOT"):
                    driver.save_screenshot(os.environ["UI_SIDEBAR_SCREENSHOT"])
                toggle = driver.find_element(By.ID, "sidebar-toggle")
                toggle.click()
                hidden = not driver.find_element(By.ID, "sidebar").is_displayed()
                driver.refresh()
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "3")
                still_hidden = not driver.find_element(By.ID, "sidebar").is_displayed()
                expanded = driver.find_element(By.ID, "sidebar-toggle").get_attribute("aria-expanded")
                driver.find_element(By.ID, "sidebar-toggle").click()
                shown_again = driver.find_element(By.ID, "sidebar").is_displayed()
                return statuses, categories, tags, hidden, still_hidden, expanded == "false", shown_again

            statuses, categories, tags, *collapsing = await in_thread(wide)
        assert [statuses[k] for k in ("", "downloading", "paused", "running")] == ["3", "3", "2", "1"]
        assert statuses["stalled"] == "1" and statuses["seeding"] == statuses["errored"] == "0", statuses
        assert categories == {"": "3", "\u0000": "2", "films": "1"}, categories
        assert tags == {"": "3", "\u0000": "2", "hd": "1"}, tags
        assert collapsing == [True, True, True, True]

        with chromium(400, 800) as driver:
            def phone() -> tuple[bool, bool, bool, bool, int, int]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "3")
                wait(driver, fits)
                sideways = driver.execute_script(
                    "return document.documentElement.scrollWidth > window.innerWidth")
                closed = not driver.find_element(By.ID, "sidebar").is_displayed()
                driver.find_element(By.ID, "sidebar-toggle").click()
                opened = driver.find_element(By.ID, "sidebar").is_displayed()
                if os.environ.get("UI_PHONE_SCREENSHOT"):
                    driver.save_screenshot(os.environ["UI_PHONE_SCREENSHOT"])
                side(driver, "category", "films").click()
                wait(driver, lambda d: d.find_element(By.ID, "view-count").text == "1")
                closed_after = not driver.find_element(By.ID, "sidebar").is_displayed()
                return (bool(sideways), closed, opened, closed_after,
                        driver.execute_script("return document.documentElement.scrollWidth"),
                        driver.execute_script("return window.innerWidth"))

            sideways, closed, opened, closed_after, width, window_width = await in_thread(phone)
        assert not sideways, (width, window_width)
        assert (closed, opened, closed_after) == (True, True, True)


async def test_columns_are_chosen_sorted_by_and_kept_by_the_browser(tmp_path: Path) -> None:
    """The Columns menu adds qBittorrent's columns (category, tags, ratio, save path, time
    active, availability, total size …), each sortable by its head; the choice survives a reload; a column
    taken away leaves the table."""
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        for name in ("zeta", "alpha", "mid"):
            await api.service.create_category(name)
        for i, category in enumerate(("zeta", "alpha", "mid")):  # (trackers: paused, never announced to)
            added, _ = await api.service.add(
                _magnet(i) + f"&tr=http%3A%2F%2Ftracker-{category}.invalid%2Fannounce",
                AddOptions(paused=True, features=JobFeatures(category=category, tags=(f"t{i}",))))
        ran = api.service._run.jobs.get(added.id)  # (as a record restored after 1 h 2 min downloading)
        assert ran is not None
        ran.downloading_time = 3725.0
        ran.file_sizes, ran.pad_files = [3 * 2**20, 2**19, 2**19], [1]  # (metadata known, a pad file)
        api.service._run.live_views.pop(ran.id, None)  # (its views made again, as the metadata's
        api.service._run.decorated.pop(ran.id, None)  # arrival has them made: news of the job)
        api.service._run.marks.mark(ran)

        def heads(d: Any) -> list[str]:
            found = d.find_elements(By.CSS_SELECTOR, "#jobs-head th[data-col]")
            return [str(th.get_attribute("data-col")) for th in found]

        def cells(d: Any, key: str) -> list[str]:
            found = d.find_elements(By.CSS_SELECTOR, f'#jobs tr.job td[data-col="{key}"]')
            return [str(td.text) for td in found]

        def choose(d: Any, key: str) -> None:
            if not d.find_element(By.ID, "columns").get_attribute("open"):
                d.find_element(By.CSS_SELECTOR, "#columns summary").click()
            d.find_element(By.CSS_SELECTOR, f'#columns-list input[value="{key}"]').click()

        with chromium(1400, 900) as driver:
            def run() -> tuple[list[str], list[str], list[str], list[str], list[str], list[str]]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "3")
                default = heads(driver)
                choose(driver, "category")
                choose(driver, "tags")
                choose(driver, "size")  # (taken away)
                wait(driver, lambda d: "category" in heads(d) and "size" not in heads(d))
                driver.find_element(By.CSS_SELECTOR, 'button.sort[data-sort="category"]').click()
                wait(driver, lambda d: cells(d, "category") == ["alpha", "mid", "zeta"])
                tags = cells(driver, "tags")
                if os.environ.get("UI_COLUMNS_SCREENSHOT"):
                    driver.save_screenshot(os.environ["UI_COLUMNS_SCREENSHOT"])
                driver.find_element(By.CSS_SELECTOR, 'button.sort[data-sort="category"]').click()
                wait(driver, lambda d: cells(d, "category") == ["zeta", "mid", "alpha"])
                choose(driver, "tracker")
                hosts = [f"tracker-{c}.invalid" for c in ("zeta", "mid", "alpha")]
                wait(driver, lambda d: cells(d, "tracker") == hosts)
                choose(driver, "tracker")  # (taken away again)
                wait(driver, lambda d: "tracker" not in heads(d))
                choose(driver, "time_active")  # (one ran 1 h 2 min before it was paused)
                choose(driver, "availability")  # (blank: paused, no swarm to count copies in)
                wait(driver, lambda d: sorted(cells(d, "time_active")) == ["", "", "1h 2m"])
                wait(driver, lambda d: cells(d, "availability") == ["", "", ""])
                choose(driver, "time_active")
                choose(driver, "availability")
                wait(driver, lambda d: "time_active" not in heads(d) and "availability" not in heads(d))
                choose(driver, "total_size")  # (the whole torrent, pad files left out; blank: no metadata)
                wait(driver, lambda d: sorted(cells(d, "total_size")) == ["", "", "3.50 MiB"])
                choose(driver, "total_size")
                wait(driver, lambda d: "total_size" not in heads(d))
                driver.refresh()
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "3")
                wait(driver, lambda d: len(cells(d, "category")) == 3)
                return (default, heads(driver), tags, cells(driver, "tags"), cells(driver, "size"),
                        cells(driver, "category"))

            default, after_reload, tags, tags_again, sizes, categories = await in_thread(run)
        assert default == ["state", "progress", "size", "down", "up", "added"], default
        assert after_reload == ["state", "progress", "down", "up", "category", "tags", "added"], after_reload
        assert tags == ["t1", "t2", "t0"] and sizes == [], (tags, sizes)
        assert len(tags_again) == 3 and sorted(categories) == ["alpha", "mid", "zeta"]


async def test_a_right_click_menu_and_the_keyboard_act_on_the_selection(tmp_path: Path) -> None:
    """The menu of a right-clicked row acts on it (or on the selection it is in): pause and
    resume together, a category set (an unknown one refused with the server's reason), tags,
    first and last pieces, the magnet link copied; a click on a row opens its details, a
    double-click pauses it; arrows, Enter, Ctrl-A, Delete and "/" from the keyboard."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    async with running_api(tmp_path) as api:
        service = api.service
        await service.create_category("films")
        added = [(await service.add(_magnet(i), AddOptions(paused=True)))[0] for i in range(3)]
        ids = [j.id for j in added]

        row, menu, answer = job_row, use_menu, answer_prompt

        with chromium(1400, 900) as driver:
            driver.execute_cdp_cmd("Browser.grantPermissions", {
                "origin": api.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})

            def by_menu() -> tuple[str, str, list[str]]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "3")
                for job_id in ids[:2]:  # (two ticked: the menu of either acts on both)
                    row(driver, job_id).find_element(By.CSS_SELECTOR, "input[data-select]").click()
                menu(driver, ids[0], "resume")
                menu(driver, ids[1], "category")
                answer(driver, "nowhere")
                refused = wait(driver, lambda d: d.find_element(By.ID, "errors").text)
                menu(driver, ids[1], "category")
                answer(driver, "films")
                menu(driver, ids[0], "tags")
                answer(driver, "hd, new")
                menu(driver, ids[0], "first_last_piece")
                menu(driver, ids[0], "auto_managed")  # (both to the category's folder: films)
                menu(driver, ids[2], "copy_magnet")  # (not in the selection: it alone)
                selected = driver.find_element(By.ID, "bulk-count").text
                copied = wait(driver, lambda d: d.execute_async_script(
                    "navigator.clipboard.readText().then(arguments[0], () => arguments[0](''))"))
                return refused, copied, [selected]

            refused, copied, (selected,) = await in_thread(by_menu)
            assert "nowhere" in refused, refused
            assert copied == _magnet(2) and selected == "1", (copied, selected)

            async def settled() -> None:
                with anyio.fail_after(20):
                    while not (service.get(ids[0]).features.first_last_piece
                               and service.get(ids[1]).features.auto_managed):
                        await anyio.sleep(0.05)

            await settled()
            first, second, third = (service.get(i) for i in ids)
            assert first.state is not JobState.PAUSED and second.state is not JobState.PAUSED
            assert third.state is JobState.PAUSED
            assert first.features.category == second.features.category == "films"
            assert not third.features.category
            assert first.features.tags == second.features.tags == ("hd", "new")
            assert second.features.first_last_piece is True and not third.features.first_last_piece
            films = str((api.download_root / "films").resolve())
            assert first.options.save_path == second.options.save_path == films
            assert first.features.auto_managed and not third.features.auto_managed

            def by_keyboard() -> tuple[str, bool, str, str, bool]:
                body = driver.find_element(By.TAG_NAME, "body")
                driver.find_element(By.ID, "bulk-clear").click()
                driver.find_element(By.CSS_SELECTOR, "#jobs-head th.c-name").click()  # (focus the page)
                ActionChains(driver).send_keys(Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ENTER).perform()
                wait(driver, lambda d: d.find_element(By.ID, "details").is_displayed())
                opened = driver.find_element(By.ID, "details").get_attribute("data-job-id")
                current = driver.find_element(By.CSS_SELECTOR, "#jobs tr.job.current").get_attribute(
                    "data-job-id")
                ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
                wait(driver, lambda d: d.find_element(By.ID, "bulk-count").text == "3")
                ActionChains(driver).send_keys(Keys.DELETE).perform()
                asked = wait(driver, lambda d: d.find_element(By.ID, "cancel-dialog").is_displayed()
                             and d.find_element(By.ID, "cancel-name").text)
                driver.find_element(By.CSS_SELECTOR, '#cancel-dialog button[value="keep"]').click()
                body.send_keys("/")
                searching = driver.switch_to.active_element.get_attribute("id") == "search"
                return str(opened), opened == current, str(asked), str(current), searching

            opened, same, asked, current, searching = await in_thread(by_keyboard)
            assert opened in ids and same and asked == "3 jobs" and searching, (opened, current, asked)
            assert all(not service.get(i).finished for i in ids)  # (kept: the dialog was answered "keep")

            def click_and_double_click() -> str:
                driver.find_element(By.ID, "search").send_keys(Keys.ESCAPE)
                row(driver, ids[2]).find_element(By.CSS_SELECTOR, ".name").click()
                details = driver.find_element(By.ID, "details")
                wait(driver, lambda d: details.get_attribute("data-job-id") == ids[2])
                # (its details opened first: the double-click's first click then changes nothing
                # on the page, where opening them between its two clicks could take the second)
                row(driver, ids[0]).find_element(By.CSS_SELECTOR, ".name").click()
                wait(driver, lambda d: details.get_attribute("data-job-id") == ids[0])
                name = row(driver, ids[0]).find_element(By.CSS_SELECTOR, ".name")
                ActionChains(driver).double_click(name).perform()
                def state(d: Any) -> str:
                    return str(row(d, ids[0]).find_element(By.CSS_SELECTOR, ".state").text.lower())

                wait(driver, lambda d: state(d) == "paused")
                return state(driver)

            assert await in_thread(click_and_double_click) == "paused"
            assert service.get(ids[0]).state is JobState.PAUSED


async def test_the_status_bar_shows_limits_free_space_dht_port_and_toggles_the_alternative_speed(
        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    (tmp_path / "state").mkdir()  # (the runs before this one: 5 GiB down, 12.5 GiB up, 3 starts)
    (tmp_path / "state" / "stats.json").write_text(
        '{"downloaded": 5368709120, "uploaded": 13421772800, "added": 7, "session_count": 3}')
    async with running_api(tmp_path) as api:
        await api.service.update_settings(download_limit=2_097_152, alt_download_limit=102_400)
        shared = api.service.manager.shared
        await shared.acquire()  # (the listener runs, as for a torrent's session)

        def text(d: Any, element_id: str) -> str:
            return str(d.find_element(By.ID, element_id).text)

        with chromium(1400, 900) as driver:
            def run() -> tuple[str, ...]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: text(d, "sb-down-limit") == "[2.00 MiB/s]")
                free = wait(driver, lambda d: text(d, "sb-free") != "?" and text(d, "sb-free"))
                conn = wait(driver, lambda d: text(d, "sb-conn") == "connected" and "connected")
                driver.find_element(By.ID, "sb-alt").click()
                wait(driver, lambda d: text(d, "sb-down-limit") == "[100 KiB/s]")
                pressed = driver.find_element(By.ID, "sb-alt").get_attribute("aria-pressed")
                covered = driver.execute_script(  # (the bar hides no row: the list ends above it)
                    "return document.getElementById('jobs-scroll').getBoundingClientRect().bottom"
                    " <= document.getElementById('statusbar').getBoundingClientRect().top")
                alltime = wait(driver, lambda d: "GiB" in text(d, "sb-alltime") and text(d, "sb-alltime"))
                firewalled = wait(driver, lambda d: text(d, "sb-port") != "?" and text(d, "sb-port"))
                shared.reached_from_outside = True  # (as a peer from outside does)
                reachable = wait(driver, lambda d: text(d, "sb-port") == "reachable" and str(
                    d.find_element(By.ID, "sb-port-state").get_attribute("title")))
                return (free, conn, str(pressed), str(covered), text(driver, "sb-dht"),
                        text(driver, "sb-up-limit"), text(driver, "sb-down-data"), alltime,
                        str(driver.find_element(By.ID, "sb-alltime").get_attribute("title")),
                        firewalled, reachable)

            free, conn, pressed, above, dht, up_limit, session, alltime, said, firewalled, reachable = \
                await in_thread(run)
        assert free.endswith("B") and conn == "connected" and pressed == "true" and above == "True"
        assert dht == "0" and up_limit == "", (dht, up_limit)
        # (this run's bytes beside the rate; every run's, with the ratio, beside)
        assert session == "(0 B)" and alltime == "All time: ↓ 5.00 GiB ↑ 12.5 GiB ratio 2.50", alltime
        assert "4 start(s)" in said and "7 torrent(s) added" in said, said
        # (the listening port: no peer from outside this host yet, then one)
        assert firewalled == "firewalled", firewalled
        assert reachable.startswith(f"port {shared.listen_port}: peers from"), reachable
        await shared.release()
        assert api.service.settings.alt_speed_enabled is True


async def test_the_styles_the_script_sets_pass_the_content_security_policy(tmp_path: Path) -> None:
    """The list's column widths and the add dialog's file tree indents are styles the page's
    script sets: the CSP (``style-src 'self'``) refuses them as style attributes, so they are set
    through each element's style. They apply, and the browser logs no refusal."""
    from selenium.webdriver.common.by import By

    torrent = make_torrent(make_payload(tmp_path / "made", FILES, name="Styled"), piece_length=32 * 1024)
    path = tmp_path / "styled.torrent"
    path.write_bytes(torrent.to_bytes())
    async with running_api(tmp_path) as api:
        def run() -> tuple[list[list[str]], list[list[str]], list[str]]:
            driver.get(f"{api.url}/#token={TOKEN}")
            wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
            widths = driver.execute_script(
                "return [...document.querySelectorAll('#jobs-head th[data-col]')].map("
                "(th) => [th.style.width, Math.round(th.getBoundingClientRect().width) + 'px'])")
            driver.find_element(By.ID, "add-open").click()
            driver.find_element(By.ID, "ad-files").send_keys(str(path))
            wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#ad-trees input[data-index]"))
            indents = driver.execute_script(
                "return [...document.querySelectorAll('#ad-trees li')].map((li) => "
                "[li.querySelector('.fname').textContent, getComputedStyle(li).paddingLeft])")
            refusals = [str(e.get("message")) for e in driver.get_log("browser")
                        if "Content Security Policy" in str(e.get("message"))]
            return widths, indents, refusals

        with chromium(1600, 900) as driver:
            widths, indents, refusals = await in_thread(run)
    assert refusals == []
    assert widths and all(shown and shown == laid_out for shown, laid_out in widths), widths
    assert indents == [["Styled/", "8px"], ["extras/", "24px"], ["cover.jpg", "40px"], ["notes.txt", "40px"],
                       ["movie.mkv", "24px"]], indents


@pytest.mark.parametrize("width", [1366, 1920])
async def test_the_default_columns_fit_beside_the_sidebar_without_scrolling_sideways(
        tmp_path: Path, width: int) -> None:
    """From a 1366 px wide window up, the list's default columns, the row's actions among them,
    fit beside the open sidebar: the list does not scroll sideways (it did on any screen, its
    actions column cut), and the names get the room left over."""
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        await api.service.add(_magnet(1), AddOptions(paused=True))
        with chromium(width, 900) as driver:
            def run() -> list[int]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "1")
                return [int(n) for n in driver.execute_script(
                    "const s = document.querySelector('.jobs-scroll');"
                    "const row = document.querySelector('#jobs tr.job');"
                    "const name = row.querySelector('.name').getBoundingClientRect();"
                    "const actions = row.querySelector('.c-actions').getBoundingClientRect();"
                    "return [s.scrollWidth, s.clientWidth, name.width,"
                    " Math.ceil(actions.right), Math.floor(s.getBoundingClientRect().right)]")]

            scroll_width, client_width, name_width, actions_right, list_right = await in_thread(run)
    assert scroll_width <= client_width, (scroll_width, client_width)
    assert actions_right <= list_right and name_width >= 180, (actions_right, list_right, name_width)


async def test_the_add_dialog_adds_links_and_files_with_options_and_the_files_chosen(tmp_path: Path) -> None:
    """The add dialog: a magnet and a .torrent at once with a category, tags and start paused;
    the .torrent's files listed from the file itself and one left out before anything is
    written; a refusal (a save path out of the download root) keeps the form and shows the
    server's reason; a .torrent dropped on the
    page opens the dialog with it."""
    import base64

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    torrent = make_torrent(make_payload(tmp_path / "made", FILES, name="Dialog Payload"),
                           piece_length=32 * 1024)
    path = tmp_path / "dialog.torrent"
    path.write_bytes(torrent.to_bytes())
    dropped = make_torrent(make_payload(tmp_path / "made2", (("one.bin", 70_000),), name="Dropped"),
                           piece_length=16 * 1024)
    async with running_api(tmp_path) as api:
        service = api.service
        await service.create_category("films")

        def run() -> tuple[list[str], str, str, str, str]:
            driver.get(f"{api.url}/#token={TOKEN}")
            wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
            driver.find_element(By.ID, "add-open").click()
            wait(driver, lambda d: d.find_element(By.ID, "add-dialog").is_displayed())
            driver.find_element(By.ID, "ad-links").send_keys(_magnet(7), Keys.ENTER, f"{9:040x}")
            driver.find_element(By.ID, "ad-files").send_keys(str(path))

            def unchecked(d: Any) -> tuple[list[str], str] | None:
                """extras/notes.txt not downloaded: the files listed and the size said. (The tree
                is drawn again as the links' look-ups end, the choices kept: each step looks anew.)"""
                boxes = d.find_elements(By.CSS_SELECTOR, "#ad-trees input[data-index]")
                if len(boxes) < 2:
                    return None
                if boxes[1].is_selected():
                    boxes[1].click()
                    return None
                return ([str(b.get_attribute("aria-label")) for b in boxes],
                        d.find_element(By.CSS_SELECTOR, "#ad-trees .item-size").text)

            listed, size = wait(driver, unchecked)
            driver.find_element(By.ID, "ad-category").send_keys("films")
            driver.find_element(By.ID, "ad-save-path").send_keys("../outside")  # (refused: out of the root)
            driver.find_element(By.ID, "ad-tags").send_keys("new, hd")
            driver.find_element(By.ID, "ad-paused").click()
            driver.find_element(By.ID, "ad-submit").click()
            refused = wait(driver, lambda d: d.find_element(By.ID, "ad-errors").text)
            kept = driver.find_element(By.ID, "ad-links").get_attribute("value")
            driver.find_element(By.ID, "ad-save-path").clear()
            driver.find_element(By.ID, "ad-submit").click()
            wait(driver, lambda d: not d.find_element(By.ID, "add-dialog").is_displayed())
            # a .torrent dropped on the page (a drop event with the file, as a browser makes it)
            driver.execute_script("""
                const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
                const data = new DataTransfer();
                data.items.add(new File([bytes], "dropped.torrent", {type: "application/x-bittorrent"}));
                for (const type of ["dragenter", "dragover", "drop"]) {
                  document.body.dispatchEvent(
                    new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
                }""", base64.b64encode(dropped.to_bytes()).decode())
            wait(driver, lambda d: d.find_element(By.ID, "add-dialog").is_displayed())
            names = driver.find_element(By.ID, "ad-file-names").text
            driver.find_element(By.ID, "ad-submit").click()
            wait(driver, lambda d: not d.find_element(By.ID, "add-dialog").is_displayed())
            return listed, size, str(refused), str(kept), str(names)

        with chromium(1400, 900) as driver:
            listed, size, refused, kept, names = await in_thread(run)
        assert listed == ["Dialog Payload/extras/cover.jpg", "Dialog Payload/extras/notes.txt",
                          "Dialog Payload/movie.mkv"], listed  # (the metainfo's order)
        assert size.startswith("2 of 3 files"), size
        assert "save_path" in refused and kept == f"{_magnet(7)}\n{9:040x}", (refused, kept)
        assert names == "dropped.torrent"
        with anyio.fail_after(20):
            while len(service.list()) < 4:
                await anyio.sleep(0.05)
        by_hash = {j.info_hash: j for j in service.list()}
        job = by_hash[torrent.info_hash.hex()]
        assert job.features.category == "films" and set(job.features.tags) == {"new", "hd"}
        assert job.state is JobState.PAUSED
        assert [f.selected for f in job.files] == [True, False, True]
        assert by_hash[f"{8:040x}"].features.category == "films"
        assert dropped.info_hash.hex() in by_hash and f"{9:040x}" in by_hash  # (a bare info-hash: a magnet)


class SettingsView:
    """The web UI's settings view in a driven Chromium: open it, type, save, read a refusal."""

    def __init__(self, driver: Any, url: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.url, self.by = driver, url, By

    def field(self, name: str) -> Any:
        return self.driver.find_element(self.by.ID, f"setting-{name}")

    def open(self, *, reload: bool = False) -> None:
        if reload:  # (the page loaded again: the token is in the session's storage)
            self.driver.refresh()
        else:
            self.driver.get(f"{self.url}/#token={TOKEN}")
        wait(self.driver, lambda d: d.find_element(self.by.ID, "conn-text").text == "live")
        self.driver.find_element(self.by.ID, "settings-open").click()
        wait(self.driver, lambda d: d.find_element(self.by.ID, "setting-download_limit").is_displayed())

    def legends(self) -> list[str]:
        return [e.text for e in self.driver.find_elements(self.by.CSS_SELECTOR, ".settings-group legend")]

    def retype(self, name: str, text: str) -> None:
        self.field(name).clear()
        self.field(name).send_keys(text)

    def save(self, then: str) -> None:
        self.driver.find_element(self.by.ID, "settings-save").click()
        wait(self.driver, lambda d: d.find_element(self.by.ID, "settings-status").text.startswith(then))

    def refused(self, name: str, text: str, good: tuple[str, str]) -> str:
        """Type ``good`` (a good value, which goes with the bad one: not saved either) and the
        bad ``text`` in ``name``, save: the reason shown by that field alone, marked invalid."""
        self.retype(*good)
        self.retype(name, text)
        self.save("Not saved")
        reason = wait(self.driver, lambda d: d.find_element(self.by.ID, f"setting-error-{name}").text)
        assert self.field(name).get_attribute("aria-invalid") == "true"
        others = [e.text for e in self.driver.find_elements(self.by.CSS_SELECTOR, ".field-error") if e.text]
        assert others == [reason]  # (by that field alone)
        return str(reason)


async def test_the_settings_are_shown_changed_kept_and_a_bad_value_is_refused_by_its_field(
        tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        with chromium() as driver:
            view = SettingsView(driver, api.url)

            def change() -> None:
                view.open()
                assert view.legends() == ["Downloads", "Connection", "Speed", "BitTorrent", "RSS", "Web UI",
                                          "Advanced"]
                assert view.field("download_limit").get_attribute("value") == "0"
                assert not view.field("incomplete_dir_enabled").is_selected()
                view.retype("download_limit", "100")  # KiB/s
                view.field("incomplete_dir_enabled").click()
                view.retype("incomplete_dir", "part")
                view.save("Saved.")

            await in_thread(change)
            s = api.service.get_settings()
            part = str(root / "part")
            assert (s.download_limit, s.incomplete_dir_enabled, s.incomplete_dir) == (102400, True, part)

            def kept_after_a_reload() -> tuple[str, bool, str]:
                view.open(reload=True)
                return (view.field("download_limit").get_attribute("value"),
                        view.field("incomplete_dir_enabled").is_selected(),
                        view.field("incomplete_dir").get_attribute("value"))

            assert await in_thread(kept_after_a_reload) == ("100", True, part)
            good = ("max_active_downloads", "7")
            assert "whole number" in await in_thread(lambda: view.refused("upload_limit", "fast", good))
            await in_thread(lambda: view.retype("upload_limit", "0"))
            reason = await in_thread(lambda: view.refused("incomplete_dir", "../outside", good))
            assert "outside the download root" in reason
            s = api.service.get_settings()
            assert (s.upload_limit, s.max_active_downloads, s.incomplete_dir) == (0, 3, part)


async def test_the_watched_folders_and_programs_are_set_in_the_settings_view_and_a_bad_one_named(
        tmp_path: Path) -> None:
    watched = tmp_path / "watch"
    watched.mkdir()
    command = '/usr/bin/logger "done: %N" %I'
    async with running_api(tmp_path) as api:
        with chromium() as driver:
            view = SettingsView(driver, api.url)

            def change() -> None:
                view.open()
                view.retype("watch_folders", f"{watched} => tv-shows")
                view.field("run_on_completed_enabled").click()
                view.retype("run_on_completed", command)
                view.save("Saved.")

            await in_thread(change)
            s = api.service.get_settings()
            assert s.watch_folders == ((str(watched), "tv-shows"),)
            assert s.run_on_completed_enabled and s.run_on_completed == command

            def kept_after_a_reload() -> tuple[str, bool, str]:
                view.open(reload=True)
                return (view.field("watch_folders").get_attribute("value"),
                        view.field("run_on_completed_enabled").is_selected(),
                        view.field("run_on_completed").get_attribute("value"))

            assert await in_thread(kept_after_a_reload) == (f"{watched} => tv-shows", True, command)

            def proxy() -> None:
                view.retype("proxy_url", "socks5://127.0.0.1:1080")
                view.field("proxy_only").click()
                view.save("Saved.")

            await in_thread(proxy)
            s = api.service.get_settings()
            assert (s.proxy_url, s.proxy_only) == ("socks5://127.0.0.1:1080", True)
            good = ("run_timeout", "45")
            assert "ftp" in await in_thread(lambda: view.refused("proxy_url", "ftp://nowhere", good))
            await in_thread(lambda: view.retype("proxy_url", "socks5://127.0.0.1:1080"))
            assert "%Q" in await in_thread(lambda: view.refused("run_on_added", "/bin/echo %Q", good))
            await in_thread(lambda: view.retype("run_on_added", ""))
            reason = await in_thread(lambda: view.refused("watch_folders", str(tmp_path / "nowhere"), good))
            assert "no such folder" in reason
            s = api.service.get_settings()  # (nothing of the refused requests was saved)
            assert s.run_timeout == 60.0 and s.run_on_added == "" and s.watch_folders == (
                (str(watched), "tv-shows"),)


async def test_the_network_settings_are_set_in_the_settings_view_and_a_bad_one_named(tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import Select

    async with running_api(tmp_path) as api:
        with chromium() as driver:
            view = SettingsView(driver, api.url)

            def change() -> None:
                view.open()
                assert view.field("alt_schedule_from").get_attribute("value") == "08:00"
                view.retype("max_connections", "100")
                view.retype("alt_download_limit", "50")  # KiB/s
                view.field("alt_schedule_enabled").click()
                view.retype("alt_schedule_from", "22:30")
                view.retype("alt_schedule_to", "07:00")
                Select(view.field("alt_schedule_days")).select_by_visible_text("weekends")
                view.retype("banned_ips", "203.0.113.9\n2001:db8::1")
                view.save("Saved.")

            await in_thread(change)
            s = api.service.get_settings()
            assert (s.max_connections, s.alt_download_limit, s.alt_schedule_enabled) == (100, 51200, True)
            assert (s.alt_schedule_from, s.alt_schedule_to, s.alt_schedule_days) == (22 * 60 + 30, 7 * 60, 65)
            assert set(s.banned_ips) == {"203.0.113.9", "2001:db8::1"}
            good = ("max_uploads", "9")
            missing = str(tmp_path / "no-list.dat")
            assert await in_thread(lambda: view.refused("ip_filter_path", missing, good))
            await in_thread(lambda: view.retype("ip_filter_path", ""))
            assert await in_thread(lambda: view.refused("alt_schedule_to", "25:99", good))
            await in_thread(lambda: view.retype("alt_schedule_to", "07:00"))
            assert "nope0" in await in_thread(lambda: view.refused("bind_interface", "nope0", good))
            s = api.service.get_settings()
            assert s.max_uploads == -1 and s.ip_filter_path == "" and s.alt_schedule_to == 7 * 60
            assert s.bind_interface == ""


async def test_a_user_signs_in_by_name_and_password_and_sees_their_own_torrents(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from torrent_engine.api.users import UserStore

    store = UserStore(tmp_path / "state")
    store.add("alice", "user", "alice's long password")
    store.add("bob", "user", "bob's long password")
    async with running_api(tmp_path) as api:
        ids = {}
        for who in ("alice", "bob"):
            torrent = make_torrent(make_payload(tmp_path / who, (("a.bin", 40_000),), name=f"{who} payload"))
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
                login = {"name": who, "password": f"{who}'s long password"}
                session = (await c.post("/api/login", json=login)).json()["token"]
                c.headers["Authorization"] = f"Bearer {session}"
                r = await c.post("/api/jobs", json={"source": base64.b64encode(torrent.to_bytes()).decode(),
                                                    "paused": True})
                ids[who] = r.json()["id"]
        with chromium() as driver:
            def sign_in(password: str) -> None:
                driver.find_element(By.ID, "login-name").clear()
                driver.find_element(By.ID, "login-name").send_keys("alice")
                driver.find_element(By.ID, "login-password").send_keys(password)
                driver.find_element(By.CSS_SELECTOR, "#user-login-form button").click()

            def signs_in() -> list[str]:
                driver.get(f"{api.url}/")
                wait(driver, lambda d: d.find_element(By.ID, "login").is_displayed())
                sign_in("not her password")
                said = wait(driver, lambda d: d.find_element(By.ID, "login-error").text)
                assert "wrong user name or password" in said
                sign_in("alice's long password")
                wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".job[data-job-id]"))
                return [n.get_attribute("data-job-id") for n in
                        driver.find_elements(By.CSS_SELECTOR, ".job[data-job-id]")]

            assert await in_thread(signs_in) == [ids["alice"]]  # (bob's is not shown to her)
            # (the daemon's log and the feeds are an admin's: a user is offered neither; the token's admin is)
            await in_thread(lambda: wait(driver, lambda d: not d.find_element(
                By.ID, "log-open").is_displayed()))
            assert not await in_thread(lambda: driver.find_element(By.ID, "feeds-open").is_displayed())

            def offered_automatic_management() -> bool:  # (it saves outside her folder: an admin's)
                from selenium.webdriver.common.action_chains import ActionChains

                row = job_row(driver, ids["alice"]).find_element(By.CSS_SELECTOR, ".name")
                ActionChains(driver).context_click(row).perform()
                wait(driver, lambda d: d.find_element(By.ID, "context-menu").is_displayed())
                return bool(driver.find_element(By.CSS_SELECTOR, '#context-menu [data-menu="auto_managed"]')
                            .is_displayed())

            assert not await in_thread(offered_automatic_management)
            r = await api.client.get("/api/me")
            assert r.json()["role"] == "admin", r.text


async def test_the_add_dialog_marks_the_files_the_daemon_holds_already(tmp_path: Path) -> None:
    """A .torrent chosen in the add dialog whose file the daemon holds whole under another
    torrent (v1, another name and piece length): the file is marked held (where from, in its
    title), its size line says how much is held; the other file is not marked."""
    import os

    from selenium.webdriver.common.by import By

    data = os.urandom(1_572_867)  # (from the dedup's LENGTH_MATCH_MIN)
    other = tmp_path / "made" / "Show"
    other.mkdir(parents=True)
    (other / "Show.mkv").write_bytes(data)
    (other / "notes.nfo").write_bytes(b"n" * 5000)
    path = tmp_path / "show.torrent"
    path.write_bytes(make_torrent(other, piece_length=64 * 1024, version="v1").to_bytes())
    async with running_api(tmp_path) as api:
        held = api.download_root / "A"
        held.mkdir()
        (held / "a.mkv").write_bytes(data)
        job, _ = await api.service.add(make_torrent(held, piece_length=32 * 1024, version="v1").to_bytes())
        with anyio.fail_after(30):
            while not api.service.dedup.of_length(len(data)):
                await anyio.sleep(0.05)

        def run() -> tuple[list[tuple[str, str]], str]:
            driver.get(f"{api.url}/#token={TOKEN}")
            wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
            driver.find_element(By.ID, "add-open").click()
            driver.find_element(By.ID, "ad-files").send_keys(str(path))
            marks = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#ad-trees .held"))
            rows = [(str(li.find_element(By.CSS_SELECTOR, ".fname").text), str(li.text))
                    for li in driver.find_elements(By.CSS_SELECTOR, "#ad-trees li:not(.folder)")]
            assert marks[0].get_attribute("data-held") == str(held / "a.mkv")
            return rows, str(driver.find_element(By.CSS_SELECTOR, "#ad-trees .item-size").text)

        with chromium(1400, 900) as driver:
            rows, size = await in_thread(run)
        assert [(name, "held" in text.split()) for name, text in rows] == [("Show.mkv", True),
                                                                            ("notes.nfo", False)], rows
        assert size == "2 of 2 files, 1.50 MiB (1.50 MiB held already)", size  # (5 000 bytes more)
