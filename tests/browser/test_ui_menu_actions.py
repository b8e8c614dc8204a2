"""The jobs' menu in headless Chromium (the fixtures of test_ui.py), what a seedbox is run from
beyond pausing: the queue (to the top, the selection keeping its order; to the bottom), a job's
own rate limits (in KiB/s; what is no number refused in the page, nothing sent), its files moved
to a new location (a location outside the download root refused with the server's reason,
nothing moved), its name, and its share limits (a ratio, minutes, none, the global ones; a value
that is no number ≥ 0 said in the dialog, nothing sent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.browser.test_ui import _magnet, answer_prompt, chromium, in_thread, job_row, use_menu, wait
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload, make_torrent
from torrent_engine.jobs import AddOptions

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_the_menu_moves_jobs_in_the_queue_limits_their_rates_and_sets_their_location(
        tmp_path: Path) -> None:
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

        row, menu, answer = job_row, use_menu, answer_prompt

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
            there = (api.download_root / "there").resolve()
            with anyio.fail_after(30):  # (the files move first, the job's save path once all are there)
                while not (api.download_root / "there" / "moved payload" / "a.bin").is_file() \
                        or service.get(moving).moving or Path(service.get(moving).options.save_path) != there:
                    await anyio.sleep(0.05)
            assert not (api.download_root / "here" / "moved payload" / "a.bin").exists()

            def rename_and_share_limits() -> tuple[bool, str, bool]:
                from selenium.webdriver.support.ui import Select

                menu(driver, ids[2], "rename")
                answer(driver, "a better name")
                menu(driver, ids[0], "share_limits")
                dialog = wait(driver, lambda d: d.find_element(By.ID, "share-dialog"))
                wait(driver, lambda d: dialog.is_displayed())

                def limit(key: str, mode: str, value: str = "") -> None:
                    row = dialog.find_element(By.CSS_SELECTOR, f'.share-limit[data-limit="{key}"]')
                    Select(row.find_element(By.CSS_SELECTOR, "[data-mode]")).select_by_value(mode)
                    if value:
                        box = row.find_element(By.CSS_SELECTOR, "[data-value]")
                        box.clear()
                        box.send_keys(value)

                limit("ratio_limit", "set", "-3")
                limit("seeding_time_limit", "set", "90")
                limit("idle_seeding_limit", "none")
                Select(driver.find_element(By.ID, "share-action")).select_by_value("stop")
                driver.find_element(By.ID, "share-ok").click()
                refused = wait(driver, lambda d: d.find_element(By.ID, "share-error").text)
                still_open = dialog.is_displayed()
                limit("ratio_limit", "set", "1.5")
                driver.find_element(By.ID, "share-ok").click()
                wait(driver, lambda d: not dialog.is_displayed())
                shown = '.share-limit[data-limit="seeding_time_limit"] [data-value]'

                def reopened(d: Any) -> bool:  # (shown again as set; the dialog fills in from the
                    # page's copy of the job, which the event stream brings up to date: opened
                    # before that, it shows the old limits, and is opened again)
                    menu(d, ids[0], "share_limits")
                    wait(d, lambda d: dialog.is_displayed())
                    value = dialog.find_element(By.CSS_SELECTOR, shown).get_attribute("value")
                    dialog.find_element(By.CSS_SELECTOR, 'button[value="cancel"]').click()
                    wait(d, lambda d: not dialog.is_displayed())
                    return bool(value == "90")

                again = wait(driver, reopened, limit=20)
                return still_open, str(refused), bool(again)

            still_open, refused, shown_again = await in_thread(rename_and_share_limits)
            assert still_open and "-3" in refused and shown_again, (still_open, refused)
            with anyio.fail_after(20):
                while service.get(ids[2]).name != "a better name":
                    await anyio.sleep(0.05)
            f = service.get(ids[0]).features
            assert (f.ratio_limit, f.seeding_time_limit, f.idle_seeding_limit, f.share_limit_action) == \
                (1.5, 5400, -1, "stop"), f
            assert service.get(ids[1]).features.ratio_limit is None  # (the one picked alone)


async def test_export_torrent_saves_each_jobs_torrent_and_a_magnet_without_its_metadata_says_why(
        tmp_path: Path) -> None:
    """The menu's Export .torrent (qBittorrent's): the .torrent of each job chosen is saved from
    the browser under the torrent's name, its bytes the job's metainfo (``GET
    /api/jobs/{id}/torrent/file``); a magnet whose metadata has not come says why, nothing
    saved."""
    import base64

    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        torrent = make_torrent(make_payload(tmp_path / "made", (("a.bin", 40_000),), name="Exported payload"))
        job = (await api.service.add(torrent.to_bytes(), AddOptions(paused=True)))[0]
        magnet = (await api.service.add(_magnet(3), AddOptions(paused=True)))[0]
        with chromium(1400, 900) as driver:
            def export() -> tuple[list[tuple[str, str]], str]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "2")
                # (each save caught as the page starts it: the link's name and its blob's bytes)
                driver.execute_script("""
                    window.saved = [];
                    const blobs = new Map(), made = URL.createObjectURL;
                    URL.createObjectURL = (blob) => {
                      const url = made.call(URL, blob);
                      blobs.set(url, blob);
                      return url;
                    };
                    HTMLAnchorElement.prototype.click = function () {
                      const name = this.download;
                      blobs.get(this.href).arrayBuffer().then((b) => window.saved.push(
                        [name, btoa(String.fromCharCode(...new Uint8Array(b)))]));
                    };""")
                use_menu(driver, job.id, "export")
                saved = wait(driver, lambda d: d.execute_script(
                    "return window.saved.length ? window.saved : null"))
                use_menu(driver, magnet.id, "export")
                said = wait(driver, lambda d: d.find_element(By.ID, "errors").text)
                return [(str(n), str(b)) for n, b in saved], str(said)

            saved, said = await in_thread(export)
        assert saved == [("Exported payload.torrent", base64.b64encode(torrent.to_bytes()).decode())]
        assert "export" in said and "its metadata is not known" in said, said


async def test_a_category_given_to_every_job_ticked_is_one_request_written_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The menu's Category… on a selection of many jobs (the head's box: every job shown) sends
    one request for them all (``POST /api/jobs/bulk``, ``update``): their records are written a
    few dozen a transaction, where a PATCH a job, one after the other, took seconds for
    thousands."""
    from selenium.webdriver.common.by import By

    from tests.spies import records_written

    async with running_api(tmp_path) as api:
        service = api.service
        await service.create_category("tv", "")
        ids = [(await service.add(_magnet(i), AddOptions(paused=True)))[0].id for i in range(16)]
        groups = records_written(monkeypatch)
        with chromium(1400, 900) as driver:
            def categorise() -> None:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "count-active").text == "16")
                driver.find_element(By.ID, "select-all").click()
                use_menu(driver, ids[3], "category")
                answer_prompt(driver, "tv")

            await in_thread(categorise)
            with anyio.fail_after(20):
                while any(service.get(i).features.category != "tv" for i in ids):
                    await anyio.sleep(0.05)
            shown = await in_thread(lambda: wait(driver, lambda d: all(
                "tv" in job_row(d, i).text for i in ids[:5]) and "shown"))
        assert shown == "shown"
        assert sum(groups) >= len(ids) and len(groups) < len(ids), groups
