"""Bencoding (BEP 3): a strict, bounded decoder and a canonical encoder.

The decoder is iterative (an explicit stack, so no input can cause a RecursionError), checks
every length against the input before slicing, and reports the byte offset of the first fault.
``decode_with_spans`` also returns the raw byte span of each top-level dict value: the info-hash
is computed over the exact bytes of the ``info`` dict, never over a re-encoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

from .errors import BencodeError

__all__ = [
    "BValue",
    "BencodeError",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "decode",
    "decode_with_spans",
    "encode",
]

BValue: TypeAlias = "int | bytes | list[BValue] | dict[bytes, BValue]"

DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
# Integers outside a signed 64-bit range are rejected, as libtorrent's bdecode does.
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_MAX_INT_TEXT = 20  # "-9223372036854775808" is 20 characters
_MAX_LEN_TEXT = 19  # string length prefix digits; anything longer is past every input

_I, _L, _D, _E, _COLON, _MINUS, _ZERO = 0x69, 0x6C, 0x64, 0x65, 0x3A, 0x2D, 0x30


def decode(
    data: bytes | bytearray | memoryview,
    *,
    strict: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
) -> BValue:
    """Decode one bencoded value that spans the whole of ``data``.

    ``strict=False`` tolerates dict keys out of sorted order, as found in some real-world
    .torrent files (libtorrent accepts them too); everything else is rejected in both modes.
    """
    value, _ = _decode(data, strict, max_depth, max_size, want_spans=False)
    return value


def decode_with_spans(
    data: bytes | bytearray | memoryview,
    *,
    strict: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
) -> tuple[BValue, dict[bytes, tuple[int, int]]]:
    """Like :func:`decode`, plus ``{key: (start, end)}`` for each value of a top-level dict.

    ``data[start:end]`` is the exact encoding of that value as it appeared in the input.
    """
    return _decode(data, strict, max_depth, max_size, want_spans=True)


def _decode(
    raw: bytes | bytearray | memoryview,
    strict: bool,
    max_depth: int,
    max_size: int,
    want_spans: bool,
) -> tuple[BValue, dict[bytes, tuple[int, int]]]:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"bencode input must be bytes, not {type(raw).__name__}")
    data = bytes(raw)
    n = len(data)
    if n > max_size:
        raise BencodeError(f"input of {n} bytes is over the {max_size}-byte limit", 0)
    if n == 0:
        raise BencodeError("empty input", 0)

    spans: dict[bytes, tuple[int, int]] = {}
    # Each frame is [container, last_key, pending_key, start_offset]. A list frame uses only
    # the container; a dict frame keeps the previous key (ordering check) and the key whose
    # value is being parsed (None while a key is expected).
    stack: list[list[object]] = []
    span_start = 0
    pos = 0
    value: BValue
    while True:
        if pos >= n:
            raise BencodeError("unexpected end of input", pos)
        c = data[pos]
        top = stack[-1] if stack else None
        expecting_key = top is not None and type(top[0]) is dict and top[2] is None
        if want_spans and len(stack) == 1 and not expecting_key:
            span_start = pos

        if 0x30 <= c <= 0x39:  # string: <length>:<bytes>
            colon = data.find(b":", pos, pos + _MAX_LEN_TEXT + 1)
            if colon < 0:
                if data[pos : pos + _MAX_LEN_TEXT + 1].isdigit() and n > pos + _MAX_LEN_TEXT:
                    raise BencodeError("string length too large", pos)
                raise BencodeError("string length not terminated by ':'", pos)
            digits = data[pos:colon]
            if not digits.isdigit():
                raise BencodeError("string length is not a decimal number", pos)
            if c == _ZERO and colon - pos > 1:
                raise BencodeError("string length has a leading zero", pos)
            start = colon + 1
            end = start + int(digits)
            if end > n:
                raise BencodeError(f"string of length {int(digits)} runs past the end of input", pos)
            value = data[start:end]
            pos = end
        elif expecting_key and c != _E:
            raise BencodeError("dict key is not a byte string", pos)
        elif c == _I:
            end = data.find(b"e", pos + 1, pos + _MAX_INT_TEXT + 2)
            if end < 0:
                raise BencodeError("integer not terminated by 'e' or too long", pos)
            text = data[pos + 1 : end]
            digits = text[1:] if text[:1] == b"-" else text
            if not digits.isdigit():
                raise BencodeError("integer is empty or not decimal", pos)
            if digits[0] == _ZERO and (len(digits) > 1 or len(text) > 1):
                raise BencodeError("integer has a leading zero or is negative zero", pos)
            ivalue = int(text)
            if ivalue < _INT_MIN or ivalue > _INT_MAX:
                raise BencodeError("integer outside the signed 64-bit range", pos)
            value = ivalue
            pos = end + 1
        elif c == _L or c == _D:
            if len(stack) >= max_depth:
                raise BencodeError(f"nesting deeper than {max_depth}", pos)
            stack.append([[] if c == _L else {}, None, None, pos])
            pos += 1
            continue
        elif c == _E:
            if top is None:
                raise BencodeError("unexpected 'e' outside a list or dict", pos)
            if type(top[0]) is dict and top[2] is not None:
                raise BencodeError("dict key without a value", pos)
            stack.pop()
            value = top[0]  # type: ignore[assignment]
            pos += 1
        else:
            raise BencodeError(f"unexpected byte {chr(c)!r}", pos)

        # A value is complete: hand it to the enclosing container, or finish.
        if not stack:
            if pos != n:
                raise BencodeError("trailing data after the value", pos)
            return value, spans
        frame = stack[-1]
        container = frame[0]
        if type(container) is list:
            container.append(value)
        elif frame[2] is None:
            key = value  # a byte string: the type was checked before parsing it
            last = frame[1]
            if last is not None:
                if key in container:  # type: ignore[operator]
                    raise BencodeError(f"duplicate dict key {key!r}", pos - len(key))  # type: ignore[arg-type]
                if strict and key < last:  # type: ignore[operator]
                    raise BencodeError(f"dict key {key!r} out of sorted order", pos - len(key))  # type: ignore[arg-type]
            frame[1] = key
            frame[2] = key
        else:
            container[frame[2]] = value  # type: ignore[index]
            if want_spans and len(stack) == 1:
                spans[frame[2]] = (span_start, pos)  # type: ignore[index]
            frame[2] = None


def encode(value: object) -> bytes:
    """Encode ``value`` canonically (dict keys sorted as raw bytes).

    Accepts int, bytes-like, str (as UTF-8), sequences and mappings with bytes or str keys.
    Anything else (bool, float, None, non-string keys, keys equal after encoding) raises
    :class:`BencodeError` naming the path to the bad value.
    """
    out: list[bytes] = []
    _encode(value, out, "", 0)
    return b"".join(out)


def _encode(value: object, out: list[bytes], path: str, depth: int) -> None:
    if depth > DEFAULT_MAX_DEPTH:
        raise BencodeError(f"nesting deeper than {DEFAULT_MAX_DEPTH} at {path or '<root>'}", 0)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise BencodeError(f"cannot bencode {type(value).__name__} at {path or '<root>'}", 0)
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        out.append(b"%d:" % len(b))
        out.append(b)
    elif isinstance(value, str):
        b = value.encode("utf-8")
        out.append(b"%d:" % len(b))
        out.append(b)
    elif isinstance(value, Mapping):
        items: dict[bytes, object] = {}
        for k, v in value.items():
            if isinstance(k, str):
                kb = k.encode("utf-8")
            elif isinstance(k, (bytes, bytearray)):
                kb = bytes(k)
            else:
                raise BencodeError(f"dict key {k!r} at {path or '<root>'} is not bytes or str", 0)
            if kb in items:
                raise BencodeError(f"duplicate dict key {kb!r} at {path or '<root>'}", 0)
            items[kb] = v
        out.append(b"d")
        for kb in sorted(items):
            out.append(b"%d:" % len(kb))
            out.append(kb)
            _encode(items[kb], out, f"{path}/{kb.decode('utf-8', 'replace')}", depth + 1)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for i, item in enumerate(value):
            _encode(item, out, f"{path}[{i}]", depth + 1)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot bencode {type(value).__name__} at {path or '<root>'}", 0)
