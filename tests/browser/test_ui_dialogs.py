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


_BROKEN_WORDS = r"""
    // the words (2 to 20 letters between spaces: not a hash or a path, which may break) of the
    // details' values that are drawn on more than one line
    const out = [];
    for (const dd of document.querySelectorAll("#details dd")) {
      const walker = document.createTreeWalker(dd, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const m of node.data.matchAll(/(?<![^\s(])[A-Za-z]{2,20}(?![^\s.,;:)])/g)) {
          const range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          if (tops.size > 1) out.push(m[0]);
        }
      }
    }
    return out;"""


async def test_the_details_values_break_no_word_in_a_narrow_window(tmp_path: Path) -> None:
    """A value too long for its line wraps between words ("ratio the default · seeding the
    default · idle the d|efault" was cut inside a word: every value could break anywhere)."""
    import base64

    from selenium.webdriver.common.by import By

    from tests.browser.test_ui import job_row
    from tests.integration.helpers import make_payload, make_torrent

    async with running_api(tmp_path) as api:
        torrent = make_torrent(make_payload(api.download_root, [("movie.mkv", 100_000)], name="A Movie"))
        r = await api.client.post("/api/jobs", json={"source": base64.b64encode(torrent.to_bytes()).decode()})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        with chromium(500, 800) as driver:
            def broken() -> list[str]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: job_row(d, job_id)).find_element(By.CSS_SELECTOR, ".name").click()
                wait(driver, lambda d: any(dd.text.startswith("ratio ")  # (the share limits: drawn)
                                           for dd in d.find_elements(By.CSS_SELECTOR, "#details dd")))
                broken = set()
                for width in range(500, 640, 10):  # (where a word is cut depends on the width)
                    driver.set_window_size(width, 800)
                    broken.update(driver.execute_script(_BROKEN_WORDS))
                return sorted(broken)

            assert await in_thread(broken) == []
