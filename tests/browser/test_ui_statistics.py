"""The web UI's Statistics window in headless Chromium, as qBittorrent's web UI has one: every run
of the daemon's totals and this run's (bytes, share ratio, bytes wasted, torrents added, time
running, starts), the connected peers, the DHT, the tracker announces waiting for a slot and the
request latency, as ``/api/stats`` says them, drawn again from the live stats while it is open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_ui import _magnet, chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, running_api
from torrent_engine.jobs import AddOptions

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_the_statistics_window_shows_every_runs_totals_and_this_runs_live(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        await api.service.add(_magnet(1), AddOptions(paused=True))

        def stat(d: Any, key: str) -> str:
            return str(d.find_element(By.CSS_SELECTOR, f'#stats-rows td[data-stat="{key}"]').text)

        with chromium(1200, 900) as driver:
            def opened() -> dict[str, str]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "1")
                driver.find_element(By.ID, "stats-open").click()
                wait(driver, lambda d: d.find_element(By.ID, "stats-dialog").is_displayed()
                     and stat(d, "run-added") == "1")
                keys = ("all-added", "run-added", "all-starts", "run-downloaded", "all-ratio", "peers",
                        "announces", "latency", "run-wasted")
                # (read in a wait: the open window is drawn again from the live stats, a cell
                # found a moment ago may be gone)
                shown: dict[str, str] = wait(driver, lambda d: {k: stat(d, k) for k in keys})
                return shown

            shown = await in_thread(opened)
            assert shown == {"all-added": "1", "run-added": "1", "all-starts": "1", "run-downloaded": "0 B",
                             "all-ratio": "–", "peers": "0", "announces": "0", "latency": "0.0 ms",
                             "run-wasted": "0 B"}, shown
            await api.service.add(_magnet(2), AddOptions(paused=True))  # (the window, still open, follows)
            both = ("run-added", "all-added")
            await in_thread(lambda: wait(driver, lambda d: [stat(d, k) for k in both] == ["2", "2"]))

            def closed() -> bool:
                driver.find_element(By.ID, "stats-close").click()
                return bool(wait(driver, lambda d: not d.find_element(By.ID, "stats-dialog").is_displayed()))

            assert await in_thread(closed)
