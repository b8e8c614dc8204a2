"""Paths completed from the download folder in headless Chromium (the fixtures of test_ui.py), as
qBittorrent's WebUI completes them: the Add dialog's save path offers the folders whose names
begin with what is typed (any case; files not offered), then a chosen folder's own, and says
the space free there; the creator's source offers files too; Set location offers folders. A
user is offered their own folder's alone; a viewer is refused once and not asked again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_ui import _magnet, chromium, in_thread, use_menu, wait
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_api_folders import tree
from tests.integration.test_api_users import PASSWORDS, users

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def offered(driver: Any, input_id: str) -> list[str]:
    """The values of the datalist the input ``input_id`` names."""
    return list(driver.execute_script(
        "const list = document.getElementById(arguments[0]).list;"
        "return list ? [...list.options].map((o) => o.value) : [];", input_id))


def typed(driver: Any, input_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, input_id)
    box.clear()
    box.send_keys(text)


async def test_the_save_path_the_source_and_set_location_offer_the_folders_typed_into(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        tree(root)
        job = (await api.client.post("/api/jobs", json={"source": _magnet(7), "paused": True})).json()
        with chromium(1300, 900) as driver:
            def save_path() -> tuple[list[str], list[str], str]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "add-open").is_displayed())
                driver.find_element(By.ID, "add-open").click()
                free = wait(driver, lambda d: d.find_element(By.ID, "ad-free").text)
                typed(driver, "ad-save-path", "sh")
                first = wait(driver, lambda d: offered(d, "ad-save-path") == ["Shows/", "shorts/"]
                             and offered(d, "ad-save-path"))
                typed(driver, "ad-save-path", "Shows/")
                inside = wait(driver, lambda d: offered(d, "ad-save-path")[:1] == ["Shows/Alpha/"]
                              and offered(d, "ad-save-path"))
                return first, inside, str(free)

            first, inside, free = await in_thread(save_path)
            assert first == ["Shows/", "shorts/"]  # (sh.nfo is a file: not a save path)
            assert inside == ["Shows/Alpha/", "Shows/beta/"]
            assert free.endswith(" free") and free[0].isdigit(), free

            def source() -> list[str]:
                driver.find_element(By.ID, "ad-cancel").click()
                wait(driver, lambda d: d.find_element(By.ID, "create-open").is_displayed())
                driver.find_element(By.ID, "create-open").click()
                typed(driver, "create-source", "Sh")
                return list(wait(driver, lambda d: len(offered(d, "create-source")) == 3
                                 and offered(d, "create-source")))

            assert await in_thread(source) == ["Shows/", "sh.nfo", "shorts/"]

            def set_location() -> list[str]:
                driver.find_element(By.ID, "create-close").click()
                use_menu(driver, job["id"], "move")
                wait(driver, lambda d: d.find_element(By.ID, "prompt-dialog").is_displayed())
                typed(driver, "prompt-input", f"{root}/M")
                return list(wait(driver, lambda d: offered(d, "prompt-input") == [f"{root}/Movies/"]
                                 and offered(d, "prompt-input")))

            assert await in_thread(set_location) == [f"{root}/Movies/"]


async def test_a_user_is_offered_their_own_folder_and_a_viewer_is_asked_once(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        tree(root)
        (root / "users" / "alice" / "Music").mkdir(parents=True)
        def signed_in(driver: Any, name: str) -> None:
            driver.get(api.url)
            wait(driver, lambda d: d.find_element(By.ID, "login-name").is_displayed())
            driver.find_element(By.ID, "login-name").send_keys(name)
            driver.find_element(By.ID, "login-password").send_keys(PASSWORDS[name])
            driver.find_element(By.CSS_SELECTOR, "#user-login-form button[type=submit]").click()
            wait(driver, lambda d: d.find_element(By.ID, "app").is_displayed())

        with chromium() as driver:
            def alice() -> list[str]:
                signed_in(driver, "alice")
                driver.find_element(By.CSS_SELECTOR, "#add-form details.more summary").click()  # (Options)
                driver.find_element(By.ID, "add-save-path").click()  # (focused: the folder's own, at once)
                return list(wait(driver, lambda d: offered(d, "add-save-path")))

            assert await in_thread(alice) == ["Music/"]

        with chromium() as driver:
            def vera() -> tuple[bool, list[str]]:
                signed_in(driver, "vera")
                driver.find_element(By.CSS_SELECTOR, "#add-form details.more summary").click()
                driver.find_element(By.ID, "add-save-path").click()
                wait(driver, lambda d: d.execute_script("return foldersRefused;"))
                typed(driver, "add-save-path", "S")  # (not asked again: nothing offered)
                return bool(driver.execute_script("return foldersRefused;")), offered(driver, "add-save-path")

            refused, shown = await in_thread(vera)
            assert refused and shown == []
