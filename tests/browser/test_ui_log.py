"""The web UI's log view in headless Chromium (the fixtures of test_ui.py): the daemon's lines
with their levels, narrowed to a level, the peers refused; a line written while the view is open
appears in it once, without reopening."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import anyio
import pytest

from tests.browser.test_ui import chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import small_v1
from torrent_engine.logbook import LogBook

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_the_log_view_shows_the_lines_by_level_the_peers_refused_and_what_comes_while_open(
        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    t = small_v1(tmp_path / "payload", [("a.bin", 70_000)], "shown-in-log")
    book = LogBook()
    with book.capturing(logging.getLogger("torrent_engine")):
        async with running_api(tmp_path, logbook=book) as api:
            r = await api.client.patch("/api/settings", json={"banned_ips": ["127.0.0.9"]})
            assert r.status_code == 200, r.text
            r = await api.client.post("/api/jobs", json={"source": base64.b64encode(t.to_bytes()).decode(),
                                                         "peers": ["127.0.0.9:6881"]})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            with anyio.fail_after(30):
                while not (await api.client.get("/api/log/peers")).json()["peers"]:
                    await anyio.sleep(0.1)
            with chromium() as driver:

                def rows() -> list[tuple[str, str]]:
                    return [(str(e.find_element(By.CLASS_NAME, "log-kind").text),
                             str(e.find_element(By.CLASS_NAME, "log-text").text))
                            for e in driver.find_elements(By.CSS_SELECTOR, "#log-lines .log-line")]

                def opened() -> list[tuple[str, str]]:
                    driver.get(f"{api.url}/#token={TOKEN}")
                    wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
                    driver.find_element(By.ID, "log-open").click()
                    wait(driver, lambda d: any("shown-in-log" in text for _, text in rows()))
                    return rows()

                shown = await in_thread(opened)
                assert ("normal", f'Added "shown-in-log" (job {job_id})') in shown, shown

                def narrowed() -> tuple[str, list[tuple[str, str]]]:
                    Select(driver.find_element(By.ID, "log-level")).select_by_value("warning,critical")
                    wait(driver, lambda d: not any("shown-in-log" in text for _, text in rows()) and
                         d.find_element(By.ID, "log-status").text != "Loading…")
                    return driver.find_element(By.ID, "log-status").text, rows()

                status, warnings = await in_thread(narrowed)
                assert {kind for kind, _ in warnings} <= {"warning", "critical"}, warnings
                assert warnings or status == "Nothing logged at these levels.", status

                def peers() -> list[tuple[str, str]]:
                    Select(driver.find_element(By.ID, "log-level")).select_by_value("peers")
                    wait(driver, lambda d: rows() == [("blocked", "127.0.0.9: blocked (IP filter)")])
                    Select(driver.find_element(By.ID, "log-level")).select_by_value("normal")
                    wait(driver, lambda d: any("shown-in-log" in text for _, text in rows()))
                    return rows()

                assert await in_thread(peers) == [("normal", f'Added "shown-in-log" (job {job_id})')]
                r = await api.client.post(f"/api/jobs/{job_id}/pause")
                assert r.status_code == 200, r.text

                def came() -> list[tuple[str, str]]:
                    wait(driver, lambda d: len(rows()) == 2)
                    return rows()

                assert await in_thread(came) == [("normal", f'Added "shown-in-log" (job {job_id})'),
                                                 ("normal", f'Paused "shown-in-log" (job {job_id})')]
