"""Feeds read (RSS 2.0, RSS 1.0, Atom), the download rules (qBittorrent's semantics: wildcards,
regular expressions, episode filters, the smart filter with its REPACKs and PROPERs, ignored
days), and the feeds' record (folders, moves, a feed's new URL followed by its rules, articles
merged and bounded, read marks; its JSON read back, a broken one refused saying what is wrong)."""

from __future__ import annotations

import calendar
import re

import pytest

from torrent_engine.feeds import FeedConflict, FeedRule, FeedState, RuleError, rule_from_json, rule_json
from torrent_engine.feeds.rules import episode_of, judge, smart_pattern, taken
from torrent_engine.formats.feed import Article, FeedError, ParsedFeed, parse_feed
from torrent_engine.jobs import InvalidJobRequest
from torrent_engine.jobs.tuning.settings import DEFAULT_SMART_EPISODE_FILTERS, ServiceSettings, updated

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
 <channel>
  <title>Example tracker</title>
  <lastBuildDate>Mon, 30 Nov 2026 10:00:00 +0000</lastBuildDate>
  <item>
   <title> Show S01E05 1080p </title>
   <link>https://example.test/details/5</link>
   <guid isPermaLink="false">five</guid>
   <pubDate>Mon, 30 Nov 2026 09:00:00 GMT</pubDate>
   <enclosure url="https://example.test/get/5.torrent" type="application/x-bittorrent" length="1"/>
   <description><![CDATA[<b>bold</b> &amp; more]]></description>
  </item>
  <item>
   <title>A magnet one</title>
   <link>magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567</link>
  </item>
  <item><title>no torrent, no id but its title</title><link>https://example.test/page</link></item>
  <item><title>five again</title><guid>five</guid></item>
  <item><title></title></item>
 </channel>
</rss>"""

ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom">
 <title>Atom side</title><updated>2026-11-30T10:00:00Z</updated>
 <entry><id>urn:a</id><title>Relative</title><updated>2026-11-30T08:00:00Z</updated>
  <link rel="alternate" href="/page/a"/>
  <link rel="enclosure" type="application/x-bittorrent" href="/t/a.torrent"/>
  <author><name>someone</name></author><summary>short</summary></entry>
 <entry><id>urn:b</id><title>Magnet</title><link href="magnet:?xt=urn:btih:aa"/></entry>
</feed>"""

RDF = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
 <channel><title>RDF side</title></channel>
 <item><title>One</title><link>https://x.test/1.torrent</link><dc:date>2026-11-29T12:00:00+01:00</dc:date></item>
