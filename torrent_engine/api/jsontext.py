"""JSON request bodies as RFC 8259 has them: Python's decoder also takes ``NaN``, ``Infinity``
and ``-Infinity``, which no JSON client sends on purpose and which would reach a number check
as a float that is not finite (``int(inf)`` raises ``OverflowError``): refused here, as any
other malformed JSON, for every API dialect."""

from __future__ import annotations

import json
from typing import NoReturn

from ..jsonvalue import JSONValue


def _refuse(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON number")


def _whole_as_int(text: str) -> float | int:
    number = float(text)
    return int(number) if number.is_integer() else number


def loads(data: bytes | str, *, whole_floats: bool = False) -> JSONValue:
    """Decode ``data``; ``ValueError`` (``json.JSONDecodeError`` for bad syntax) when it is not JSON.

    ``whole_floats``: a number with a fraction or an exponent that is whole (``675.0``, ``1e3``)
    is the integer it is, as JSON Schema counts it (what an OpenAPI "integer" allows, and what
    a client that writes every number as a double sends); else it stays a float."""
    value: JSONValue = json.loads(data, parse_constant=_refuse,
                                  parse_float=_whole_as_int if whole_floats else float)
    return value
