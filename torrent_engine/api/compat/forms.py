"""HTML form bodies as download clients send them: urlencoded, or multipart with several files.

The multipart reader is written here rather than taken from ``email``: the standard library's
parser built a header object per part and was a sixth of the daemon's time adding a batch of
``.torrent`` files (qBittorrent's ``torrents/add``); this one splits on the boundary, reads the
``Content-Disposition`` of each part and nothing else (tests read both and compare).
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

MAX_BOUNDARY = 200  # RFC 2046 says 70; some clients send longer ones
_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\*?\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class FormError(ValueError):
    """A body that is not the form it claims to be."""


@dataclass
class Form:
    """The fields (last value wins) and the uploaded files (field name, bytes), in order, with
    the name each file was sent as (``filenames``, one per file: what qBittorrent's errors name)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    filenames: list[str] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        """A field's value."""
        return self.fields.get(name, default)


def parse_form(content_type: str, body: bytes, query: str = "") -> Form:
    """The query string's fields, then the body's (urlencoded or multipart) on top."""
    form = Form()
    form.fields.update(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return form
    if kind == "multipart/form-data":
        for name, filename, payload in multipart_parts(content_type, body):
            if filename is not None:
                form.files.append((name, payload))
                form.filenames.append(filename)
            else:
                form.fields[name] = payload.decode("utf-8", "replace")
    elif kind in ("application/x-www-form-urlencoded", "", "text/plain"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormError("the form is not UTF-8") from exc
        form.fields.update(parse_qsl(text, keep_blank_values=True))
    else:
        raise FormError(f"unsupported Content-Type {content_type!r}")
    return form



def _params(header: str) -> dict[str, str]:
    """The ``key=value`` parameters after a header's first ``;`` (keys lower-cased, quotes off)."""
    out: dict[str, str] = {}
    for m in _PARAM.finditer(header.partition(";")[2]):
        value = m.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.setdefault(m.group(1).lower(), value)
    return out


def multipart_parts(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """(field name, file name or None, bytes) of each part of a ``multipart/form-data`` body that
    has a name; ``FormError`` when the body is not one."""
    boundary = _params(content_type).get("boundary", "")
    if not boundary or len(boundary) > MAX_BOUNDARY:
        raise FormError("malformed multipart body: no usable boundary")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise FormError("malformed multipart body: the boundary is not in it")
    out: list[tuple[str, str | None, bytes]] = []
    for chunk in chunks[1:]:  # (the first is the preamble)
        if chunk.startswith(b"--"):
            return out  # the close delimiter: the rest is the epilogue
        chunk = chunk.lstrip(b" \t")  # (white space a sender may put after a delimiter)
        head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not head.startswith(b"\r\n") and head:
            raise FormError("malformed multipart body: a delimiter not at a line's start")
        if not sep:
            head, sep, payload = chunk.partition(b"\n\n")  # (bare line feeds, as email reads)
            if not sep:
                raise FormError("malformed multipart body: a part without a blank line after its headers")
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        elif payload.endswith(b"\n"):
            payload = payload[:-1]
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").splitlines():
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = _params(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if name is None:
            continue
        name = name.encode("latin-1").decode("utf-8", "replace")  # (browsers send UTF-8 names)
        filename = disposition.get("filename")
        encoding = headers.get("content-transfer-encoding", "").lower()
        if encoding == "base64":
            try:
                payload = base64.b64decode(payload)
            except (binascii.Error, ValueError) as exc:
                raise FormError(f"malformed multipart body: part {name!r} is not base64") from exc
        elif encoding == "quoted-printable":
            payload = quopri.decodestring(payload)
        out.append((name, filename, payload))
    raise FormError("malformed multipart body: no closing delimiter")
