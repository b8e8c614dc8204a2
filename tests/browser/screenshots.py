"""The pictures of the web UI in docs/ (headless Chromium, as the browser tests drive it):

    python3 -m tests.browser.screenshots docs

ui.png (the list at 1400x900: seeds, two downloads from rate-limited loopback seeders, paused
magnets in categories with tags, one ticked), ui-add.png (the add dialog: a .torrent's
and a magnet's files, the magnet's metadata fetched from a loopback seeder), ui-settings.png (the
settings), ui-create.png (the torrent creator: one made, one being filled in) and ui-phone.png (the
list on a phone, 400 px wide)."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from tests.browser.test_ui import chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, Api, running_api
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from torrent_engine.jobs import AddOptions, JobFeatures
from torrent_engine.session import Session

Files = tuple[tuple[str, int], ...]
SEEDS: tuple[tuple[str, Files, str, tuple[str, ...]], ...] = (
    ("debian-13.2.0-amd64-netinst.iso", (("debian-13.2.0-amd64-netinst.iso", 3_100_000),), "linux", ("iso",)),
    ("Big Buck Bunny (2008) 1080p", (("Big Buck Bunny.mkv", 2_600_000), ("Subs/en.srt", 40_000)), "films",
     ("cc-by",)),
    ("archlinux-2026.11.01-x86_64.iso", (("archlinux-2026.11.01-x86_64.iso", 2_300_000),), "linux", ("iso",)),
    ("Project Gutenberg - Top 100 (EPUB)", tuple((f"book-{i:03d}.epub", 30_000) for i in range(12)), "books",
     ()))
DOWNLOADS: tuple[tuple[str, Files, str, tuple[str, ...]], ...] = (
    ("Sintel (2010) 4K", (("Sintel.mkv", 6_000_000), ("Sintel.en.srt", 30_000)), "films", ("cc-by", "4k")),
    ("Fedora-Workstation-Live-43.iso", (("Fedora-Workstation-Live-43.iso", 5_000_000),), "linux", ("iso",)))
PAUSED = (("Tears of Steel (2012) 1080p", "films"), ("ubuntu-26.04-desktop-amd64.iso", "linux"),
          ("LibreOffice_25.8_Linux_x86-64_deb", "software"), ("Cosmos Laundromat (2015)", "films"),
          ("openSUSE-Tumbleweed-DVD-x86_64", "linux"), ("Blender Open Movie Collection", "films"))


@asynccontextmanager
async def a_daemon(tmp: Path) -> AsyncIterator[tuple[Api, list[str], Path, str]]:
    """A daemon with seeds, two downloads and paused magnets; the jobs' ids, a .torrent file to
    add and a magnet whose seeder runs."""
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(running_api(tmp / "daemon"))
        service = api.service
        for name in ("films", "linux", "books", "software"):
            await service.create_category(name)
        ids = []
        for name, files, category, tags in SEEDS:  # complete in the download folder: seed mode
            payload = make_payload(api.download_root, files, name=name)
            torrent = make_torrent(payload, piece_length=64 * 1024)
            job, _ = await service.add(torrent.to_bytes(), AddOptions(
                seed_mode=True, features=JobFeatures(category=category, tags=tags)))
            ids.append(job.id)
        for i, (name, files, category, tags) in enumerate(DOWNLOADS):  # from rate-limited seeders
            torrent = make_torrent(make_payload(tmp / f"seed{i}", files, name=name), piece_length=64 * 1024)
            limit = loopback_config(upload_rate_limit=180_000 + 90_000 * i)
            seeder = await stack.enter_async_context(Session(torrent, tmp / f"seed{i}", config=limit))
            await seeder.wait_ready()
            job, _ = await service.add(torrent.to_bytes(), AddOptions(
                peers=(("127.0.0.1", seeder.listen_port),),
                features=JobFeatures(category=category, tags=tags)))
            ids.append(job.id)
        await service.add_many([f"magnet:?xt=urn:btih:{i + 0xA11:040x}&dn={name.replace(' ', '+')}"
                                for i, (name, _) in enumerate(PAUSED)], AddOptions(paused=True))
        for job in service.list():
            for name, category in PAUSED:
                if job.name == name:
                    await service.set_features([job.id], category=category)
        chosen = make_torrent(make_payload(tmp / "chosen", (("Season 1/E01.mkv", 900_000),
                                                            ("Season 1/E02.mkv", 880_000),
                                                            ("Season 1/E03.mkv", 910_000),
                                                            ("Extras/Making of.mkv", 400_000),
                                                            ("Extras/poster.jpg", 90_000)),
                                                  name="Open Series"), piece_length=64 * 1024)
        (tmp / "Open Series.torrent").write_bytes(chosen.to_bytes())
        fetched = make_torrent(make_payload(tmp / "fetched", (("Elephants Dream.mkv", 700_000),
                                                               ("Subtitles/en.srt", 20_000),
                                                               ("Subtitles/de.srt", 20_000)),
                                                     name="Elephants Dream (2006)"), version="v1",
                               piece_length=64 * 1024)
        seeder = await stack.enter_async_context(
            Session(fetched, tmp / "fetched", config=loopback_config()))
        await seeder.wait_ready()
        link = f"{fetched.magnet_uri()}&x.pe=127.0.0.1:{seeder.listen_port}"
        r = await api.client.post("/api/creations", json={  # (the creator's list: one made)
            "source_path": SEEDS[0][0], "version": "hybrid", "start_seeding": False,
            "trackers": [["udp://tracker.example.org:6969/announce"]]})
        assert r.status_code == 201, r.text
        with anyio.fail_after(60):
            while (await api.client.get(f"/api/creations/{r.json()['id']}")).json()["status"] != "finished":
                await anyio.sleep(0.1)
        yield api, ids, tmp / "Open Series.torrent", link


def pictures(driver: Any, api: Api, ids: list[str], torrent_file: Path, link: str, out: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{api.url}/#token={TOKEN}")
    wait(driver, lambda d: d.find_element(By.ID, "conn-text").text == "live")
    time.sleep(12)  # (the downloads under way: rates and the charts have something to show)
    sintel = ids[len(SEEDS)]
    driver.find_element(By.CSS_SELECTOR, f'#jobs tr.job[data-job-id="{sintel}"] input[data-select]').click()
    driver.save_screenshot(str(out / "ui.png"))
    driver.find_element(By.ID, "bulk-clear").click()
    driver.find_element(By.ID, "add-open").click()
    driver.find_element(By.ID, "ad-files").send_keys(str(torrent_file))
    driver.find_element(By.ID, "ad-links").send_keys(link)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".add-item.fetched"), 60)
    driver.find_element(
        By.CSS_SELECTOR, '#ad-trees input[aria-label="the folder Open Series/Extras"]').click()
    driver.find_element(
        By.CSS_SELECTOR, '#ad-trees input[aria-label="Elephants Dream (2006)/Subtitles/de.srt"]').click()
    driver.find_element(By.ID, "ad-category").send_keys("films")
    time.sleep(0.5)
    driver.save_screenshot(str(out / "ui-add.png"))
    driver.find_element(By.ID, "ad-cancel").click()
    driver.find_element(By.ID, "settings-open").click()
    wait(driver, lambda d: d.find_element(By.ID, "setting-download_limit").is_displayed())
    driver.execute_script("document.getElementById('settings-group-speed').scrollIntoView()")
    time.sleep(0.5)
    driver.save_screenshot(str(out / "ui-settings.png"))
    driver.find_element(By.ID, "settings-close").click()
    driver.find_element(By.ID, "create-open").click()  # (one made before, one being filled in)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#create-tasks li[data-task].finished"))
    for field, text in (("create-source", "Project Gutenberg - Top 100 (EPUB)"),
                        ("create-trackers", "udp://tracker.example.org:6969/announce\n\n"
                                            "https://tracker.example.net/announce"),
                        ("create-web-seeds", "https://mirror.example.org/gutenberg/"),
                        ("create-comment", "the 100 most read books of the week")):
        driver.find_element(By.ID, field).send_keys(text)
    driver.find_element(By.ID, "create-private").click()
    time.sleep(0.5)
    driver.save_screenshot(str(out / "ui-create.png"))
    driver.find_element(By.ID, "create-close").click()
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 400, "height": 860, "deviceScaleFactor": 1, "mobile": True})
    driver.refresh()
    wait(driver, lambda d: d.find_element(By.ID, "conn-text").get_attribute("textContent") == "live")
    time.sleep(3)
    driver.save_screenshot(str(out / "ui-phone.png"))


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="te-shots-") as tmp:
        async with a_daemon(Path(tmp)) as (api, ids, torrent_file, link):
            with chromium(1400, 900) as driver:
                # (the window's inside, 1400x900 exactly: what the pictures show)
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                    "width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
                await in_thread(lambda: pictures(driver, api, ids, torrent_file, link, out))


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
