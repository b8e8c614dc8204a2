"""Everyone can use the web UI (headless Chromium, the fixtures of test_ui.py): axe-core (vendored
in tests/browser/vendor/axe-core, test-only) finds no serious or critical violation on the list,
the details panel, the add dialog, the settings and the log, in the light and the dark theme; the theme
follows the system (emulated through the DevTools protocol) unless the settings chose one; the
main controls work from the keyboard alone; at 400 px wide nothing scrolls sideways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.browser.test_ui import FILES, chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, Api, running_api
from tests.integration.helpers import make_payload, make_torrent
from torrent_engine.engine.addtorrent import Parsed
from torrent_engine.jobs import AddOptions, JobFeatures, JobState

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# the violations axe finds in the page as it is (its rules for WCAG 2.x A and AA and best
# practices), as {id, impact, help, nodes: ["selector :: why", ...]}
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(
  (r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 8).map((n) => n.target.join(" ") + " :: " +
      (n.failureSummary || "").split(String.fromCharCode(10)).slice(1, 2).join("").trim().slice(0, 150))}))),
  (e) => done([{id: "axe-failed", impact: "critical", help: String(e), nodes: []}]));
"""


@asynccontextmanager
async def populated(tmp_path: Path) -> AsyncIterator[tuple[Api, str]]:
    """A daemon with a few jobs: paused magnets with a category and tags, and a paused .torrent
    with files (its details have content); the .torrent job's id."""
    torrent = make_torrent(make_payload(tmp_path / "made", FILES, name="Example Payload"),
                           piece_length=32 * 1024)
    async with running_api(tmp_path) as api:
        service = api.service
        await service.create_category("linux")
        await service.add_many([f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i}" for i in range(6)],
                               AddOptions(paused=True, features=JobFeatures(category="linux", tags=("iso",))))
        job, _ = await service.add(Parsed(torrent), AddOptions(paused=True))
        yield api, job.id


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe's serious and critical violations in the page as it is now."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text())
    driver.set_script_timeout(120)
    found: list[dict[str, Any]] = driver.execute_async_script(RUN_AXE)
    return [v for v in found if v["impact"] in ("serious", "critical")]


def open_list(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/#token={TOKEN}")
    wait(driver, lambda d: d.find_element(By.ID, "conn-text").get_attribute("textContent") == "live")
    wait(driver, lambda d: d.find_element(By.ID, "count-active").get_attribute("textContent") == "7")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tr.job"))


def scheme(driver: Any, dark: bool) -> None:
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})


