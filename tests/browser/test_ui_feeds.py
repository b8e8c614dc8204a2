"""The web UI's feeds and download rules in headless Chromium (the fixtures of test_ui.py), as a
seedbox's admin uses them: a feed added by its URL and read at once, its articles listed (a link
that is no http(s) URL shown as text, never followed), one downloaded by a click (its torrent
added, the article read); a download rule made in the form (tags, layout, priority and days to
ignore among its fields), shown with the articles it takes, a bad one refused with the server's
reason in the form (a number that is none said in the page, nothing sent), then deleted once
confirmed; the feed removed once confirmed (a first click on Remove or Delete only asks). And the
feeds in folders, as qBittorrent's RSS view keeps them: a folder made, a feed moved into it, the
folder's articles those of its feeds, a folder and a feed made inside the one open, the folder
removed with what it holds once confirmed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_ui import chromium, in_thread, wait
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload, make_torrent
from tests.integration.test_api_feeds import feed_site

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _feed(port: int) -> bytes:
    base = f"http://127.0.0.1:{port}"
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Example shows</title>
<item><title>Show S01E02 720p</title><guid>e2</guid><pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate>
 <link>{base}/page/e2</link><enclosure type="application/x-bittorrent" url="{base}/t/e2.torrent"/></item>
<item><title>Scripted</title><guid>js</guid><link>javascript:alert(1)</link></item>
</channel></rss>""".encode()


