"""Which of a client's fields asked for a setting the service refused: a dialect's settings
change names the service's settings in the client's words, and its refusal names them so."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...errors import TorrentEngineError
from ...jsonvalue import JSONValue

__all__ = ["asked_as"]


def asked_as(field: str | None, asked: Mapping[str, JSONValue],
             changes_of: Callable[[dict[str, JSONValue]], Mapping[str, object]],
             refused: tuple[type[Exception], ...]) -> str | None:
    """The key of ``asked`` whose change alone sets the setting ``field`` (``changes_of``: the
    settings' changes a request of those keys makes; ``refused``: what it raises for a key that
    needs another), or None: ``field`` is a key of ``asked`` itself, or none alone sets it."""
    if field is None or field in asked:
        return None
    skipped: tuple[type[Exception], ...] = (*refused, TorrentEngineError, ValueError, TypeError)
    for key, value in asked.items():
        try:
            if field in changes_of({key: value}):
                return key
        except skipped:
            continue
    return None
