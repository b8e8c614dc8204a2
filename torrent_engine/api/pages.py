"""Full lists (qBittorrent's ``torrents/info`` and full ``sync/maindata``, Transmission's
``torrent-get``, our ``GET /api/jobs``, the event stream's snapshot) made a page of jobs at a time
with the loop let run between pages, and sent as the parts they were made in: at 30 000 jobs one
of them held the event loop 150–500 ms in one go (issue 47), peers and trackers waiting."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import TypeVar

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["CHANGES_PAGE", "LIST_PAGE", "PartsResponse", "array_parts", "gather", "joined_pages", "stepped"]

LIST_PAGE = 500  # jobs read, or records joined, between two turns of the loop (a few ms of it)
# torrents listed between two turns of the loop in an answer of changes: each a view of its job
# made again and its record (about 40 us: at 500, a poll of 10 000 checked adds held it 20 ms)
CHANGES_PAGE = 250

T = TypeVar("T")
U = TypeVar("U")


async def gather(pages: Iterable[Sequence[T]], keep: Callable[[Sequence[T]], Iterable[U]]) -> list[U]:
    """What ``keep`` makes of each page, in order, the loop let run after each page."""
    out: list[U] = []
    for page in pages:
        out.extend(keep(page))
        await anyio.sleep(0)
    return out


async def stepped(steps: Generator[None, None, T]) -> T:
    """What ``steps`` returns, the loop let run at each of its steps."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            value: T = done.value
            return value
        await anyio.sleep(0)


async def joined_pages(items: Sequence[T], text: Callable[[T], bytes],
                       separator: bytes = b",", page: int = LIST_PAGE) -> list[bytes]:
    """``separator.join`` of each ``page`` of ``items``' texts (none for no items), the loop let
    run after each join: their join with ``separator`` is ``items``' whole join."""
    out: list[bytes] = []
    for at in range(0, len(items), page):
        out.append(separator.join([text(i) for i in items[at:at + page]]))
        await anyio.sleep(0)
    return out


def array_parts(pages: Sequence[bytes], start: bytes = b"[", end: bytes = b"]",
                separator: bytes = b",") -> list[bytes]:
    """The parts of ``start + separator.join(pages) + end`` (pages: ``joined_pages``')."""
    out = [start]
    for i, page in enumerate(pages):
        if i:
            out.append(separator)
        out.append(page)
    out.append(end)
    return out


class PartsResponse(Response):
    """A response whose body is ``parts`` joined, sent part after part (no join of tens of MB
    on the loop); its headers (Content-Length included) as a ``Response`` of the joined body's."""

    def __init__(self, parts: Sequence[bytes], status_code: int = 200,
                 headers: Mapping[str, str] | None = None, media_type: str | None = None,
                 background: BackgroundTask | None = None) -> None:
        self.parts = [p for p in parts if p]
        super().__init__(None, status_code, headers, media_type, background)
        length = str(sum(len(p) for p in self.parts)).encode("latin-1")
        self.raw_headers = [(k, length if k == b"content-length" else v) for k, v in self.raw_headers]

    @property
    def whole(self) -> bytes:
        """The body, joined (for a caller that wants it in one piece: tests, a small answer)."""
        return b"".join(self.parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the status and headers, then each part (the server writes each as it comes)."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for part in self.parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()
