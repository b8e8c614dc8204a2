"""Full lists (qBittorrent's ``torrents/info`` and full ``sync/maindata``, Transmission's
``torrent-get``, our ``GET /api/jobs``, the event stream's snapshot) made a few jobs at a time
with the loop let run as they are made, and sent in parts of ``LIST_PAGE``: at 30 000 jobs one
of them held the event loop 150–500 ms in one go (issue 47), peers and trackers waiting. Jobs are
read ``STEP`` at a time and the loop let run once a piece of work has had its ``TURN``
(``engine.turns``): a page of a fixed count held it 2 ms or 190 ms, as its records were kept or
made again."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import TypeVar

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..engine.turns import STEP, Turns

__all__ = ["LIST_PAGE", "STEP", "PartsResponse", "Turns", "array_parts", "gather", "joined_pages",
           "stepped"]

LIST_PAGE = 500  # records joined into one part of an answer

T = TypeVar("T")
U = TypeVar("U")


async def gather(pages: Iterable[Sequence[T]], keep: Callable[[Sequence[T]], Iterable[U]]) -> list[U]:
    """What ``keep`` makes of each page (``STEP`` jobs, say), in order, the loop let run after a
    page once the work has had its turn."""
    turns = Turns()
    out: list[U] = []
    for page in pages:
        out.extend(keep(page))
        await turns.take()
    return out


async def stepped(steps: Generator[None, None, T], turns: Turns | None = None) -> T:
    """What ``steps`` returns, the loop let run at one of its steps once the work has had its turn."""
    turns = turns or Turns()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            value: T = done.value
            return value
        await turns.take()


async def joined_pages(items: Sequence[T], text: Callable[[T], bytes], separator: bytes = b",",
                       page: int = LIST_PAGE, turns: Turns | None = None) -> list[bytes]:
    """``separator.join`` of each ``page`` of ``items``' texts (none for no items), the texts
    made ``STEP`` at a time and the loop let run between two once the work has had its turn:
    their join with ``separator`` is ``items``' whole join."""
    turns = turns or Turns()
    out: list[bytes] = []
    for at in range(0, len(items), page):
        texts: list[bytes] = []
        for step in range(at, min(at + page, len(items)), STEP):
            texts.extend([text(i) for i in items[step:min(step + STEP, at + page)]])
            await turns.take()
        out.append(separator.join(texts))
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
