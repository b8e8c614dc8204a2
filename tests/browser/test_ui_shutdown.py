"""Stopping the daemon from the web UI in headless Chromium, as qBittorrent's web UI exits
qBittorrent: the settings' "Stop the daemon…" asks once, then ``POST /api/shutdown`` (the daemon's
stop: here a hook that records it); an admin's alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_ui import chromium, in_thread, wait
from tests.browser.test_ui_creator import signed_in
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_api_users import users

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_the_settings_stop_the_daemon_once_asked_twice(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    asked: list[str] = []
    async with running_api(tmp_path, shutdown=asked.append) as api:
        with chromium() as driver:
            def shown(element_id: str) -> Any:
                return wait(driver, lambda d: (e := d.find_element(By.ID, element_id)).is_displayed() and e)

            def kept_then_stopped() -> tuple[list[str], str]:
                driver.get(f"{api.url}/#token={TOKEN}")
                shown("app")
                driver.find_element(By.ID, "settings-open").click()
                shown("daemon-stop").click()
                shown("daemon-stop-no").click()
                shown("daemon-stop")
                kept = list(asked)  # (kept running: nothing asked)
                shown("daemon-stop").click()
                shown("daemon-stop-yes").click()
                status = driver.find_element(By.ID, "settings-status")
                said = wait(driver, lambda d: "stopping" in status.text and status.text)
                return kept, str(said)

            kept, said = await in_thread(kept_then_stopped)
    assert kept == [] and asked == ["POST /api/shutdown"], (kept, asked)
    assert said.startswith("The daemon is stopping: every job is saved"), said


async def test_a_user_who_is_no_admin_is_not_offered_the_stop(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    users(tmp_path / "state")
    async with running_api(tmp_path, shutdown=lambda door: None) as api:
        with chromium() as driver:
            def offered() -> bool:
                signed_in(driver, api.url)
                driver.find_element(By.ID, "settings-open").click()
                wait(driver, lambda d: d.find_element(By.ID, "settings-dialog").is_displayed())
                return bool(driver.find_element(By.ID, "daemon-stop").is_displayed())

            assert not await in_thread(offered)
