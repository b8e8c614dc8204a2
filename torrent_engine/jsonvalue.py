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
JSONMap: TypeAlias = Mapping[str, JSON]


class JSONFieldError(TorrentEngineError, ValueError):
    """A received JSON value of the wrong type; ``field`` names where it was."""

    def __init__(self, field: str, expected: str, value: object) -> None:
        shown = repr(value)
        super().__init__(f"{field}: expected {expected}, got {shown[:60]}")
        self.field = field
        self.expected = expected


def as_object(value: object, field: str) -> JSONObject:
    """``value`` as a JSON object, else a ``JSONFieldError`` naming ``field``."""
    if not isinstance(value, dict):
        raise JSONFieldError(field, "an object", value)
    return value


def as_list(value: object, field: str) -> list[JSONValue]:
    """``value`` as a JSON array."""
    if not isinstance(value, list):
        raise JSONFieldError(field, "a list", value)
    return value


def as_str(value: object, field: str) -> str:
    """``value`` as a string."""
    if not isinstance(value, str):
        raise JSONFieldError(field, "a string", value)
    return value


def as_int(value: object, field: str) -> int:
    """``value`` as an integer (true and false are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise JSONFieldError(field, "a whole number", value)
    return value


def as_number(value: object, field: str) -> float:
    """``value`` as a number (an integer or a float; not true or false)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JSONFieldError(field, "a number", value)
    return float(value)


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


def str_list(value: object, field: str) -> list[str]:
    """``value`` as a list of strings."""
    items = as_list(value, field)
    if not all(isinstance(v, str) for v in items):
        raise JSONFieldError(field, "a list of strings", value)
    return [v for v in items if isinstance(v, str)]
