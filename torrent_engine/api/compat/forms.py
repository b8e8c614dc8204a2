"""HTML form bodies as download clients send them: urlencoded, or multipart with several files."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl


class FormError(ValueError):
    """A body that is not the form it claims to be."""


@dataclass
class Form:
    """The fields (last value wins) and the uploaded files (field name, bytes), in order."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)

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
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        if not message.is_multipart():
            raise FormError("malformed multipart body")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                continue
            if part.get_filename() is not None:
                form.files.append((name, payload))
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

