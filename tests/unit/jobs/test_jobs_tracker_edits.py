"""Editing a job's tracker tiers: add, replace, remove, Transmission's text list; bad URLs refused
whole, naming the field."""

from __future__ import annotations

import pytest

from torrent_engine.jobs.model import InvalidJobRequest, JobConflict
from torrent_engine.jobs.trackers import (
    add_trackers,
    check_url,
    parse_tier_list,
    remove_trackers,
    replace_tracker,
    tier_list_text,
    usable,
    usable_tiers,
    with_more,
)
from torrent_engine.jobs.webseeds import check_web_seed

A, B, C = "http://a.example/announce", "udp://b.example:6969", "https://c.example/ann"
TIERS = ((A, B), (C,))


@pytest.mark.parametrize("bad", ["", "   ", "not a url", "ftp://x/announce", "http://", "http://[::1/",
                                 "http://x:99999/", "magnet:?xt=urn:btih:00", "http://a b/", 42, None])
def test_a_url_we_cannot_announce_to_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidJobRequest) as err:
        check_url(bad, "urls")
    assert err.value.field == "urls"


def test_added_urls_each_get_a_tier_after_the_others_and_known_ones_are_passed_over() -> None:
    new = "http://d.example/a"
    assert add_trackers(TIERS, [new, A, new]) == ((A, B), (C,), (new,))


def test_default_trackers_come_after_a_torrent_s_own_tiers_without_the_urls_it_has() -> None:
    own = (("udp://a/announce", "wss://not-ours/announce"), ("http://b/announce",))
    more = (("http://b/announce", "http://c/announce"), ("http://b/announce",), ("udp://d/announce",))
    assert with_more(own, more) == (*own, ("http://c/announce",), ("udp://d/announce",))
    assert with_more(own, (("udp://a/announce",),)) is own  # (nothing added: the torrent's own, as is)
    assert with_more((), more) == (("http://b/announce", "http://c/announce"), ("udp://d/announce",))


def test_a_batch_with_one_bad_url_changes_nothing() -> None:
    with pytest.raises(InvalidJobRequest):
        add_trackers(TIERS, ["http://d.example/a", "gopher://x/"])


def test_a_replaced_url_keeps_its_place() -> None:
    new = "http://d.example/a"
    assert replace_tracker(TIERS, B, new) == ((A, new), (C,))


def test_replacing_refuses_an_absent_url_and_one_already_there() -> None:
    with pytest.raises(JobConflict) as err:
        replace_tracker(TIERS, "http://nope/", "http://d/", old_field="origUrl", new_field="newUrl")
    assert err.value.field == "origUrl"
    with pytest.raises(JobConflict) as err:
        replace_tracker(TIERS, A, C, old_field="origUrl", new_field="newUrl")
    assert err.value.field == "newUrl"
    with pytest.raises(InvalidJobRequest) as bad:
        replace_tracker(TIERS, A, "nope", old_field="origUrl", new_field="newUrl")
    assert bad.value.field == "newUrl"


def test_removing_drops_the_urls_and_the_tiers_left_empty() -> None:
    assert remove_trackers(TIERS, [C, "http://unknown/"]) == ((A, B),)


def test_transmission_tracker_lists_are_tiers_separated_by_blank_lines() -> None:
    text = f"{A}\n{B}\n\n\n{C}\n"
    assert parse_tier_list(text) == TIERS
    assert parse_tier_list(tier_list_text(TIERS)) == TIERS
    assert parse_tier_list("") == ()
    with pytest.raises(InvalidJobRequest) as err:
        parse_tier_list(f"{A}\nnot-a-url")
    assert err.value.field == "trackerList"


def test_the_usable_urls_of_what_another_tool_wrote_are_kept_the_others_passed_over() -> None:
    """(merge_trackers: a torrent added again may hold URLs no tracker or web seed has; they are
    passed over, not a failed add.)"""
    tiers = [[" http://a.example/announce ", "udp://"], ["dht://x", 7], ["https://b.example/a"]]
    assert usable_tiers(tiers) == (("http://a.example/announce",), ("https://b.example/a",))
    seeds = ["http://s.example/", "ftp://s.example/", "", "https://t.example/x"]
    assert usable(seeds, check_web_seed) == ["http://s.example/", "https://t.example/x"]
