"""Our API's ``/api/log`` and ``/api/log/peers``: the daemon's log book, an admin's to read (its
lines name every user's jobs and folders), from the line after the one a client saw last."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..jobs import InvalidJobRequest
from ..logbook import ALL_LEVELS, LogBook, LogLevel

LEVEL_NAMES = {level.name.lower(): level for level in LogLevel}


def _after(request: Request) -> int:
    """``?after=``: the last id the client has (-1, or none: from the first kept)."""
    raw = request.query_params.get("after")
    if raw is None:
        return -1
    try:
        after = int(raw)
    except ValueError:
        raise InvalidJobRequest(f"must be a whole number (-1: from the first line), got {raw!r}",
                                "after") from None
    if after < -1:
        raise InvalidJobRequest(f"must be -1 or more, got {after}", "after")
    return after


def _levels(request: Request) -> frozenset[LogLevel]:
    """``?level=`` names separated by commas (``normal``, ``info``, ``warning``, ``critical``)."""
    raw = request.query_params.get("level")
    if raw is None:
        return ALL_LEVELS
    levels = set()
    for name in raw.split(","):
        level = LEVEL_NAMES.get(name.strip().lower())
        if level is None:
            raise InvalidJobRequest(f"{name.strip()!r} is not a level: {', '.join(LEVEL_NAMES)}", "level")
        levels.add(level)
    return frozenset(levels)


class LogApi:
    """The log book's routes (the guard lets an admin alone through: ``security.route_scope``)."""

    def __init__(self, book: LogBook) -> None:
        self.book = book

    def routes(self) -> list[Route]:
        """``/api/log`` and ``/api/log/peers``."""
        return [Route("/api/log", self.lines, methods=["GET"]),
                Route("/api/log/peers", self.peers, methods=["GET"])]

    async def lines(self, request: Request) -> JSONResponse:
        """``GET /api/log?after=&level=``: ``{"lines": [{"id", "time", "level", "message"}]}``."""
        lines = self.book.lines(_after(request), _levels(request))
        return JSONResponse({"lines": [{"id": line.id, "time": line.time, "level": line.level.name.lower(),
                                        "message": line.message} for line in lines]})

    async def peers(self, request: Request) -> JSONResponse:
        """``GET /api/log/peers?after=``: ``{"peers": [{"id", "time", "ip", "blocked", "reason"}]}``."""
        peers = self.book.peers(_after(request))
        return JSONResponse({"peers": [{"id": p.id, "time": p.time, "ip": p.ip, "blocked": p.blocked,
                                        "reason": p.reason} for p in peers]})
