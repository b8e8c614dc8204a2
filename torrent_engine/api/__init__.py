"""The job service's HTTP API and web UI, served by uvicorn on the engine's own event loop.

``ApiServer(service, token=...)`` runs as a task of the caller (``await tg.start(api.serve)``);
see docs/api.md for the endpoints. The names below load on first use, so a client of the API
(``torrent-engine remote``) that needs its address and token file does not load the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .app import create_app
    from .locate import (
        DEFAULT_API_HOST,
        DEFAULT_API_PORT,
        TOKEN_ENV,
        TOKEN_FILE,
        load_or_create_token,
        read_token,
    )
    from .server import ApiServer
    from .sse import EventLog, SseEvent

__all__ = [
    "DEFAULT_API_HOST",
    "DEFAULT_API_PORT",
    "TOKEN_ENV",
    "TOKEN_FILE",
    "ApiServer",
    "EventLog",
    "SseEvent",
    "create_app",
    "load_or_create_token",
    "read_token",
]

_WHERE = {
    "DEFAULT_API_HOST": "locate", "DEFAULT_API_PORT": "locate", "TOKEN_ENV": "locate",
    "TOKEN_FILE": "locate", "load_or_create_token": "locate", "read_token": "locate",
    "ApiServer": "server", "EventLog": "sse", "SseEvent": "sse", "create_app": "app",
}

__getattr__, __dir__ = lazy_names(__name__, _WHERE)
