"""Bencoding (BEP 3): a strict, bounded decoder and a canonical encoder.

The decoder is iterative (an explicit stack, so no input can cause a RecursionError), checks
every length against the input before slicing, and reports the byte offset of the first fault.
``decode_with_spans`` also returns the raw byte span of each top-level dict value: the info-hash
is computed over the exact bytes of the ``info`` dict, never over a re-encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeAlias

from ..errors import BencodeError

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
# Canonical length prefixes of short strings (keys, path components, hashes, URLs). One dict
# lookup both validates the prefix (no sign, no leading zero) and converts it.
_SHORT_LENGTHS = {b"%d" % i: i for i in range(2048)}


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
    allow_trailing: bool = False,
) -> tuple[BValue, dict[bytes, tuple[int, int]]]:
    """Like :func:`decode`, plus ``{key: (start, end)}`` for each value of a top-level dict.

    ``data[start:end]`` is the exact encoding of that value as it appeared in the input.
    ``allow_trailing`` ignores bytes after the value (libtorrent reads .torrent files so).
    """
    return _decode(data, strict, max_depth, max_size, want_spans=True, allow_trailing=allow_trailing)


# Recursion is bounded by max_depth, which is capped far below the interpreter's limit.
_MAX_DEPTH_CAP = 500


def _decode(
    raw: bytes | bytearray | memoryview,
    strict: bool,
    max_depth: int,
    max_size: int,
    want_spans: bool,
    allow_trailing: bool = False,
) -> tuple[BValue, dict[bytes, tuple[int, int]]]:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"bencode input must be bytes, not {type(raw).__name__}")
    if not 0 < max_depth <= _MAX_DEPTH_CAP:
        raise ValueError(f"max_depth must be between 1 and {_MAX_DEPTH_CAP}")
    data = bytes(raw)
    n = len(data)
    if n > max_size:
        raise BencodeError(f"input of {n} bytes is over the {max_size}-byte limit", 0)
    if n == 0:
        raise BencodeError("empty input", 0)
    find = data.find
    short_length = _SHORT_LENGTHS.get

    # The hot loops below parse strings and integers inline (no call per token); only lists
    # and dicts recurse. Each returns (value, position after it).
    def string_at(pos: int) -> tuple[bytes, int]:
        colon = find(b":", pos, pos + _MAX_LEN_TEXT + 1)
        if colon < 0:
            if data[pos : pos + _MAX_LEN_TEXT + 1].isdigit() and n > pos + _MAX_LEN_TEXT:
                raise BencodeError("string length too large", pos)
            raise BencodeError("string length not terminated by ':'", pos)
        digits = data[pos:colon]
        if not digits.isdigit():
            raise BencodeError("string length is not a decimal number", pos)
        if digits[0] == _ZERO and colon - pos > 1:
            raise BencodeError("string length has a leading zero", pos)
        end = colon + 1 + int(digits)
        if end > n:
            raise BencodeError(f"string of length {int(digits)} runs past the end of input", pos)
        return data[colon + 1 : end], end

    def int_at(pos: int) -> tuple[int, int]:
        end = find(b"e", pos + 1, pos + _MAX_INT_TEXT + 2)
        if end < 0:
            raise BencodeError("integer not terminated by 'e' or too long", pos)
        text = data[pos + 1 : end]
        if text.isdigit():
            if text[0] == _ZERO and end - pos > 2:
                raise BencodeError("integer has a leading zero", pos)
        elif text[:1] == b"-" and text[1:].isdigit():
            if text[1] == _ZERO:
                raise BencodeError("integer has a leading zero or is negative zero", pos)
        else:
            raise BencodeError("integer is empty or not decimal", pos)
        value = int(text)
        if end - pos > 19 and not _INT_MIN <= value <= _INT_MAX:
            raise BencodeError("integer outside the signed 64-bit range", pos)
        return value, end + 1

    def value_at(pos: int, depth: int) -> tuple[BValue, int]:
        c = data[pos]
        if 0x30 <= c <= 0x39:
            return string_at(pos)
        if c == _I:
            return int_at(pos)
        if c == _L:
            return list_at(pos, depth + 1)
        if c == _D:
            return dict_at(pos, depth + 1, None)
        if c == _E:
            raise BencodeError("unexpected 'e' outside a list or dict", pos)
        raise BencodeError(f"unexpected byte {chr(c)!r}", pos)

    def list_at(start: int, depth: int) -> tuple[list[BValue], int]:
        if depth > max_depth:
            raise BencodeError(f"nesting deeper than {max_depth}", start)
        out: list[BValue] = []
        append = out.append
        pos = start + 1
        while True:
            c = data[pos]
            if 0x30 <= c <= 0x39:  # inline string
                colon = find(b":", pos)
                length = short_length(data[pos:colon])
                if length is None or colon < 0:
                    item, pos = string_at(pos)  # long strings, and the precise errors
                    append(item)
                else:
                    end = colon + 1 + length
                    if end > n:
                        string_at(pos)
                    append(data[colon + 1 : end])
                    pos = end
                continue
            if c == _E:
                return out, pos + 1
            if c == _I:  # inline non-negative integer; int_at handles the rest
                end = find(b"e", pos)
                text = data[pos + 1 : end]
                if end > 0 and end - pos < 20 and text.isdigit() and (text[0] != _ZERO or end - pos == 2):
                    append(int(text))
                    pos = end + 1
                else:
                    ivalue, pos = int_at(pos)
                    append(ivalue)
            elif c == _L:
                lvalue, pos = list_at(pos, depth + 1)
                append(lvalue)
            elif c == _D:
                dvalue, pos = dict_at(pos, depth + 1, None)
                append(dvalue)
            else:
                raise BencodeError(f"unexpected byte {chr(c)!r}", pos)

    def dict_at(
        start: int, depth: int, spans: dict[bytes, tuple[int, int]] | None
    ) -> tuple[dict[bytes, BValue], int]:
        if depth > max_depth:
            raise BencodeError(f"nesting deeper than {max_depth}", start)
        out: dict[bytes, BValue] = {}
        last = b""
        pos = start + 1
        while True:
            c = data[pos]
            if c == _E:
                return out, pos + 1
            key_pos = pos
            colon = find(b":", pos)
            length = short_length(data[pos:colon])
            if length is None or colon < 0:
                if not 0x30 <= c <= 0x39:
                    raise BencodeError("dict key is not a byte string", pos)
                key, pos = string_at(pos)
            else:
                pos = colon + 1 + length
                if pos > n:
                    string_at(key_pos)
                key = data[colon + 1 : pos]
            if strict:
                if key <= last and out:  # `out` is empty only before the first key
                    if key == last:
                        raise BencodeError(f"duplicate dict key {key!r}", key_pos)
                    raise BencodeError(f"dict key {key!r} out of sorted order", key_pos)
                last = key
            elif key in out:
                raise BencodeError(f"duplicate dict key {key!r}", key_pos)
            value_pos = pos  # past the end: IndexError, reported as "unexpected end of input"
            c = data[pos]
            value: BValue
            if 0x30 <= c <= 0x39:
                colon = find(b":", pos)
                length = short_length(data[pos:colon])
                if length is None or colon < 0:
                    value, pos = string_at(pos)
                else:
                    end = colon + 1 + length
                    if end > n:
                        string_at(pos)
                    value = data[colon + 1 : end]
                    pos = end
            elif c == _I:  # inline non-negative integer; int_at handles the rest
                end = find(b"e", pos)
                text = data[pos + 1 : end]
                if end > 0 and end - pos < 20 and text.isdigit() and (text[0] != _ZERO or end - pos == 2):
                    value = int(text)
                    pos = end + 1
                else:
                    value, pos = int_at(pos)
            elif c == _L:
                value, pos = list_at(pos, depth + 1)
            elif c == _D:
                value, pos = dict_at(pos, depth + 1, None)
            elif c == _E:
                raise BencodeError("dict key without a value", pos)
            else:
                raise BencodeError(f"unexpected byte {chr(c)!r}", pos)
            out[key] = value
            if spans is not None:
                spans[key] = (value_pos, pos)

    spans: dict[bytes, tuple[int, int]] = {}
    value: BValue
    try:
        try:
            if data[0] == _D:
                value, end = dict_at(0, 1, spans if want_spans else None)
            else:
                value, end = value_at(0, 0)
        except IndexError:
            raise BencodeError("unexpected end of input", n) from None
    finally:
        # The parsers above call each other through their closures' cells: a reference cycle
        # that only the garbage collector would free, 20 objects a decode. At 10 000 torrents
        # added that was nearly all the collector found (200 000 objects), and its collections,
        # 17-55 ms each, held the event loop while the adds went on. The two cells that close
        # the cycle, emptied, break it.
        list_at = dict_at = None  # type: ignore[assignment]
    if end != n and not allow_trailing:
        raise BencodeError("trailing data after the value", end)
    return value, spans


def encode(value: object) -> bytes:
    """Encode ``value`` canonically (dict keys sorted as raw bytes).

    Accepts int, bytes-like, str (as UTF-8), lists/tuples and mappings with bytes or str keys.
    Anything else (bool, float, None, non-string keys, keys equal after encoding) raises
    :class:`BencodeError` naming the path to the bad value.
    """
    out: list[bytes] = []
    try:
        _encode(value, out.append, 0)
    except _EncodeFault as fault:
        where = "".join(reversed(fault.path)) or "<root>"
        raise BencodeError(f"{fault.message} at {where}", 0) from None
    return b"".join(out)


class _EncodeFault(Exception):
    """Raised inside the encoder; the path to the bad value is collected while unwinding."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def _encode(value: object, put: Callable[[bytes], None], depth: int) -> None:
    t = type(value)
    if t is bytes:
        put(b"%d:%b" % (len(value), value))  # type: ignore[arg-type, str-format]
    elif t is int:
        put(b"i%de" % value)  # type: ignore[str-format]
    elif t is str:
        b = value.encode("utf-8")  # type: ignore[attr-defined]
        put(b"%d:%b" % (len(b), b))
    elif isinstance(value, (dict, Mapping)):
        if depth >= DEFAULT_MAX_DEPTH:
            raise _EncodeFault(f"nesting deeper than {DEFAULT_MAX_DEPTH}")
        items: dict[bytes, object] = {}
        for k, v in value.items():
            if type(k) is bytes:
                kb = k
            elif isinstance(k, str):
                kb = k.encode("utf-8")
            elif isinstance(k, (bytes, bytearray)):
                kb = bytes(k)
            else:
                raise _EncodeFault(f"dict key {k!r} is not bytes or str")
            if kb in items:
                raise _EncodeFault(f"duplicate dict key {kb!r}")
            items[kb] = v
        put(b"d")
        for kb in sorted(items):
            put(b"%d:%b" % (len(kb), kb))
            try:
                _encode(items[kb], put, depth + 1)
            except _EncodeFault as fault:
                fault.path.append("/" + kb.decode("utf-8", "replace"))
                raise
        put(b"e")
    elif t is list or t is tuple:
        if depth >= DEFAULT_MAX_DEPTH:
            raise _EncodeFault(f"nesting deeper than {DEFAULT_MAX_DEPTH}")
        put(b"l")
        seq: list[object] | tuple[object, ...] = value  # type: ignore[assignment]
        for i, item in enumerate(seq):
            try:
                _encode(item, put, depth + 1)
            except _EncodeFault as fault:
                fault.path.append(f"[{i}]")
                raise
        put(b"e")
    elif isinstance(value, (bytearray, memoryview)):
        _encode(bytes(value), put, depth)
    elif isinstance(value, int) and not isinstance(value, bool):
        _encode(int(value), put, depth)
    elif isinstance(value, str):
        _encode(str(value), put, depth)
    else:
        raise _EncodeFault(f"cannot bencode {type(value).__name__}")
