"""Property tests: whatever a web seed answers, the judgement is "accepted", a redirect, or a
WebSeedError; an accepted 206 always carries exactly the range asked for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.errors import HttpError, WebSeedError
from torrent_engine.net.httpclient import ResponseReader
from torrent_engine.net.webseed.mapping import FileRange
from torrent_engine.net.webseed.response import Redirect, WholeFile, judge_head

URL = "http://m/f"
numbers = st.integers(0, 20_000).map(str) | st.text(max_size=12)
headers = st.fixed_dictionaries({}, optional={
    "content-range": (st.builds(lambda a, b, t: f"bytes {a}-{b}/{t}", numbers, numbers, numbers)
                      | st.text(max_size=30)),
    "content-length": numbers,
    "content-encoding": st.sampled_from(["identity", "gzip", "", "br"]),
    "content-type": st.sampled_from(["application/octet-stream", "multipart/byteranges; boundary=x"]),
    "location": st.text(max_size=20),
    "retry-after": numbers,
    "transfer-encoding": st.sampled_from(["chunked", "identity"]),
})
ranges = st.builds(lambda start, length, extra: FileRange(URL, 0, start, length, start + length + extra, 0),
                   st.integers(0, 10_000), st.integers(1, 10_000), st.integers(0, 10_000))


@settings(max_examples=400, deadline=None)
@given(st.integers(100, 599), headers, ranges)
def test_judge_head_accepts_only_the_range_asked_for(status: int, given: dict[str, str],
                                                     asked: FileRange) -> None:
    try:
        verdict = judge_head(status, given, asked, URL)
    except WebSeedError:
        return
    if isinstance(verdict, Redirect):
        assert status in (301, 302, 303, 307, 308)
        return
    if isinstance(verdict, WholeFile):  # the range is skimmed from the whole file
        assert status == 200 and not (asked.file_offset == 0 and asked.length == asked.file_size)
        assert "chunked" not in given.get("transfer-encoding", "").lower()
        length = given.get("content-length")
        assert length is None or int(length.split(",")[0]) == asked.file_size
        return
    assert verdict is None and status in (200, 206)
    if status == 206:
        first, last = asked.file_offset, asked.file_offset + asked.length - 1
        assert given["content-range"].replace(" ", "").startswith(f"bytes{first}-{last}/")
    else:
        assert asked.file_offset == 0 and asked.length == asked.file_size


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_through_the_reader_and_the_judge(raw: bytes) -> None:
    reader = ResponseReader(max_body=100)
    asked = FileRange(URL, 0, 0, 100, 100, 0)
    try:
        reader.feed(b"HTTP/1.1 206 X\r\n" + raw)
    except HttpError:
        return
    if reader.head is not None:
        status, _, hdrs = reader.head
        try:
            judge_head(status, hdrs, asked, URL)
        except WebSeedError:
            pass
