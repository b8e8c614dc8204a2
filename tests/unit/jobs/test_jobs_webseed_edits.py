"""Editing a job's web seeds (BEP 19): add, replace, remove; a URL that is not http(s) is
refused whole, naming the field and the URL."""

from __future__ import annotations

import pytest

from torrent_engine.jobs.model import InvalidJobRequest, JobConflict
from torrent_engine.jobs.webseeds import (
    add_web_seeds,
    check_web_seed,
    check_web_seeds,
    remove_web_seeds,
    replace_web_seed,
)

A, B = "http://a.example/pub/", "https://b.example/file.iso"


@pytest.mark.parametrize("bad", ["", "   ", "not a url", "ftp://x/pub/", "udp://x:6969", "http://",
                                 "http://[::1/", "http://x:99999/", "magnet:?xt=urn:btih:00", "http://a b/",
                                 42, None])
def test_a_url_we_cannot_fetch_from_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidJobRequest) as err:
        check_web_seed(bad, "urls")
    assert err.value.field == "urls"


def test_the_refusal_names_the_url() -> None:
    with pytest.raises(InvalidJobRequest, match="ftp://x/pub/"):
        check_web_seeds([A, "ftp://x/pub/"])


def test_urls_are_trimmed_and_kept_once_in_their_order() -> None:
    assert check_web_seeds([f" {B} ", A, B]) == [B, A]


def test_added_urls_come_after_the_others_and_known_ones_are_passed_over() -> None:
    new = "http://d.example/x"
    assert add_web_seeds([A, B], [new, A, new]) == [A, B, new]
    with pytest.raises(InvalidJobRequest):
        add_web_seeds([A], [new, "gopher://x/"])


def test_a_replaced_url_keeps_its_place_and_an_absent_or_taken_one_is_a_conflict() -> None:
    new = "http://d.example/x"
    assert replace_web_seed([A, B], A, new) == [new, B]
    with pytest.raises(JobConflict) as err:
        replace_web_seed([A, B], "http://nope/", new, old_field="origUrl", new_field="newUrl")
    assert err.value.field == "origUrl"
    with pytest.raises(JobConflict) as err:
        replace_web_seed([A, B], A, B, old_field="origUrl", new_field="newUrl")
    assert err.value.field == "newUrl"
    with pytest.raises(InvalidJobRequest) as bad:
        replace_web_seed([A, B], A, "nope", old_field="origUrl", new_field="newUrl")
    assert bad.value.field == "newUrl"


def test_removing_drops_the_urls_named() -> None:
    assert remove_web_seeds([A, B], [A, "http://unknown/"]) == [B]
