"""The web UI's torrent creator in headless Chromium (the fixtures of test_ui.py), as a seedbox's
admin makes a torrent of a folder: the form filled (v1, a piece size, private, trackers in two
tiers, a web seed), the task listed and finished, the job seeding it shown in the list; its
.torrent saved by the browser (the same bytes the API gives, the fields asked for); a path out of
the download folder refused with the server's reason in the form, nothing listed; the task
removed from the list by a click. A user who is no admin is not offered the creator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_ui import chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_api_users import PASSWORDS, users
from tests.unit.torrent_factory import payload
from torrent_engine.formats.metainfo import Torrent

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _field(driver: Any, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(text)


async def test_a_folder_is_made_into_a_torrent_seeded_saved_and_removed_from_the_list(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    saved = tmp_path / "browser-downloads"
    saved.mkdir()
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        folder = root / "Holiday films"
        (folder / "day 2").mkdir(parents=True)
        (folder / "day 1.mkv").write_bytes(payload(150_000, 1))
        (folder / "day 2" / "part.mkv").write_bytes(payload(60_000, 2))
        with chromium(1200, 900) as driver:
            driver.execute_cdp_cmd("Page.setDownloadBehavior",
                                   {"behavior": "allow", "downloadPath": str(saved)})

            def refused() -> tuple[str, int]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "create-open").is_displayed())
                driver.find_element(By.ID, "create-open").click()
                wait(driver, lambda d: "Nothing made yet." in d.find_element(By.ID, "create-tasks").text)
                _field(driver, "create-source", "../elsewhere")
                driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
                said = wait(driver, lambda d: d.find_element(By.ID, "create-error").is_displayed()
                            and d.find_element(By.ID, "create-error").text)
                return str(said), len(driver.find_elements(By.CSS_SELECTOR, "#create-tasks li[data-task]"))

            said, listed = await in_thread(refused)
            assert said.startswith("source_path: ") and "outside the download root" in said, said
            assert listed == 0

            def made() -> str:
                _field(driver, "create-source", "Holiday films")
                Select(driver.find_element(By.ID, "create-version")).select_by_value("v1")
                Select(driver.find_element(By.ID, "create-piece")).select_by_visible_text("32 KiB")
                driver.find_element(By.ID, "create-private").click()
                _field(driver, "create-trackers", "http://t1.example/announce\nudp://t2.example:6969\n\n"
                                                  "http://t3.example/announce")
                _field(driver, "create-web-seeds", "http://seed.example/films/")
                _field(driver, "create-comment", "our holiday")
                driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
                row = '#create-tasks li[data-task].finished'
                wait(driver, lambda d: "seeding" in d.find_element(By.CSS_SELECTOR, row).text)
                assert not driver.find_element(By.ID, "create-error").is_displayed()
                return str(driver.find_element(By.CSS_SELECTOR, row).text)

            shown = await in_thread(made)
            assert "Holiday films" in shown and "made, 205 KiB, seeding" in shown, shown
            (task,) = (await api.client.get("/api/creations")).json()["creations"]
            assert (task["version"], task["piece_length"], task["private"], task["comment"]) == (
                "v1", 32768, True, "our holiday")
            assert task["trackers"] == [["http://t1.example/announce", "udp://t2.example:6969"],
                                        ["http://t3.example/announce"]]
            job = (await api.client.get(f"/api/jobs/{task['job_id']}")).json()
            assert job["name"] == "Holiday films" and job["progress"] == 1, job

            def saved_and_listed() -> tuple[bytes, str]:
                driver.find_element(By.ID, "create-close").click()  # the job, in the list under the dialog
                wait(driver, lambda d: [e.text for e in d.find_elements(
                    By.CSS_SELECTOR, "#jobs tr.job .name")] == ["Holiday films"])
                driver.find_element(By.ID, "create-open").click()
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "button[data-save]"))
                driver.find_element(By.CSS_SELECTOR, "button[data-save]").click()
                target = saved / "Holiday films.torrent"
                deadline = time.monotonic() + 20
                while not target.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert target.exists(), sorted(p.name for p in saved.iterdir())
                return target.read_bytes(), str(driver.find_element(By.ID, "create-status").text)

            data, status = await in_thread(saved_and_listed)
            assert status == 'Saved "Holiday films.torrent".', status
            assert data == (await api.client.get(f"/api/creations/{task['id']}/torrent")).content
            torrent = Torrent.from_bytes(data)
            assert torrent.private and torrent.piece_length == 32768 and torrent.info_hash_v2 is None
            assert torrent.info_hash.hex() == job["info_hash"]
            assert torrent.web_seeds == ("http://seed.example/films/",)

            def removed() -> str:
                driver.find_element(By.CSS_SELECTOR, f'button[data-remove="{task["id"]}"]').click()
                wait(driver, lambda d: "Nothing made yet." in d.find_element(By.ID, "create-tasks").text)
                return str(driver.find_element(By.ID, "create-status").text)

            assert await in_thread(removed) == 'Removed "Holiday films" from the list.'
            assert (await api.client.get("/api/creations")).json() == {"creations": []}
            assert (await api.client.get(f"/api/jobs/{task['job_id']}")).status_code == 200  # (it stays)


def signed_in(driver: Any, url: str, name: str = "alice") -> None:
    """The page at ``url`` signed in as ``name`` (a user of ``users``, no admin), once the answer
    to /api/me has hidden the admin's buttons (the log's, shown before, first)."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait(driver, lambda d: d.find_element(By.ID, "login-name").is_displayed())
    driver.find_element(By.ID, "login-name").send_keys(name)
    driver.find_element(By.ID, "login-password").send_keys(PASSWORDS[name])
    driver.find_element(By.CSS_SELECTOR, "#user-login-form button[type=submit]").click()
    wait(driver, lambda d: d.find_element(By.ID, "app").is_displayed()
         and not d.find_element(By.ID, "log-open").is_displayed())


async def test_a_user_who_is_no_admin_is_not_offered_the_creator(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        with chromium() as driver:
            def offered() -> tuple[bool, bool]:
                signed_in(driver, api.url)
                return (driver.find_element(By.ID, "create-open").is_displayed(),
                        driver.find_element(By.ID, "settings-open").is_displayed())

            create, settings = await in_thread(offered)
            assert not create and settings
