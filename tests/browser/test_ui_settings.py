"""The web UI's settings view and add dialog in headless Chromium (the fixtures of test_ui.py):
every setting the daemon answers has its field in qBittorrent's groups; a change reaches the
server and a refused value is shown by its field, kept as typed; the add dialog lists the files of
each of several .torrent files, and of a magnet once its metadata came from a loopback seeder,
and adds each torrent with the files chosen there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.browser.test_ui import SettingsView, chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, running_api, seeding_job
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from torrent_engine.jobs import JobState
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# the bodies of the page's PATCH requests, in window.patches
RECORD_PATCHES = """
window.patches = [];
const realFetch = window.fetch;
window.fetch = function (path, opts) {
  if (opts && opts.method === "PATCH") window.patches.push(JSON.parse(opts.body));
  return realFetch.apply(this, arguments);
};
"""


async def test_every_setting_has_its_field_a_change_is_saved_and_a_refusal_kept_by_its_field(
        tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import Select

    async with running_api(tmp_path) as api:
        names = set((await api.client.get("/api/settings")).json())
        with chromium() as driver:
            view = SettingsView(driver, api.url)

            def fields() -> tuple[list[str], set[str], dict[str, str]]:
                view.open()
                shown = {str(e.get_attribute("data-setting")) for e in driver.find_elements(
                    view.by.CSS_SELECTOR, "#settings-groups [data-setting]")}
                units = {n: str(driver.find_element(view.by.ID, f"setting-unit-{n}").text) for n in (
                    "download_limit", "seeding_time_limit", "idle_seeding_limit", "watch_interval",
                    "max_active_checking")}
                return view.legends(), shown, units

            legends, shown, units = await in_thread(fields)
            assert legends == ["Downloads", "Connection", "Speed", "BitTorrent", "RSS", "Web UI", "Advanced"]
            # (every setting of the daemon; but the values kept for limits while off, which a
            # Transmission client's switch turns on again: a limit here is one field, 0 none)
            assert names - {"kept_limits"} <= shown, names - shown
            assert shown - names == {"ui_theme"}  # (the browser's own)
            assert units == {"download_limit": "KiB/s", "seeding_time_limit": "minutes",
                             "idle_seeding_limit": "minutes", "watch_interval": "s",
                             "max_active_checking": "jobs"}

            def change() -> list[dict[str, Any]]:
                driver.execute_script(RECORD_PATCHES)
                view.retype("max_active_checking", "2")
                Select(view.field("share_limit_action")).select_by_value("super_seed")
                view.retype("ratio_limit", "1.5")
                view.retype("idle_seeding_limit", "30")  # (minutes: 1 800 s)
                view.field("default_trackers_enabled").click()
                # (one URL a line, a blank line between tiers)
                view.retype("default_trackers", f"{a}\n {b} \n\n\n{c}\n")
                view.field("excluded_file_names_enabled").click()
                view.retype("excluded_file_names", "*.nfo\n Sample \n\n")  # (one pattern a line)
                view.retype("partial_file_suffix", ".!qB")
                Select(view.field("stop_condition")).select_by_value("metadata_received")
                view.retype("finished_torrent_export_dir", "copies")  # (inside the download folder)
                view.field("rss_processing_enabled").click()
                view.retype("rss_refresh_interval", "15")  # (minutes: 900 s)
                Select(view.field("dedup")).select_by_value("copy")
                view.retype("dedup_folders", f" {library} \n\n")  # (one folder a line)
                view.save("Saved.")
                return list(driver.execute_script("return window.patches"))

            a, b, c = "udp://127.0.0.1:9/a", "http://127.0.0.1:9/b", "http://127.0.0.1:9/c"
            library = tmp_path / "library"
            library.mkdir()
            assert await in_thread(change) == [  # (what changed alone)
                {"max_active_checking": 2, "share_limit_action": "super_seed", "ratio_limit": 1.5,
                 "idle_seeding_limit": 1800, "default_trackers_enabled": True,
                 "default_trackers": [[a, b], [c]], "excluded_file_names_enabled": True,
                 "excluded_file_names": ["*.nfo", "Sample"], "partial_file_suffix": ".!qB",
                 "stop_condition": "metadata_received",
                 "finished_torrent_export_dir": "copies", "rss_processing_enabled": True,
                 "rss_refresh_interval": 900, "dedup": "copy", "dedup_folders": [str(library)]}]
            assert (api.service.dedup.mode, api.service.dedup.folders) == ("copy", (str(library),))
            s = api.service.get_settings()
            assert (s.max_active_checking, s.share_limit_action.value, s.ratio_limit,
                    s.idle_seeding_limit) == (2, "super_seed", 1.5, 1800)
            assert (s.default_trackers_enabled, s.default_trackers) == (True, ((a, b), (c,)))
            assert (s.excluded_file_names_enabled, s.excluded_file_names) == (True, ("*.nfo", "Sample"))
            assert (s.stop_condition, s.partial_file_suffix) == ("metadata_received", ".!qB")
            assert (s.rss_processing_enabled, s.rss_refresh_interval) == (True, 900)
            assert s.finished_torrent_export_dir == str(api.download_root / "copies")  # (kept absolute)
            view_text = await in_thread(lambda: str(view.field("default_trackers").get_attribute("value")))
            assert view_text == f"{a}\n{b}\n\n{c}"  # (shown back as the server keeps them)

            def refused() -> tuple[str, str, str, str]:
                view.retype("max_connections_per_torrent", "30")  # (good, but goes with the bad one)
                view.retype("max_active_checking", "0")
                view.save("Not saved")
                reason = wait(driver, lambda d: d.find_element(
                    view.by.ID, "setting-error-max_active_checking").text)
                described = str(view.field("max_active_checking").get_attribute("aria-describedby"))
                return (str(reason), str(view.field("max_active_checking").get_attribute("value")),
                        str(view.field("max_connections_per_torrent").get_attribute("value")), described)

            reason, kept, other, described = await in_thread(refused)
            assert "-1 (no limit) or a whole number from 1" in reason
            assert (kept, other) == ("0", "30")  # (the form as typed)
            assert "setting-error-max_active_checking" in described.split()
            s = api.service.get_settings()
            assert (s.max_active_checking, s.max_connections_per_torrent) == (2, 60)  # (nothing saved)


async def test_the_indexed_folders_say_what_is_held_and_which_folder_cannot_be_read(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    for name, size in (("a.mkv", 70_000), ("b.nfo", 900)):
        (library / name).write_bytes(bytes(size))
    missing = tmp_path / "not-mounted"
    async with running_api(tmp_path / "daemon") as api:
        data = make_payload(api.download_root, [("a.bin", 40_000)], name="A")
        await seeding_job(api, make_torrent(data, version="v1"))
        await api.service.update_settings(dedup_folders=[str(library), str(missing)])
        with anyio.fail_after(20):
            while api.service.dedup.status()["walked_at"] is None or not api.service.dedup.status()["jobs"]:
                await anyio.sleep(0.02)
        with chromium() as driver:
            view = SettingsView(driver, api.url)

            def status() -> str:
                view.open()
                return str(wait(driver, lambda d: d.find_element(
                    view.by.ID, "setting-status-dedup_folders").text))

            text = await in_thread(status)
    assert text.startswith("Held: the files of 1 complete torrent, and 2 files in the folders (2 hashed). "
                           "Last looked at "), text
    assert f"{missing}: No such file or directory." in text


async def test_the_add_dialog_chooses_the_files_of_several_torrents_and_of_a_magnet_once_fetched(
        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    one = make_torrent(make_payload(tmp_path / "one", (("a.bin", 30_000), ("docs/b.txt", 2_000),
                                                       ("docs/c.txt", 3_000)), name="First"),
                       piece_length=16 * 1024)
    two = make_torrent(make_payload(tmp_path / "two", (("x.bin", 20_000), ("y.bin", 10_000)), name="Second"),
                       piece_length=16 * 1024)
    paths = []
    for name, t in (("first.torrent", one), ("second.torrent", two)):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(t.to_bytes())
    fetched = make_torrent(make_payload(tmp_path / "seed", (("v.mkv", 50_000), ("subs/en.srt", 1_000),
                                                             ("subs/fr.srt", 1_000)), name="Fetched"),
                           version="v1", piece_length=16 * 1024)
    async with Session(fetched, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        link = f"{fetched.magnet_uri()}&x.pe=127.0.0.1:{seeder.listen_port}"
        async with running_api(tmp_path / "daemon") as api:
            def run() -> tuple[dict[str, list[str]], str]:
                driver.get(f"{api.url}/#token={TOKEN}")
                wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
                driver.find_element(By.ID, "add-open").click()
                driver.find_element(By.ID, "ad-files").send_keys("\n".join(str(p) for p in paths))
                driver.find_element(By.ID, "ad-links").send_keys(link)
                # the magnet's files, once its metadata came (its info dict fetched, no job yet)
                wait(driver, lambda d: d.find_elements(
                    By.CSS_SELECTOR, '.add-item.fetched input[aria-label="Fetched/v.mkv"]'), 60)
                assert api.service.list() == []
                trees = {}
                for section in driver.find_elements(By.CSS_SELECTOR, "#ad-trees .add-item"):
                    name = section.find_element(By.CSS_SELECTOR, ".item-name").text
                    trees[name] = [str(b.get_attribute("aria-label"))
                                   for b in section.find_elements(By.CSS_SELECTOR, "input")]

                def tick(label: str) -> None:
                    driver.find_element(By.CSS_SELECTOR, f'#ad-trees input[aria-label="{label}"]').click()

                tick("the folder First/docs")  # (both files under it)
                tick("Second/y.bin")
                tick("the folder Fetched/subs")
                tick("Fetched/subs/en.srt")  # (back on: the folder is half ticked)
                half = driver.execute_script(
                    "return document.querySelector('#ad-trees input[aria-label=\"the folder Fetched/subs\"]')"
                    ".indeterminate")
                assert half is True
                sizes = " | ".join(
                    e.text for e in driver.find_elements(By.CSS_SELECTOR, "#ad-trees .item-size"))
                driver.find_element(By.ID, "ad-paused").click()
                driver.find_element(By.ID, "ad-submit").click()
                wait(driver, lambda d: not d.find_element(By.ID, "add-dialog").is_displayed())
                return trees, sizes

            with chromium(1400, 900) as driver:
                trees, sizes = await in_thread(run)
            assert trees == {
                "Fetched": ["the folder Fetched", "the folder Fetched/subs", "Fetched/subs/en.srt",
                            "Fetched/subs/fr.srt", "Fetched/v.mkv"],
                "First": [
                    "the folder First", "First/a.bin", "the folder First/docs", "First/docs/b.txt",
                    "First/docs/c.txt"],
                "Second": ["the folder Second", "Second/x.bin", "Second/y.bin"]}, trees
            assert "1 of 3 files" in sizes and "1 of 2 files" in sizes and "2 of 3 files" in sizes, sizes
            with anyio.fail_after(20):
                while len(api.service.list()) < 3:
                    await anyio.sleep(0.05)
            by_name = {j.name: j for j in api.service.list()}
            assert all(j.state is JobState.PAUSED for j in by_name.values())
            assert [f.selected for f in by_name["First"].files] == [True, False, False]
            assert [f.selected for f in by_name["Second"].files] == [True, False]
            assert [f.selected for f in by_name["Fetched"].files] == [True, False, True]
            assert by_name["Fetched"].info_hash == fetched.info_hash.hex()


async def test_the_add_dialog_s_stop_condition_stops_the_torrent_once_its_files_are_checked(
        tmp_path: Path) -> None:
    """The add dialog's "Stop" choice is the add's stop condition: a .torrent added not paused,
    to stop once its files are checked, is paused by itself once checked (nothing on disk)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    torrent = make_torrent(make_payload(tmp_path / "made", (("a.bin", 30_000),), name="Stopped"),
                           piece_length=16 * 1024)
    path = tmp_path / "stopped.torrent"
    path.write_bytes(torrent.to_bytes())
    async with running_api(tmp_path / "daemon") as api:
        def run() -> None:
            driver.get(f"{api.url}/#token={TOKEN}")
            wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
            driver.find_element(By.ID, "add-open").click()
            wait(driver, lambda d: d.find_element(By.ID, "add-dialog").is_displayed())
            driver.find_element(By.ID, "ad-files").send_keys(str(path))
            wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#ad-trees input[data-index]"))
            Select(driver.find_element(By.ID, "ad-stop")).select_by_value("files_checked")
            driver.find_element(By.ID, "ad-submit").click()
            wait(driver, lambda d: not d.find_element(By.ID, "add-dialog").is_displayed())

        with chromium(1400, 900) as driver:
            await in_thread(run)
        with anyio.fail_after(20):
            while not (jobs := api.service.list()) or not jobs[0].options.paused \
                    or jobs[0].state is not JobState.PAUSED:
                await anyio.sleep(0.05)
        assert jobs[0].progress == 0.0 and jobs[0].name == "Stopped"


