"""The jobs' menu in headless Chromium (the fixtures of test_ui.py), what a seedbox is run from
beyond pausing: the queue (to the top, the selection keeping its order; to the bottom), a job's
own rate limits (in KiB/s; what is no number refused in the page, nothing sent), and its files
moved to a new location (a location outside the download root refused with the server's
reason, nothing moved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.browser.test_ui import _magnet, chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload, make_torrent
from torrent_engine.jobs import AddOptions

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_the_menu_moves_jobs_in_the_queue_limits_their_rates_and_sets_their_location(
        tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        service = api.service
        await service.update_settings(queueing=True)
        added = [(await service.add(_magnet(i), AddOptions(paused=True)))[0] for i in range(3)]
        ids = [j.id for j in added]
        assert service.queue_order() == ids
        payload = make_payload(api.download_root / "here", (("a.bin", 40_000),), name="moved payload")
        torrent = make_torrent(payload)
        moving = (await service.add(torrent.to_bytes(), AddOptions(paused=True, save_path="here")))[0].id

        def row(d: Any, job_id: str) -> Any:
            return d.find_element(By.CSS_SELECTOR, f'#jobs tr.job[data-job-id="{job_id}"]')

        def menu(d: Any, job_id: str, action: str) -> None:
            ActionChains(d).context_click(row(d, job_id).find_element(By.CSS_SELECTOR, ".name")).perform()
            wait(d, lambda d: d.find_element(By.ID, "context-menu").is_displayed())
            d.find_element(By.CSS_SELECTOR, f'#context-menu [data-menu="{action}"]').click()

        def answer(d: Any, text: str) -> None:
            wait(d, lambda d: d.find_element(By.ID, "prompt-dialog").is_displayed())
            box = d.find_element(By.ID, "prompt-input")
            box.clear()
            box.send_keys(text)
            d.find_element(By.ID, "prompt-ok").click()

        def errors(d: Any) -> str:
            return str(d.find_element(By.ID, "errors").text)

        with chromium(1400, 900) as driver:
            def to_the_top() -> None:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "4")
                for job_id in ids[1:]:  # (two ticked: the menu of either acts on both)
                    row(driver, job_id).find_element(By.CSS_SELECTOR, "input[data-select]").click()
                menu(driver, ids[2], "queue_top")

            await in_thread(to_the_top)
            with anyio.fail_after(20):
                while service.queue_order()[:3] != [ids[1], ids[2], ids[0]]:
                    await anyio.sleep(0.05)

            def to_the_bottom_and_limits() -> str:
                driver.find_element(By.ID, "bulk-clear").click()
                menu(driver, ids[1], "queue_bottom")
                menu(driver, ids[0], "download_limit")
                answer(driver, "64")
                menu(driver, ids[0], "upload_limit")
                answer(driver, "lots")
                return str(wait(driver, errors))

            said = await in_thread(to_the_bottom_and_limits)
            assert "lots" in said and "no number" in said, said
            with anyio.fail_after(20):
                while service.queue_order()[-1] != ids[1] or \
                        service.get(ids[0]).options.download_limit != 65536:
                    await anyio.sleep(0.05)
            assert service.get(ids[0]).options.upload_limit in (0, None)  # (nothing sent for "lots")

            def set_location(where: str) -> None:
                menu(driver, moving, "move")
                answer(driver, where)

            await in_thread(lambda: set_location("/not/the/root"))
            said = await in_thread(lambda: wait(driver, lambda d: "set location" in errors(d) and errors(d)))
            assert "save_path" in said or "root" in said, said
            assert (api.download_root / "here" / "moved payload" / "a.bin").is_file()
            await in_thread(lambda: set_location("there"))
            with anyio.fail_after(30):
                while not (api.download_root / "there" / "moved payload" / "a.bin").is_file():
                    await anyio.sleep(0.05)
            assert Path(service.get(moving).options.save_path) == (api.download_root / "there").resolve()
            assert not (api.download_root / "here" / "moved payload" / "a.bin").exists()
