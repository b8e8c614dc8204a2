"""A small SMTP server on 127.0.0.1 for the mail tests: EHLO (offering AUTH PLAIN and LOGIN,
and STARTTLS when it has a certificate), AUTH, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT, as
RFC 5321 has them, over TLS from the first byte if asked; the mails it took kept whole, with
whether they came over TLS. A login other than ``LOGIN`` is refused (535), a recipient not in
``accepted`` too (550). Every connection ends within ``TIMEOUT`` seconds."""

from __future__ import annotations

import base64
import email
import email.policy
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream

LOGIN = ("robot", "s3cret")
TIMEOUT = 20.0


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str | None  # the user name it logged in as (None: none)
    tls: bool  # whether it came over TLS


@dataclass
class SmtpServer:
    port: int = 0
    accepted: set[str] = field(default_factory=lambda: {"me@example.org", "you@example.org"})
    mails: list[Mail] = field(default_factory=list)
    arrived: anyio.Event = field(default_factory=anyio.Event)
    tls: ssl.SSLContext | None = None  # its certificate: STARTTLS offered (or, implicit, TLS at once)
    implicit: bool = False

    async def handle(self, stream: anyio.abc.ByteStream) -> None:
        with anyio.move_on_after(TIMEOUT):
            async with stream:
                try:
                    if self.implicit and self.tls is not None:
                        stream = await TLSStream.wrap(stream, server_side=True, ssl_context=self.tls)
                    await self._session(stream)
                except (anyio.BrokenResourceError, anyio.EndOfStream, anyio.IncompleteRead,
                        anyio.DelimiterNotFound, ssl.SSLError, UnicodeDecodeError, ValueError, IndexError):
                    pass  # (a client that went, or spoke no SMTP: TLS to a server without it)

    async def _session(self, stream: anyio.abc.ByteStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        secure = isinstance(stream, TLSStream)

        async def say(line: str) -> None:
            await stream.send(line.encode() + b"\r\n")

        async def read() -> str:
            return (await reader.receive_until(b"\r\n", 4096)).decode()

        await say("220 fake.example ESMTP")
        login: str | None = None
        sender, recipients = "", []
        while True:
            line = await read()
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await say("250-fake.example")
                if self.tls is not None and not secure:
                    await say("250-STARTTLS")
                await say("250 AUTH PLAIN LOGIN")
            elif verb == "STARTTLS" and self.tls is not None and not secure:
                await say("220 2.0.0 Ready to start TLS")
                stream = await TLSStream.wrap(stream, server_side=True, ssl_context=self.tls)
                reader, secure, login = BufferedByteReceiveStream(stream), True, None
            elif verb == "AUTH":
                words = line.split()
                if words[1].upper() == "PLAIN":
                    given = words[2] if len(words) > 2 else (await say("334 "), await read())[1]
                    _, user, password = base64.b64decode(given).decode().split("\0")
                else:  # LOGIN
                    await say("334 VXNlcm5hbWU6")
                    user = base64.b64decode(await read()).decode()
                    await say("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(await read()).decode()
                if (user, password) == LOGIN:
                    login = user
                    await say("235 2.7.0 Authentication successful")
                else:
                    await say("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL":
                sender, recipients = line.partition(":")[2].strip().strip("<>"), []
                await say("250 OK")
            elif verb == "RCPT":
                to = line.partition(":")[2].strip().strip("<>")
                if to in self.accepted:
                    recipients.append(to)
                    await say("250 OK")
                else:
                    await say(f"550 5.1.1 <{to}>: no such mailbox")
            elif verb == "DATA":
                await say("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := await read()) != ".":
                    lines.append(data[1:] if data.startswith("..") else data)
                parsed = email.message_from_string("\n".join(lines) + "\n", policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                self.mails.append(Mail(sender, recipients, parsed, login, secure))
                self.arrived.set()
                await say("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                await say("250 OK")
            elif verb == "QUIT":
                await say("221 Bye")
                return
            else:
                await say("502 5.5.2 Command not recognized")

    async def mail(self, n: int, timeout: float = 30.0) -> Mail:
        """The ``n``-th mail it took (from 0), once it has."""
        with anyio.fail_after(timeout):
            while len(self.mails) <= n:
                self.arrived = anyio.Event()
                await self.arrived.wait()
        return self.mails[n]


@asynccontextmanager
async def smtp_server(tls: ssl.SSLContext | None = None, *,
                      implicit: bool = False) -> AsyncIterator[SmtpServer]:
    server = SmtpServer(tls=tls, implicit=implicit)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()