def views_checked(driver: Any, url: str, job_id: str) -> dict[str, list[dict[str, Any]]]:
    """axe on the list, the details, the add dialog, the settings, the log, the creator, the feeds and their
    rules, the jobs' menu and its share limits: the violations of each."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    seen: dict[str, list[dict[str, Any]]] = {}
    open_list(driver, url)
    seen["list"] = axe_violations(driver)
    driver.find_element(By.CSS_SELECTOR, f'#jobs tr.job[data-job-id="{job_id}"] .name').click()
    wait(driver, lambda d: d.find_element(By.ID, "details").is_displayed())
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#details canvas"))  # (General: its piece map)
    seen["details"] = axe_violations(driver)
    driver.find_element(By.CSS_SELECTOR, '#details [data-sub="content"]').click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#details tr.tree-file td.path"))
    seen["details' content"] = axe_violations(driver)
    driver.find_element(By.ID, "details-close").click()
    driver.find_element(By.ID, "add-open").click()
    wait(driver, lambda d: d.find_element(By.ID, "add-dialog").is_displayed())
    seen["add dialog"] = axe_violations(driver)
    driver.find_element(By.ID, "ad-cancel").click()
    driver.find_element(By.ID, "settings-open").click()
    wait(driver, lambda d: d.find_element(By.ID, "setting-download_limit").is_displayed())
    seen["settings"] = axe_violations(driver)
    driver.find_element(By.ID, "settings-close").send_keys(Keys.ESCAPE)
    wait(driver, lambda d: not d.find_element(By.ID, "settings-dialog").is_displayed())
    driver.find_element(By.ID, "log-open").click()  # (the log's lines: the job's add at least)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#log-lines .log-line"))
    seen["log"] = axe_violations(driver)
    driver.find_element(By.ID, "log-close").click()
    driver.find_element(By.ID, "feeds-open").click()  # (the feeds, then the download rules' form)
    wait(driver, lambda d: "No feed yet" in d.find_element(By.ID, "feed-name").text)
    seen["feeds"] = axe_violations(driver)
    driver.find_element(By.ID, "feeds-tab-rules").click()
    wait(driver, lambda d: d.find_element(By.ID, "rule-form").is_displayed())
    seen["download rules"] = axe_violations(driver)
    driver.find_element(By.ID, "feeds-close").click()
    driver.find_element(By.ID, "create-open").click()  # (the torrent creator's form and list)
    wait(driver, lambda d: "Nothing made yet." in d.find_element(By.ID, "create-tasks").text)
    seen["creator"] = axe_violations(driver)
    driver.find_element(By.ID, "create-close").click()
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).context_click(driver.find_element(  # (the jobs' menu, then its share limits)
        By.CSS_SELECTOR, f'#jobs tr.job[data-job-id="{job_id}"] .name')).perform()
    wait(driver, lambda d: d.find_element(By.ID, "context-menu").is_displayed())
    seen["menu"] = axe_violations(driver)
    driver.find_element(By.CSS_SELECTOR, '#context-menu [data-menu="share_limits"]').click()
    wait(driver, lambda d: d.find_element(By.ID, "share-dialog").is_displayed())
    seen["share limits"] = axe_violations(driver)
    driver.find_element(By.CSS_SELECTOR, '#share-dialog button[value="cancel"]').click()
    return {k: v for k, v in seen.items() if v}


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
async def test_axe_finds_no_serious_violation_in_the_list_details_add_dialog_and_settings(
        tmp_path: Path, dark: bool) -> None:
    async with populated(tmp_path) as (api, job_id):
        with chromium(1400, 900) as driver:
            scheme(driver, dark)
            found = await in_thread(lambda: views_checked(driver, api.url, job_id))
    assert found == {}, "\n".join(f"{view}: {v['impact']} {v['id']} ({v['help']}):\n    "
                                  + "\n    ".join(v["nodes"]) for view, vs in found.items() for v in vs)


def background(driver: Any) -> str:
    return str(driver.execute_script("return getComputedStyle(document.documentElement).backgroundColor"))


LIGHT, DARK = "rgb(244, 246, 250)", "rgb(15, 20, 28)"  # (app.css: --bg of each theme)


async def test_the_theme_follows_the_system_unless_the_settings_choose_one(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    async with populated(tmp_path) as (api, _):
        before = api.service.get_settings()
        with chromium(1400, 900) as driver:
            def run() -> list[str]:
                seen = []
                open_list(driver, api.url)
                for dark in (True, False):
                    scheme(driver, dark)
                    seen.append(background(driver))
                scheme(driver, True)
                driver.find_element(By.ID, "settings-open").click()
                wait(driver, lambda d: d.find_element(By.ID, "setting-ui_theme").is_displayed())
                Select(driver.find_element(By.ID, "setting-ui_theme")).select_by_value("light")
                driver.find_element(By.ID, "settings-save").click()
                wait(driver, lambda d: d.find_element(By.ID, "settings-status").text == "Saved.")
                seen.append(background(driver))  # (the system is dark; the browser chose light)
                driver.refresh()
                wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
                seen.append(background(driver))  # (kept by the browser)
                return seen

            assert await in_thread(run) == [DARK, LIGHT, LIGHT, LIGHT]
            assert api.service.get_settings() == before  # (the theme is the browser's: nothing sent)


def tab_to(driver: Any, element_id: str, limit: int = 150) -> None:
    """Press Tab until the element ``element_id`` has the focus (the keyboard alone)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(limit):
        if driver.execute_script("return document.activeElement && document.activeElement.id") == element_id:
            return
        ActionChains(driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached #{element_id}")


def keys(driver: Any, *pressed: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*pressed).perform()


async def test_the_main_controls_work_from_the_keyboard_alone(tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    async with populated(tmp_path) as (api, _):
        with chromium(1400, 900) as driver:
            def run() -> dict[str, Any]:
                out: dict[str, Any] = {}
                open_list(driver, api.url)
                tab_to(driver, "jobs-scroll")  # the list: arrows, Enter opens, Escape closes
                keys(driver, Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ENTER)
                wait(driver, lambda d: d.find_element(By.ID, "details").is_displayed())
                out["opened"] = driver.find_element(By.CSS_SELECTOR, "#jobs tr.job.current").get_attribute(
                    "data-job-id") == driver.find_element(By.ID, "details").get_attribute("data-job-id")
                tab_to(driver, "details-close")  # (into the details: Escape closes them from there too)
                keys(driver, Keys.ESCAPE)
                wait(driver, lambda d: not d.find_element(By.ID, "details").is_displayed())
                # the focus back in the list, not dropped to the page's body (the keys go on there)
                out["focus after the details"] = driver.switch_to.active_element.get_attribute("id")
                # its menu: the first item (Resume) has the focus
                ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.F10).key_up(Keys.SHIFT).perform()
                wait(driver, lambda d: d.find_element(By.ID, "context-menu").is_displayed())
                out["menu focus"] = driver.switch_to.active_element.get_attribute("data-menu")
                keys(driver, Keys.ENTER)
                keys(driver, "/")  # the search
                out["search focus"] = driver.switch_to.active_element.get_attribute("id")
                keys(driver, "job-3")
                wait(driver, lambda d: d.find_element(By.ID, "view-count").text == "1")
                ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
                keys(driver, Keys.BACKSPACE, Keys.ESCAPE)
                tab_to(driver, "add-open")  # the add dialog: a link typed, added
                keys(driver, Keys.ENTER)
                wait(driver, lambda d: d.find_element(By.ID, "add-dialog").is_displayed())
                out["add focus"] = driver.switch_to.active_element.get_attribute("id")
                keys(driver, f"{11:040x}")
                tab_to(driver, "ad-paused")
                keys(driver, " ")
                tab_to(driver, "ad-submit")
                keys(driver, Keys.ENTER)
                wait(driver, lambda d: not d.find_element(By.ID, "add-dialog").is_displayed())
                tab_to(driver, "settings-open")  # the settings: a limit typed, saved, closed
                keys(driver, Keys.ENTER)
                wait(driver, lambda d: d.find_element(By.ID, "setting-download_limit").is_displayed())
                tab_to(driver, "setting-download_limit")
                ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
                keys(driver, "12")
                tab_to(driver, "settings-save")
                keys(driver, Keys.ENTER)
                wait(driver, lambda d: d.find_element(By.ID, "settings-status").text == "Saved.")
                keys(driver, Keys.ESCAPE)
                wait(driver, lambda d: not d.find_element(By.ID, "settings-dialog").is_displayed())
                return out

            out = await in_thread(run)
            assert out == {"opened": True, "focus after the details": "jobs-scroll", "menu focus": "resume",
                           "search focus": "search", "add focus": "ad-links"}
            with anyio.fail_after(20):
                while len(api.service.list()) < 8:
                    await anyio.sleep(0.05)
            by_hash = {j.info_hash: j for j in api.service.list()}
            assert by_hash[f"{11:040x}"].state is JobState.PAUSED  # (added, "Start paused" ticked)
            assert sum(j.state is not JobState.PAUSED for j in by_hash.values()) == 1  # (the menu's Resume)
            assert api.service.get_settings().download_limit == 12 * 1024


def sideways(driver: Any) -> tuple[int, int]:
    """The page's width and the window's: the page must not be wider (no sideways scrolling)."""
    width, inner = driver.execute_script("return [document.scrollingElement.scrollWidth, innerWidth]")
    return int(width), int(inner)


async def test_a_phone_400_px_wide_never_scrolls_sideways(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async with populated(tmp_path) as (api, job_id):
        with chromium(500, 860) as driver:
            # (a window is at least 500 px wide: a phone's 400 px is the emulated screen's)
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": 400, "height": 860, "deviceScaleFactor": 1, "mobile": True})

            def run() -> dict[str, tuple[int, int]]:
                seen = {}
                open_list(driver, api.url)
                seen["list"] = sideways(driver)
                driver.find_element(By.CSS_SELECTOR, f'#jobs tr.job[data-job-id="{job_id}"] .name').click()
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#details canvas"))
                seen["details"] = sideways(driver)
                driver.find_element(By.CSS_SELECTOR, '#details [data-sub="content"]').click()
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#details tr.tree-file td.path"))
                seen["details' content"] = sideways(driver)
                driver.execute_script("document.getElementById('details-close').click()")
                driver.find_element(By.ID, "add-open").click()
                wait(driver, lambda d: d.find_element(By.ID, "add-dialog").is_displayed())
                seen["add dialog"] = sideways(driver)
                driver.find_element(By.ID, "ad-cancel").click()
                driver.find_element(By.ID, "settings-open").click()
                wait(driver, lambda d: d.find_element(By.ID, "setting-download_limit").is_displayed())
                seen["settings"] = sideways(driver)
                driver.find_element(By.ID, "settings-close").click()
                driver.find_element(By.ID, "feeds-open").click()
                wait(driver, lambda d: "No feed yet" in d.find_element(By.ID, "feed-name").text)
                seen["feeds"] = sideways(driver)
                driver.find_element(By.ID, "feeds-tab-rules").click()
                wait(driver, lambda d: d.find_element(By.ID, "rule-form").is_displayed())
                seen["download rules"] = sideways(driver)
                driver.find_element(By.ID, "feeds-close").click()
                driver.find_element(By.ID, "create-open").click()
                wait(driver, lambda d: "Nothing made yet." in d.find_element(By.ID, "create-tasks").text)
                seen["creator"] = sideways(driver)
                return seen

            seen = await in_thread(run)
    assert all(inner == 400 for _, inner in seen.values()), seen
    assert {k: v for k, v in seen.items() if v[0] > v[1]} == {}, seen
