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


def loads(data: bytes | str) -> JSONValue:
    """Decode ``data``; ``ValueError`` (``json.JSONDecodeError`` for bad syntax) when it is not JSON."""
    value: JSONValue = json.loads(data, parse_constant=_refuse)
    return value
