"""The multipart reader of the download-client dialects against the standard library's email
parser (the reader it replaced): the same fields and files for any body a client would send,
and a ``FormError``, never another exception, for one it would not."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.api.compat.forms import Form, FormError, parse_form

NAMES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'),
                min_size=1, max_size=20)
PARTS = st.lists(st.tuples(NAMES, st.one_of(st.none(), NAMES), st.binary(max_size=300)), max_size=8)
BOUNDARY = "----bench" + "x" * 20


def body_of(parts: list[tuple[str, str | None, bytes]], boundary: str = BOUNDARY) -> bytes:
    out = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"\r\nContent-Type: application/x-bittorrent'
        out.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode()


def by_email(content_type: str, body: bytes) -> Form:
    form = Form()
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            form.files.append((name, payload))
        else:
            form.fields[name] = payload.decode("utf-8", "replace")
    return form


@settings(max_examples=300, deadline=None)
@given(PARTS)
def test_the_reader_reads_what_the_email_parser_reads(parts: list[tuple[str, str | None, bytes]]) -> None:
    # (a payload holding the delimiter cannot be sent: a client picks a boundary that is not in it)
    parts = [(n, f, d.replace(b"--", b"- -")) for n, f, d in parts]
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    body = body_of(parts)
    ours, theirs = parse_form(content_type, body), by_email(content_type, body)
    assert ours.files == theirs.files
    assert ours.fields == theirs.fields


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.text(max_size=80))
def test_any_body_is_read_or_refused_with_a_form_error(body: bytes, boundary: str) -> None:
    try:
        parse_form(f"multipart/form-data; boundary={boundary}", body)
        parse_form(f'multipart/form-data; boundary="{BOUNDARY}"', b"--" + BOUNDARY.encode() + body)
    except FormError:
        pass


def test_a_quoted_boundary_base64_part_and_a_missing_close_are_read_as_said() -> None:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"a.torrent\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nZDQ6aW5mb2U=\r\n"
            f"--{BOUNDARY}--\r\n").encode()
    form = parse_form(f'multipart/form-data; boundary="{BOUNDARY}"', body)
    assert form.files == [("torrents", b"d4:infoe")]
    try:
        parse_form(f"multipart/form-data; boundary={BOUNDARY}", body.rsplit(b"--", 2)[0])
    except FormError as exc:
        assert "closing delimiter" in str(exc)
    else:
        raise AssertionError("a body cut before its close is refused")