</rdf:RDF>"""

SMART = smart_pattern(DEFAULT_SMART_EPISODE_FILTERS)


def at(*when: int) -> float:
    """Epoch seconds of a UTC time."""
    return float(calendar.timegm((*when, 0, 0)[:6]))


def test_rss_articles_their_torrents_ids_and_dates() -> None:
    feed = parse_feed(RSS)
    assert (feed.title, feed.last_build_date) == ("Example tracker", "Mon, 30 Nov 2026 10:00:00 +0000")
    first, magnet, page = feed.articles  # (the second "five" and the one with nothing: passed over)
    assert (first.id, first.title, first.torrent_url, first.link) == (
        "five", "Show S01E05 1080p", "https://example.test/get/5.torrent", "https://example.test/details/5")
    assert first.date == at(2026, 11, 30, 9) and first.description == "<b>bold</b> &amp; more"  # (CDATA)
    assert magnet.torrent_url.startswith("magnet:?xt=") and magnet.id == magnet.torrent_url
    assert not magnet.link
    assert page.torrent_url == page.link == "https://example.test/page" and page.id == page.torrent_url
    assert magnet.date is None


def test_atom_and_rss_1_0() -> None:
    atom = parse_feed(ATOM, "https://example.test/feeds/atom.xml")
    assert atom.title == "Atom side"
    relative, magnet = atom.articles
    assert (relative.torrent_url, relative.link, relative.author, relative.description) == (
        "https://example.test/t/a.torrent", "https://example.test/page/a", "someone", "short")
    assert relative.date == at(2026, 11, 30, 8) and magnet.torrent_url == "magnet:?xt=urn:btih:aa"
    rdf = parse_feed(RDF)
    assert rdf.title == "RDF side" and rdf.articles[0].torrent_url == "https://x.test/1.torrent"
    assert rdf.articles[0].date == at(2026, 11, 29, 11)


@pytest.mark.parametrize(("data", "said"), [
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
     b"<rss><channel><title>&lol2;</title></channel></rss>", "document type declaration"),
    (b"<rss><channel><title>open</channel></rss>", "line 1"),
    (b"<html><body/></html>", "<html> is no feed"),
    (b"<rss version='2.0'/>", "without its channel"),
    (b"", "not well-formed"),
])
def test_what_is_no_feed_is_refused_saying_why_and_where(data: bytes, said: str) -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(data)
    assert said in str(caught.value), caught.value


def rule(**kw: object) -> FeedRule:
    return FeedRule.from_qbt(kw, "r")


def takes(r: FeedRule, title: str, date: float = 0.0, repacks: bool = True) -> tuple[str, ...] | None:
    return judge(r, title, date, smart=SMART, repacks=repacks)


def test_wildcards_alternatives_and_exclusions() -> None:
    r = rule(mustContain="show 1080p|other*thing", mustNotContain="cam|ts?rip")
    assert takes(r, "Show S01E05 1080p WEB") == ()
    assert takes(r, "1080P show") == ()  # (words in any order, any case)
    assert takes(r, "The Other Big Thing") == ()
    assert takes(r, "Show 720p") is None
    assert takes(r, "Show 1080p CAM") is None and takes(r, "Show 1080p tsxrip") is None
    sets = rule(mustContain="s0[12]e0?")  # (a set of characters, as qBittorrent's wildcards take)
    assert takes(sets, "Show S01E05") == () and takes(sets, "Show S03E01") is None
    assert takes(rule(), "anything") == ()
    assert takes(rule(enabled=False), "anything") == ()  # (the reader passes a disabled rule over)


def test_a_regular_expression_and_one_that_does_not_compile() -> None:
    r = rule(useRegex=True, mustContain=r"^show\.s\d+e\d+", mustNotContain=r"(?i)german")
    assert takes(r, "Show.S01E02.720p") == () and takes(r, "x Show.S01E02") is None
    assert takes(r, "Show.S01E02.GERMAN") is None
    with pytest.raises(RuleError) as caught:
        rule(useRegex=True, mustContain="(unclosed")
    assert caught.value.field == "mustContain"


@pytest.mark.parametrize(("spec", "yes", "no"), [
    ("1x2;", ["Show S01E02", "show s1.e2 x", "Show 1x02"], ["Show S01E12", "Show S02E02", "Show S01E03"]),
    ("2x5-7;", ["Show S02E05", "Show s02e7"], ["Show S02E08", "Show S01E06"]),
    ("1x8-;", ["Show S01E08", "Show S01E30", "Show S03E01"], ["Show S01E07"]),
    ("1x2;4;", ["Show S01E04"], ["Show S01E03", "Show without an episode"]),
])
def test_episode_filters(spec: str, yes: list[str], no: list[str]) -> None:
    r = rule(episodeFilter=spec)
    assert all(takes(r, t) == () for t in yes), [t for t in yes if takes(r, t) != ()]
    assert all(takes(r, t) is None for t in no), [t for t in no if takes(r, t) is not None]


def test_a_malformed_episode_filter_is_refused() -> None:
    with pytest.raises(RuleError) as caught:
        rule(episodeFilter="season one")
    assert caught.value.field == "episodeFilter"


def test_the_smart_filter_takes_each_episode_once_then_a_repack_and_a_proper_once() -> None:
    assert episode_of("Show.S01E05.720p", SMART) == "1x5"
    assert episode_of("Daily 2026.11.30 show", SMART) == "2026.11.30"
    r = rule(smartFilter=True)
    seen = takes(r, "Show S01E05 720p")
    assert seen == ("1x5",)
    r = taken(r, 100.0, seen)
    assert (r.last_match, r.previously_matched) == (100.0, ("1x5",))
    assert takes(r, "Show S01E05 1080p") is None  # (the same episode again)
    assert takes(r, "Show no episode") is None
    repack = takes(r, "Show S01E05 REPACK")
    assert repack == ("1x5-REPACK",)
    assert takes(r, "Show S01E05 REPACK", repacks=False) is None
    r = taken(r, 200.0, repack)
    assert takes(r, "Show S01E05 REPACK 1080p") is None
    assert takes(r, "Show S01E05 PROPER REPACK") == ("1x5-REPACK-PROPER", "1x5-REPACK", "1x5-PROPER")


def test_ignore_days_after_a_match() -> None:
    r = taken(rule(ignoreDays=2), 1000.0, ())
    assert takes(r, "x", 1000.0 + 86400) is None and takes(r, "x", 1000.0 + 2 * 86400) == ()


def test_a_rule_as_qbittorrent_writes_it_and_reads_it_back() -> None:
    written = {"enabled": True, "priority": 3, "useRegex": False, "mustContain": "a|b c",
               "mustNotContain": "", "episodeFilter": "1x1-;", "affectedFeeds": ["https://f.test/rss"],
               "lastMatch": "Mon, 30 Nov 2026 09:00:00 GMT", "ignoreDays": 0, "smartFilter": True,
               "previouslyMatchedEpisodes": ["1x1"], "addPaused": True, "torrentContentLayout": "Subfolder",
               "savePath": "tv", "assignedCategory": "shows"}
    r = FeedRule.from_qbt(written, " weekly ")
    assert (r.name, r.must_contain, r.last_match, r.add_paused, r.content_layout, r.category) == (
        "weekly", ("a", "b c"), at(2026, 11, 30, 9), True, "subfolder", "shows")
    again = FeedRule.from_qbt(r.to_qbt(), r.name)
    assert again == r
    five = FeedRule.from_qbt({"torrentParams": {"category": "films", "tags": ["hd", "new"], "save_path": "f",
                                                 "stopped": False, "content_layout": "NoSubfolder"}}, "five")
    assert (five.category, five.tags, five.save_path, five.add_paused, five.content_layout) == (
        "films", ("hd", "new"), "f", False, "no_subfolder")
    assert FeedRule.from_qbt(five.to_qbt(), "five") == five


@pytest.mark.parametrize(("given", "field"), [
    ({"enabled": "yes"}, "enabled"), ({"affectedFeeds": [1]}, "affectedFeeds"),
    ({"ignoreDays": -1}, "ignoreDays"), ({"lastMatch": "yesterday"}, "lastMatch"),
    ({"assignedCategory": "/bad/"}, "assignedCategory"), ({"addPaused": "no"}, "addPaused"),
    ({"torrentParams": {"tags": "a,,b", "stopped": 1}}, "torrentParams.stopped"),
    ({"torrentContentLayout": "Flat"}, "torrentContentLayout"), ({"priority": 1.5}, "priority"),
])
def test_a_rule_of_the_wrong_kind_is_refused_naming_its_key(given: dict[str, object], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        FeedRule.from_qbt(given, "r")
    assert caught.value.field == field, caught.value
    with pytest.raises(RuleError) as caught:
        FeedRule.from_qbt({}, "  ")
    assert caught.value.field == "ruleName"


def article(n: int, date: float | None = 10.0) -> Article:
    return Article(id=f"id{n}", title=f"t{n}", torrent_url=f"https://x.test/{n}.torrent", date=date)


def test_the_tree_of_folders_and_feeds() -> None:
    state = FeedState()
    state.add_folder("TV")
    state.add_folder("TV\\Shows")
    entry = state.add_feed("https://f.test/rss", "TV\\Shows\\Feed")
    url_named = state.add_feed("https://g.test/a/b")  # (no path: named by its URL)
    assert state.feed_at("https://g.test/a/b") is url_named
    for call, field in [(lambda: state.add_folder("Nowhere\\x"), "path"),
                        (lambda: state.add_folder("TV"), "path"),
                        (lambda: state.add_feed("https://f.test/rss", "Other"), "url"),
                        (lambda: state.add_feed("ftp://f.test/rss"), "url"),
                        (lambda: state.add_folder("a\\\\b"), "path"), (lambda: state.remove(""), "path"),
                        (lambda: state.move("TV", "TV\\Shows\\In"), "destPath"),
                        (lambda: state.move("Nothing", "X"), "itemPath")]:
        with pytest.raises(FeedConflict) as caught:
            call()
        assert caught.value.field == field, caught.value
    state.set_rule(rule(affectedFeeds=["https://f.test/rss"]))
    state.move("TV", "Series")
    assert state.feed_at("Series\\Shows\\Feed") is entry and "TV\\Shows" not in state.items
    state.set_url("Series\\Shows\\Feed", "https://f.test/new")
    assert state.rules["r"].feeds == ("https://f.test/new",)  # (its rules read it at its new URL)
    gone = state.remove("Series")
    assert gone == [entry] and list(state.items) == ["https://g.test/a/b"]


def test_articles_merged_newest_first_bounded_and_read_marks() -> None:
    entry = FeedState().add_feed("https://f.test/rss")
    new = entry.take(ParsedFeed("T", "", (article(2), article(1, None))), now=50.0, keep=3)
    assert [a.id for a in new] == ["id2", "id1"] and entry.articles[1].date == 50.0
    entry.read.add("id1")
    new = entry.take(ParsedFeed("T", "", (article(4), article(3), article(2))), now=60.0, keep=3)
    assert [a.id for a in new] == ["id4", "id3"] and [a.id for a in entry.articles] == ["id4", "id3", "id2"]
    assert entry.read == set()  # (id1 is no longer kept)


def test_the_record_read_back_and_a_broken_one_refused() -> None:
    state = FeedState()
    state.add_folder("TV")
    entry = state.add_feed("https://f.test/rss", "TV\\F")
    entry.take(ParsedFeed("T", "b", (article(1), article(2, None))), now=5.0, keep=10)
    state.mark_read("TV", "id1")
    state.set_rule(rule(mustContain="x", affectedFeeds=["https://f.test/rss"]))
    again = FeedState.from_json(state.to_json())
    assert again.items.keys() == state.items.keys() and again.rules == state.rules
    back = again.feed_at("TV\\F")
    assert back is not None and back.articles == entry.articles and back.read == {"id1"}
    for broken in [{"version": 2}, {"version": 1, "items": {}, "rules": {}},
                   {"version": 1, "items": [{"path": "x", "url": "nope"}], "rules": {}},
                   {"version": 1, "items": [], "rules": {"r": {"useRegex": True, "mustContain": "("}}}]:
        with pytest.raises(ValueError):
            FeedState.from_json(broken)


def test_the_feed_settings_are_checked() -> None:
    s = updated(ServiceSettings(), {"rss_smart_episode_filters": "s(\\d+)e(\\d+)\n\n(\\d+)x(\\d+)",
                                    "rss_refresh_interval": 60, "rss_max_articles_per_feed": 5})
    assert s.rss_smart_episode_filters == ("s(\\d+)e(\\d+)", "(\\d+)x(\\d+)")
    for name, value in [("rss_smart_episode_filters", ["("]), ("rss_smart_episode_filters", []),
                        ("rss_refresh_interval", 59), ("rss_max_articles_per_feed", 0),
                        ("rss_processing_enabled", "yes")]:
        with pytest.raises(InvalidJobRequest) as caught:
            updated(ServiceSettings(), {name: value})
        assert caught.value.field == name
    assert re.search(smart_pattern(s.rss_smart_episode_filters), "x S02E03") is not None


def test_a_rule_reads_back_as_our_api_gives_it_and_its_wrong_kinds_are_named_as_ours() -> None:
    """``rule_json``/``rule_from_json``: our API's fields, read as qBittorrent's ruleDef is (the same
    checks), each of its one kind (qBittorrent's reading takes a list as text, a null as false),
    a refusal naming our field; what a rule remembers kept when a new one of its name leaves it out."""
    rule = rule_from_json({"name": "shows", "must_contain": "show*|other", "feeds": ["http://h/f"],
                           "tags": ["a"], "add_paused": None, "content_layout": "no_subfolder",
                           "last_match": 1_796_032_800, "previously_matched": ["1x1"], "priority": -2})
    assert rule.must_contain == ("show*", "other") and rule.content_layout == "no_subfolder"
    assert rule_from_json(rule_json(rule)) == rule
    kept = rule_from_json({"name": "shows", "enabled": False}, rule)
    assert (kept.last_match, kept.previously_matched, kept.feeds) == (1_796_032_800.0, ("1x1",), ())
    wrong = {"enabled": None, "feeds": "http://h/f", "priority": True, "last_match": "", "mustContain": "x",
             "category": "a//b", "tags": ["a,b"], "ignore_days": 1.5}
    for field, value in wrong.items():
        with pytest.raises(RuleError) as caught:
            rule_from_json({"name": "r", field: value})
        assert caught.value.field == field, (field, caught.value)
    with pytest.raises(RuleError, match="year 9999"):  # (written back as a date: one past 9999 cannot be)
        FeedRule.from_qbt({"lastMatch": 1e300}, "r")