async def test_the_peer_network_is_changed_in_settings_and_a_taken_port_shown_by_its_field(
        tmp_path: Path) -> None:
    """Encryption and PeX (BitTorrent), the protocols and the listening port (Connection) are
    real fields: a change is saved and applied to the engine; a port in use is refused by its
    field."""
    import socket

    from selenium.webdriver.support.ui import Select

    async with running_api(tmp_path) as api:
        with chromium() as driver:
            view = SettingsView(driver, api.url)

            def change() -> list[dict[str, Any]]:
                view.open()
                driver.execute_script(RECORD_PATCHES)
                Select(view.field("encryption")).select_by_value("require")
                view.field("pex_enabled").click()  # (on: off)
                Select(view.field("transport")).select_by_value("tcp")
                view.save("Saved.")
                return list(driver.execute_script("return window.patches"))

            patched = {"encryption": "require", "pex_enabled": False, "transport": "tcp"}
            assert await in_thread(change) == [patched]
            s = api.service.get_settings()
            assert (s.encryption, s.pex_enabled, s.transport) == ("require", False, "tcp")
            config = api.service.manager.config
            assert (config.encryption, config.pex_enabled, config.transport) == ("require", False, "tcp")

            kept = api.service.get_settings().listen_port  # (chosen at the start)
            with socket.socket() as taken:
                taken.bind(("", 0))
                taken.listen()
                busy = taken.getsockname()[1]

                def refused() -> tuple[str, str]:
                    view.retype("listen_port", str(busy))
                    view.save("Not saved")
                    reason = wait(driver, lambda d: d.find_element(
                        view.by.ID, "setting-error-listen_port").text)
                    return str(reason), str(view.field("listen_port").get_attribute("value"))

                reason, typed = await in_thread(refused)
            assert f"port {busy} cannot be listened on" in reason and typed == str(busy)
            assert api.service.get_settings().listen_port == kept != 0


