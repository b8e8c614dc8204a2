"""The types of JSON where it crosses the engine's edges: ``JSONValue`` for a document received
(narrowed where it is read, by the helpers here, with an error naming the field), ``JSON`` for one
the engine writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

from .errors import TorrentEngineError

# a parsed document, as json.loads hands it back
JSONValue: TypeAlias = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject: TypeAlias = dict[str, JSONValue]
# a document to write: read-only containers, so that a list[str] or a dict[str, int] is one too
JSON: TypeAlias = None | bool | int | float | str | Sequence["JSON"] | Mapping[str, "JSON"]


class JSONFieldError(TorrentEngineError, ValueError):
    """A received JSON value of the wrong type; ``field`` names where it was."""

    def __init__(self, field: str, expected: str, value: object) -> None:
        shown = repr(value)
        super().__init__(f"{field}: expected {expected}, got {shown[:60]}")
        self.field = field
        self.expected = expected


def as_str(value: object, field: str) -> str:
    """``value`` as a string."""
    if not isinstance(value, str):
        raise JSONFieldError(field, "a string", value)
    return value


def as_float_text(value: object, field: str) -> float:
    """``value`` as ``float()`` reads it: a number, true/false, or a string holding a number."""
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise JSONFieldError(field, "a number", value)
