"""BEP 19 web seeds: HTTP(S) servers holding the torrent's files, used as sources of pieces.

``mapping`` (pure) turns runs of pieces into file URLs and byte ranges; ``response`` (pure)
judges the server's answers and paces retries; ``client`` is the async shell that fetches runs
and hands the pieces to the session. See docs/webseeds.md.
"""

from __future__ import annotations

from .client import RangeClient, WebSeed, WebSeedHost, WebSeedKey, WebSeedState
from .mapping import FileRange, Run, file_url, plan_run
from .response import Backoff

__all__ = [
    "Backoff",
    "FileRange",
    "RangeClient",
    "Run",
    "WebSeed",
    "WebSeedHost",
    "WebSeedKey",
    "WebSeedState",
    "file_url",
    "plan_run",
]
