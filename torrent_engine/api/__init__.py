"""The job service's HTTP API and web UI, served by uvicorn on the engine's own event loop.

``ApiServer(service, token=...)`` runs as a task of the caller (``await tg.start(api.serve)``);
see docs/api.md for the endpoints.
"""

from __future__ import annotations

from .app import create_app
from .security import TOKEN_ENV, TOKEN_FILE, load_or_create_token, read_token
from .server import DEFAULT_API_HOST, DEFAULT_API_PORT, ApiServer
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
