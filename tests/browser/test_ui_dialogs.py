"""The web UI's dialogs in headless Chromium, as wide as each view asks: the log's lines, the
feeds' list beside a feed's articles, the statistics' table (each was held to the 440 px of a
small dialog: a feed's article titles were drawn a letter a line), and each within a narrow
window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_ui import chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, running_api

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# each dialog's width in a window of 1400 px, as app.css asks for it
WIDE = {"stats": 560, "settings": 620, "add": 720, "create": 720, "log": 960, "feeds": 1040}


def _widths(driver: Any, url: str) -> dict[str, int]:
    """Each dialog whose button the page shows, opened, measured and closed: its width."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/#token={TOKEN}")
    wait(driver, lambda d: d.find_element(By.ID, "feeds-open").is_displayed())
    out = {}
    for name in WIDE:
        button = driver.find_element(By.ID, f"{name}-open")
        if not button.is_displayed():
            continue
        button.click()
        dialog = wait(driver, lambda d, name=name: d.find_element(By.ID, f"{name}-dialog").is_displayed()
                      and d.find_element(By.ID, f"{name}-dialog"))
        out[name] = round(dialog.rect["width"])
        driver.execute_script("arguments[0].close()", dialog)
    return out


async def test_each_dialog_is_as_wide_as_its_view_asks_and_fits_a_narrow_window(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        with chromium(1400, 900) as driver:
            wide = await in_thread(lambda: _widths(driver, api.url))
        assert wide == WIDE
        with chromium(400, 800) as driver:
            narrow = await in_thread(lambda: _widths(driver, api.url))
            viewport = await in_thread(lambda: driver.execute_script(
                "return document.documentElement.clientWidth"))
        assert {"feeds", "log", "settings"} <= narrow.keys(), narrow  # (what a phone shows)
        assert all(width <= viewport for width in narrow.values()), (viewport, narrow)