def _feed_added(driver: Any, api_url: str, url: str) -> None:
    """The Feeds dialog opened on an empty reader, the feed of ``url`` added there and its two
    articles listed (read at once, the reading of feeds being off)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{api_url}/#token={TOKEN}")
    wait(driver, lambda d: d.find_element(By.ID, "feeds-open").is_displayed())
    driver.find_element(By.ID, "feeds-open").click()
    wait(driver, lambda d: "No feed yet" in d.find_element(By.ID, "feed-name").text)
    driver.find_element(By.ID, "feed-url").send_keys(url)
    driver.find_element(By.CSS_SELECTOR, "#feed-add button[type=submit]").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed-articles li")) == 2)


async def test_a_feed_is_added_read_and_downloaded_from_and_a_rule_made_shown_and_deleted(
        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    wanted = make_torrent(make_payload(tmp_path / "p", (("a.bin", 40_000),), name="show e2"))
    async with feed_site(_feed, wanted.to_bytes()) as url, running_api(tmp_path) as api:
        with chromium(1400, 900) as driver:
            def articles(d: Any) -> list[Any]:
                return list(d.find_elements(By.CSS_SELECTOR, "#feed-articles li"))

            def added_and_listed() -> tuple[str, list[str], str | None]:
                _feed_added(driver, api.url, url)
                titles = [a.find_element(By.CLASS_NAME, "title") for a in articles(driver)]
                scripted = next(t for t in titles if t.text == "Scripted")
                return (driver.find_element(By.ID, "feed-name").text, [t.text for t in titles],
                        scripted.get_attribute("href"))

            name, titles, scripted_href = await in_thread(added_and_listed)
            assert name == "Example shows" and titles == ["Show S01E02 720p", "Scripted"], (name, titles)
            assert scripted_href is None  # (a javascript: link is text, not a link)

            def downloads() -> str:
                row = next(a for a in articles(driver) if a.get_attribute("data-article") == "e2")
                row.find_element(By.CSS_SELECTOR, "button[data-article]").click()
                wait(driver, lambda d: "read" in (next(a for a in articles(d) if a.get_attribute(
                    "data-article") == "e2").get_attribute("class") or ""))
                return str(driver.find_element(By.ID, "feeds-status").text)

            said = await in_thread(downloads)
            assert said == 'Added "show e2".', said
            jobs = api.service.client_jobs()
            assert [j.info_hash for j in jobs] == [wanted.info_hash.hex()]

            def rule_made() -> list[str]:
                driver.find_element(By.ID, "feeds-tab-rules").click()
                wait(driver, lambda d: d.find_element(By.ID, "rule-form").is_displayed())
                driver.find_element(By.ID, "rule-new").click()
                driver.find_element(By.ID, "rule-name").send_keys("shows")
                driver.find_element(By.ID, "rule-must").send_keys("720p")
                driver.find_element(By.ID, "rule-category").send_keys("tv")
                driver.find_element(By.ID, "rule-tags").send_keys("hd, tv ,hd")
                driver.find_element(By.CSS_SELECTOR, '#rule-layout option[value="subfolder"]').click()
                for field, value in (("rule-priority", "3"), ("rule-ignore-days", "2")):
                    driver.find_element(By.ID, field).clear()
                    driver.find_element(By.ID, field).send_keys(value)
                driver.find_element(By.CSS_SELECTOR, f'#rule-feeds input[data-url="{url}"]').click()
                driver.find_element(By.CSS_SELECTOR, "#rule-form button[type=submit]").click()
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#rule-list [data-rule="shows"]'))
                wait(driver, lambda d: "720p" in d.find_element(By.ID, "rule-matches").text)
                return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#rule-matches li")]

            assert await in_thread(rule_made) == ["Example shows: Show S01E02 720p"]
            r = await api.client.get("/api/feeds/rules")
            rule = r.json()["rules"][0]
            assert (rule["name"], rule["must_contain"], rule["feeds"], rule["category"], rule["enabled"]) == \
                ("shows", "720p", [url], "tv", True)
            assert (rule["tags"], rule["content_layout"], rule["priority"], rule["ignore_days"]) == \
                (["hd", "tv"], "subfolder", 3, 2)

            def not_a_number() -> tuple[str, str]:
                field = driver.find_element(By.ID, "rule-priority")
                field.clear()
                field.send_keys("three")
                driver.find_element(By.CSS_SELECTOR, "#rule-form button[type=submit]").click()
                said = wait(driver, lambda d: d.find_element(By.ID, "rule-error").is_displayed()
                            and d.find_element(By.ID, "rule-error").text)
                field.clear()
                field.send_keys("3")
                return str(said), str(driver.find_element(By.ID, "rule-tags").get_attribute("value"))

            said, tags = await in_thread(not_a_number)
            assert said == 'Priority: "three" is not a whole number.', said
            assert tags == "hd, tv"  # (as the saved rule has them, shown again)
            assert (await api.client.get("/api/feeds/rules")).json()["rules"][0]["priority"] == 3

            def refused() -> str:
                driver.find_element(By.ID, "rule-regex").click()
                must = driver.find_element(By.ID, "rule-must")
                must.clear()
                must.send_keys("(unclosed")
                driver.find_element(By.CSS_SELECTOR, "#rule-form button[type=submit]").click()
                return str(wait(driver, lambda d: d.find_element(By.ID, "rule-error").is_displayed()
                                and d.find_element(By.ID, "rule-error").text))

            said = await in_thread(refused)
            assert "must_contain" in said and "regular expression" in said, said
            assert (await api.client.get("/api/feeds/rules")).json()["rules"][0]["must_contain"] == "720p"

            def asked(kind: str, button: str) -> str:
                driver.find_element(By.ID, button).click()
                return str(wait(driver, lambda d: d.find_element(By.ID, f"{kind}-confirm").is_displayed()
                                and d.find_element(By.ID, f"{kind}-confirm-text").text))

            def kept(kind: str, button: str) -> str:
                said = asked(kind, button)
                driver.find_element(By.ID, f"{kind}-confirm-keep").click()
                wait(driver, lambda d: not d.find_element(By.ID, f"{kind}-confirm").is_displayed())
                return said

            assert await in_thread(lambda: kept("rule", "rule-delete")) == 'Delete the rule "shows"?'
            rules = (await api.client.get("/api/feeds/rules")).json()["rules"]
            assert [r["name"] for r in rules] == ["shows"]

            def deleted() -> None:
                asked("rule", "rule-delete")
                driver.find_element(By.ID, "rule-confirm-delete").click()
                wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#rule-list button[data-rule]"))

            await in_thread(deleted)
            assert (await api.client.get("/api/feeds/rules")).json() == {"rules": []}

            def to_feeds() -> str:
                driver.find_element(By.ID, "feeds-tab-feeds").click()
                wait(driver, lambda d: d.find_element(By.ID, "feed-remove").is_displayed())
                return kept("feed", "feed-remove")

            assert await in_thread(to_feeds) == 'Remove the feed "Example shows" and its articles?'
            assert len((await api.client.get("/api/feeds")).json()["feeds"]) == 1

            def removed() -> str:
                asked("feed", "feed-remove")
                driver.find_element(By.ID, "feed-confirm-remove").click()
                return str(wait(driver, lambda d: "No feed yet" in d.find_element(By.ID, "feed-name").text
                                and d.find_element(By.ID, "feed-name").text))

            await in_thread(removed)
            assert (await api.client.get("/api/feeds")).json()["feeds"] == []


async def test_feeds_are_kept_in_folders_made_moved_into_shown_together_and_removed(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wanted = make_torrent(make_payload(tmp_path / "p", (("a.bin", 40_000),), name="show e2"))
    async with feed_site(_feed, wanted.to_bytes()) as url, running_api(tmp_path) as api:
        other = url.replace("/feed.xml", "/other.xml")  # (a second feed, read in vain: 404)
        with chromium(1400, 900) as driver:
            def rows(d: Any) -> list[tuple[str, str, str]]:
                """The feed list as drawn: (its name, its unread mark, its left padding) a row."""
                out = []
                for b in d.find_elements(By.CSS_SELECTOR, "#feed-list button"):
                    name, mark = b.find_elements(By.TAG_NAME, "span")[:2]
                    out.append((name.text, mark.text, b.value_of_css_property("padding-left")))
                return out

            def click_row(name: str) -> None:
                next(b for b in driver.find_elements(By.CSS_SELECTOR, "#feed-list button")
                     if b.find_elements(By.TAG_NAME, "span")[0].text == name).click()

            def foldered() -> list[tuple[str, str, str]]:
                _feed_added(driver, api.url, url)
                driver.find_element(By.ID, "folder-name").send_keys("TV")  # (at the top: the feed open is)
                driver.find_element(By.CSS_SELECTOR, "#folder-add button[type=submit]").click()
                wait(driver, lambda d: "a folder of 0 feeds" in d.find_element(By.ID, "feed-name").text)
                click_row("Example shows")
                wait(driver, lambda d: d.find_element(By.ID, "feed-name").text == "Example shows")
                Select(driver.find_element(By.ID, "feed-move")).select_by_visible_text("TV")
                wait(driver, lambda d: "moved to TV" in d.find_element(By.ID, "feeds-status").text)
                click_row("TV")
                wait(driver, lambda d: "a folder of 1 feeds" in d.find_element(By.ID, "feed-name").text
                     and len(d.find_elements(By.CSS_SELECTOR, "#feed-articles li")) == 2)
                return rows(driver)

            drawn = await in_thread(foldered)
            assert [(name, unread) for name, unread, _ in drawn] == [("TV", "2"), ("Example shows", "2")], \
                drawn
            padding = [float(pad.removesuffix("px")) for _, _, pad in drawn]
            assert padding[1] > padding[0]  # (the feed drawn inside its folder)
            listing = (await api.client.get("/api/feeds")).json()
            paths = [f["path"] for f in listing["feeds"]]
            assert (listing["folders"], paths) == (["TV"], [f"TV\\{url}"]), listing

            def from_the_folder() -> tuple[list[str], str]:
                froms = [li.find_element(By.CLASS_NAME, "from").text
                         for li in driver.find_elements(By.CSS_SELECTOR, "#feed-articles li")]
                driver.find_element(By.ID, "folder-name").send_keys("HD")  # (inside the folder open)
                driver.find_element(By.CSS_SELECTOR, "#folder-add button[type=submit]").click()
                wait(driver, lambda d: "Folder TV\\HD made." in d.find_element(By.ID, "feeds-status").text)
                driver.find_element(By.ID, "feed-url").send_keys(other)  # (into HD, open now)
                driver.find_element(By.CSS_SELECTOR, "#feed-add button[type=submit]").click()
                wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed-list button")) == 4)
                click_row("TV")
                name = wait(driver, lambda d: "a folder of 2 feeds" in d.find_element(By.ID, "feed-name").text
                            and d.find_element(By.ID, "feed-name").text)
                return froms, str(name)

            froms, name = await in_thread(from_the_folder)
            assert froms == ["· Example shows", "· Example shows"], froms
            listing = (await api.client.get("/api/feeds")).json()
            assert listing["folders"] == ["TV", "TV\\HD"], listing
            assert {f["path"] for f in listing["feeds"]} == {f"TV\\{url}", f"TV\\HD\\{other}"}, listing

            def removed() -> str:
                driver.find_element(By.ID, "feed-remove").click()
                said = wait(driver, lambda d: d.find_element(By.ID, "feed-confirm").is_displayed()
                            and d.find_element(By.ID, "feed-confirm-text").text)
                driver.find_element(By.ID, "feed-confirm-remove").click()
                wait(driver, lambda d: "No feed yet" in d.find_element(By.ID, "feed-name").text)
                return str(said)

            assert await in_thread(removed) == 'Remove the folder "TV" and the 2 feeds in it?'
            assert (await api.client.get("/api/feeds")).json() == {"folders": [], "feeds": []}


async def test_what_an_action_said_stays_while_the_dialogs_polls_draw_the_feeds_again(tmp_path: Path) -> None:
    """The dialog asks for the feeds every 3 s and draws them again when they changed; the status
    line keeps what the last action said (its result or its error) through such a redraw, and
    the open feed's counts are drawn beside its name. (A redraw wrote the counts over the status
    line: a result or an error said a moment before was gone before it was read.)"""
    from selenium.webdriver.common.by import By

    wanted = make_torrent(make_payload(tmp_path / "p", (("a.bin", 40_000),), name="show e2"))
    async with feed_site(_feed, wanted.to_bytes()) as url, running_api(tmp_path) as api:
        with chromium(1400, 900) as driver:
            def all_read() -> str:
                _feed_added(driver, api.url, url)
                wait(driver, lambda d: d.find_element(By.ID, "feed-counts").text == "2 articles, 2 unread")
                driver.find_element(By.ID, "feed-read").click()
                return str(wait(driver, lambda d: d.find_element(By.ID, "feed-counts").text
                                == "2 articles, 0 unread" and d.find_element(By.ID, "feeds-status").text))

            said = await in_thread(all_read)
            assert said == f"{url}: all read.", said
            # a change made elsewhere: the next poll draws the list again, with the folder
            r = await api.client.post("/api/feeds/folders", json={"path": "Elsewhere"})
            assert r.status_code == 201, r.text

            def redrawn() -> tuple[str, str]:
                wait(driver, lambda d: any(b.text.startswith("Elsewhere")
                                           for b in d.find_elements(By.CSS_SELECTOR, "#feed-list button")))
                return (driver.find_element(By.ID, "feeds-status").text,
                        driver.find_element(By.ID, "feed-counts").text)

            assert await in_thread(redrawn) == (said, "2 articles, 0 unread")
