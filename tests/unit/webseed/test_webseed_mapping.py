"""BEP 19 mapping: file URLs (single/multi-file, trailing slash, percent-encoding), runs of
pieces onto file ranges (spanning files, pad files and v2 gaps left out), the range request."""

from __future__ import annotations

import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.errors import WebSeedError
from torrent_engine.net.webseed.mapping import (
    file_url,
    parse_url,
    pieces_without,
    plan_run,
    range_request,
)

PL = 32 * 1024


def single(name: str = "t", size: int = 100_000):  # type: ignore[no-untyped-def]
    return make_torrent([((name,), payload(size))], PL, single=True, name=name)


def test_single_file_url_is_the_file_or_the_folder_plus_name() -> None:
    t = single("my file ä.iso")
    assert not t.is_multi_file
    assert file_url("http://m/pub/x.iso", t, 0) == "http://m/pub/x.iso"  # the URL is the file
    # BEP 19: a URL ending in '/' gets the name, percent-encoded (UTF-8)
    assert file_url("http://m/pub/", t, 0) == "http://m/pub/my%20file%20%C3%A4.iso"


@pytest.mark.parametrize("base", ["http://m/pub", "http://m/pub/"])
def test_multi_file_url_is_root_name_path_with_or_without_trailing_slash(base: str) -> None:
    t = make_torrent([(("Readme.txt",), b"x" * 949), (("sub dir", "a#b?c%.bin"), b"y" * 10)], PL,
                     name="michael")
    assert t.is_multi_file
    assert file_url(base, t, 0) == "http://m/pub/michael/Readme.txt"  # BEP 19's own example
    assert file_url(base, t, 1) == "http://m/pub/michael/sub%20dir/a%23b%3Fc%25.bin"


def test_multi_file_torrent_of_one_file_is_still_multi_file() -> None:
    t = make_torrent([(("only.bin",), b"z" * 10)], PL, name="folder")
    assert t.is_multi_file
    assert file_url("http://m/", t, 0) == "http://m/folder/only.bin"


def test_single_file_run_is_one_range() -> None:
    t = single(size=100_000)
    run = plan_run(t, "http://m/f", 1, 3)  # pieces 1..3; the last (3) is short
    assert (run.first, run.last, run.size) == (1, 3, 100_000 - PL)
    (r,) = run.ranges
    got = (r.url, r.file_offset, r.length, r.file_size, r.target)
    assert got == ("http://m/f", PL, 100_000 - PL, 100_000, 0)
    assert run.piece_span(3, t.piece_size(3)) == (2 * PL, 100_000 - PL)


def test_a_piece_spanning_files_is_several_ranges() -> None:
    t = make_torrent([(("a",), payload(40_000)), (("b",), payload(10_000, 1)), (("c",), payload(30_000, 2))],
                     PL, name="n")
    run = plan_run(t, "http://m", 1, 1)  # bytes 32768..65535: end of a, all of b, start of c
    got = [(r.url, r.file_offset, r.length, r.target) for r in run.ranges]
    assert got == [("http://m/n/a", 32_768, 7_232, 0), ("http://m/n/b", 0, 10_000, 7_232),
                   ("http://m/n/c", 0, 15_536, 17_232)]
    assert sum(r.length for r in run.ranges) == run.size == PL


def test_pad_files_are_never_asked_for() -> None:
    t = make_torrent([(("a",), payload(40_000)), (("b",), payload(50_000, 1))], PL, pad=True, name="n")
    assert any(f.pad for f in t.files)
    run = plan_run(t, "http://m/", 0, t.num_pieces - 1)
    assert [r.url for r in run.ranges] == ["http://m/n/a", "http://m/n/b"]
    a, b = run.ranges
    assert (a.target, a.length) == (0, 40_000)
    assert (b.target, b.length) == (2 * PL, 50_000)  # after the pad's zeros
    assert not any(".pad" in r.url for r in run.ranges)


def test_v2_alignment_gaps_are_never_asked_for() -> None:
    t = make_torrent([(("a",), payload(40_000)), (("b",), payload(5_000, 1))], PL, version="v2", name="n")
    run = plan_run(t, "http://m/", 1, 2)  # the short end piece of a, and b (its own piece)
    assert [(r.url, r.file_offset, r.length, r.target) for r in run.ranges] == [
        ("http://m/n/a", PL, 40_000 - PL, 0), ("http://m/n/b", 0, 5_000, PL)]
    assert run.piece_span(2, t.piece_size(2)) == (PL, PL + 5_000)


def test_plan_run_rejects_pieces_outside_the_torrent() -> None:
    t = single(size=100_000)
    with pytest.raises(ValueError):
        plan_run(t, "http://m/f", 2, 9)


def test_range_request_bytes() -> None:
    origin = parse_url("http://example.org:8080/pub/a b/ü.bin?x=1")
    assert (origin.tls, origin.host, origin.port) == (False, "example.org", 8080)
    req = range_request(origin, 100, 50, "te/1")
    assert req == (b"GET /pub/a%20b/%C3%BC.bin?x=1 HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: te/1\r\n"
                   b"Range: bytes=100-149\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n")
    # an already percent-encoded URL is not encoded twice
    assert parse_url("https://[::1]/a%20b").target == "/a%20b"
    assert parse_url("https://[::1]/a%20b").host_header == "[::1]"
    assert parse_url("https://h/").port == 443


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://m/file", "unsupported URL scheme 'ftp'"),
    ("http:///nohost", "no host"),
    ("http://m:99999/f", "URL has a bad port"),
    ("http://[::1/f", "malformed URL"),
])
def test_unusable_urls_are_typed_errors(url: str, words: str) -> None:
    with pytest.raises(WebSeedError, match=words) as info:
        parse_url(url)
    assert info.value.url == url


def test_pieces_without_missing_files() -> None:
    # a: pieces 0-1 (40 000 bytes), b: 40 000..49 999 (piece 1), c: 50 000..109 999 (pieces 1-3)
    t = make_torrent([(("a",), payload(40_000)), (("b",), payload(10_000, 1)), (("c",), payload(60_000, 2))],
                     PL, name="n")
    assert list(pieces_without(t, [])) == [0, 1, 2, 3]
    assert list(pieces_without(t, [1])) == [0, 2, 3]  # b lies in piece 1 only
    assert list(pieces_without(t, [0, 2])) == []