async def test_the_mail_settings_are_typed_saved_and_a_test_mail_sent_from_the_settings(
        tmp_path: Path) -> None:
    """Downloads' mail fields: typed and saved (the password in a password field, sent as typed),
    then "Send a test mail" sends one through a loopback SMTP server and says where it went; a
    server that refuses the login is said by its words."""
    from tests.integration._smtp_server import LOGIN, smtp_server

    async with smtp_server() as server, running_api(tmp_path) as api:
        with chromium() as driver:
            view = SettingsView(driver, api.url)

            def type_and_test() -> tuple[str, str]:
                view.open()
                for name, text in (("mail_to", "me@example.org"), ("mail_from", "engine@example.org"),
                                   ("mail_server", f"127.0.0.1:{server.port}"), ("mail_username", LOGIN[0]),
                                   ("mail_password", LOGIN[1])):
                    view.retype(name, text)
                view.field("mail_enabled").click()
                view.field("mail_auth_enabled").click()
                view.save("Saved.")
                driver.find_element(view.by.ID, "settings-mail-test").click()
                status = wait(driver, lambda d: (t := d.find_element(
                    view.by.ID, "settings-mail-test-status").text).startswith(("Sent", "Not sent")) and t)
                return str(status), str(view.field("mail_password").get_attribute("type"))

            status, kind = await in_thread(type_and_test)
            assert (status, kind) == (f"Sent to me@example.org through 127.0.0.1:{server.port}.", "password")
            mail = await server.mail(0)
            assert (mail.recipients, mail.login) == (["me@example.org"], LOGIN[0])
            s = api.service.get_settings()
            assert (s.mail_enabled, s.mail_auth_enabled, s.mail_password) == (True, True, LOGIN[1])

            await api.service.update_settings(mail_password="wrong")

            def refused() -> str:
                driver.find_element(view.by.ID, "settings-mail-test").click()
                return str(wait(driver, lambda d: (t := d.find_element(
                    view.by.ID, "settings-mail-test-status").text).startswith("Not sent") and t))

            said = await in_thread(refused)
            refusal = f"Not sent: mail_username: 127.0.0.1:{server.port} refused the login: 535"
            assert said.startswith(refusal), said
