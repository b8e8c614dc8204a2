"""E-mail when a download completes (qBittorrent's "e-mail notification upon download
completion"): the settings' values checked as they are set, the message a completion or a test
sends (pure), and the one sender that delivers them over SMTP in a worker thread.

``smtplib`` (standard library) speaks SMTP: with ``mail_ssl`` TLS from the first byte (port 465
unless the server says another), else plain (port 25) upgraded by STARTTLS whenever the server
offers it; the server's certificate is verified against the system's CAs and its name. A server
that cannot be reached, refuses the login or a recipient, or leaves a step (connecting, an
answer) unanswered for ``SEND_TIMEOUT`` is said in the log (a test: to the caller,
``MailNotSent``); a completion is never held back by its mail. Mails go one at a time, at most
``MAX_WAITING`` waiting.
"""

from __future__ import annotations

import email.utils
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import anyio.abc

from ...formats.compact import is_ip_literal
from ...net.tls import client_context
from ...units import human_bytes
from ..model import InvalidJobRequest, Job, JobError

if TYPE_CHECKING:
    from .settings import ServiceSettings

__all__ = ["MAIL_ADDRESS_FIELDS", "MAIL_TEXT_FIELDS", "MailNotSent", "Mailer", "check_mail_addresses",
           "check_mail_server", "check_mail_text", "completion_message", "missing_for_mail", "trial_message"]

log = logging.getLogger(__name__)

SEND_TIMEOUT = 30.0  # seconds a step of a mail may take: connecting, each answer of the server
MAX_WAITING = 64  # mails waiting for the one before; the completions past them go in one mail
MAX_LISTED = 1000  # completions one such mail names (the others counted)
SSL_PORT, PLAIN_PORT = 465, 25
MAX_TEXT = 256  # characters of a user name, a password, a server's name
MAIL_ADDRESS_FIELDS = ("mail_from", "mail_to")
MAIL_TEXT_FIELDS = ("mail_username", "mail_password")

# an address as a mail server takes it in MAIL FROM and RCPT TO: local@domain, no space, no
# angle bracket, comma or quote (a display name is not taken)
_ADDRESS = re.compile(r"[^\s@<>,;\"()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")  # (a name, or an IPv4 address)


class MailNotSent(JobError):
    """A mail could not be sent: the server could not be reached, refused it, or the settings
    do not let it go (the reason says which)."""


def check_mail_addresses(value: object, name: str, *, many: bool) -> str:
    """"" or an address (``many``: addresses separated by commas), as written back: the
    addresses joined by ", "; ``InvalidJobRequest`` naming ``name`` otherwise."""
    if not isinstance(value, str):
        raise InvalidJobRequest("must be an e-mail address (a string)", name)
    parts = [p.strip() for p in value.split(",")] if value.strip() else []
    if len(parts) > (32 if many else 1):
        raise InvalidJobRequest("must be at most 32 addresses separated by commas" if many
                                else "must be one e-mail address", name)
    for part in parts:
        if len(part) > 254 or not _ADDRESS.fullmatch(part):
            raise InvalidJobRequest(f"{part[:80]!r} is not an e-mail address (name@domain)", name)
    return ", ".join(parts)


def check_mail_server(value: object, name: str) -> str:
    """"" or an SMTP server as ``host`` or ``host:port`` (an IPv6 address in brackets)."""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidJobRequest("must be a server's host name, with :port if not the usual one", name)
    if not value:
        return ""
    try:
        _split_server(value)
    except ValueError:
        raise InvalidJobRequest(f"{value[:80]!r} is not a host name or address with an optional :port "
                                "from 1 to 65535", name) from None
    return value


def check_mail_text(value: object, name: str) -> str:
    """A user name or password: a string of at most ``MAX_TEXT`` characters, no line break nor NUL."""
    if not isinstance(value, str) or len(value) > MAX_TEXT or any(c in value for c in "\r\n\x00"):
        raise InvalidJobRequest(f"must be text of at most {MAX_TEXT} characters, without a line break", name)
    return value


def _split_server(value: str, ssl_on: bool = False) -> tuple[str, int]:
    """``host[:port]`` (an IPv6 address in brackets) as connected to: the host (an IPv6 address
    without its brackets) and the port (the usual one when none is said); ``ValueError`` for
    anything else (a path, a user, a port that is no number from 1 to 65535)."""
    parts = urlsplit(f"//{value}")
    port = parts.port  # (ValueError: not a number up to 65535)
    host = parts.hostname or ""
    written = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    if value.lower() != written or port == 0 or not (_HOST.fullmatch(host) or is_ip_literal(host)):
        raise ValueError(f"{value!r} is not host[:port]")  # (nothing more: a path, a user, a stray ":")
    return host, port or (SSL_PORT if ssl_on else PLAIN_PORT)



def missing_for_mail(s: ServiceSettings) -> str | None:
    """The first setting a mail needs that ``s`` does not set (None: none)."""
    return next((field for value, field in ((s.mail_server, "mail_server"), (s.mail_from, "mail_from"),
                                            (s.mail_to, "mail_to")) if not value), None)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)


def completion_message(job: Job, sender: str, to: str, now: float) -> EmailMessage:
    """The mail a completed download sends: its name, size, folder, how long it took, its
    category and tags, its info-hash."""
    done_at = job.completed_at or now
    lines = [f'"{job.name}" has finished downloading.', "",
             f"Size: {human_bytes(job.total_size)}",
             f"Saved in: {job.options.data_path}",
             f"Downloaded in: {_duration(max(0.0, done_at - job.created_at))} (from its add)"]
    if job.features.category:
        lines.append(f"Category: {job.features.category}")
    if job.features.tags:
        lines.append(f"Tags: {', '.join(job.features.tags)}")
    lines.append(f"Info-hash: {job.info_hash}")
    return _message(sender, to, f'torrent_engine: "{job.name}" has finished downloading', "\n".join(lines),
                    now)


def many_message(jobs: list[Job], more: int, sender: str, to: str, now: float) -> EmailMessage:
    """The one mail of the completions that came while ``MAX_WAITING`` mails waited (a library
    checked, thousands complete at once): each one's name, size and folder, and ``more`` not
    named."""
    count = len(jobs) + more
    lines = [f"{count} downloads have finished:", ""]
    lines += [f'"{job.name}" ({human_bytes(job.total_size)}) in {job.options.data_path}' for job in jobs]
    if more:
        lines.append(f"and {more} more")
    return _message(sender, to, f"torrent_engine: {count} downloads have finished", "\n".join(lines), now)


def trial_message(sender: str, to: str, now: float) -> EmailMessage:
    """The mail the settings' test sends."""
    return _message(sender, to, "torrent_engine: a test mail",
                    "This test mail says that torrent_engine can send mail with these settings: a "
                    "completed download will send one like it.", now)


def _message(sender: str, to: str, subject: str, body: str, now: float) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())  # (a name's line breaks would end the header)
    message["Date"] = email.utils.formatdate(now, localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    # (quoted-printable: 7-bit lines of any name's length, for a server without 8BITMIME too)
    message.set_content(body + "\n", cte="quoted-printable")
    return message


def deliver(message: EmailMessage, server: str, *, ssl_on: bool, username: str, password: str,
            timeout: float = SEND_TIMEOUT) -> None:
    """(Blocking: in a worker thread.) Send ``message`` through ``server`` (``host[:port]``),
    to its ``To`` addresses; ``MailNotSent`` saying why it could not be."""
    host, port = _split_server(server, ssl_on)
    context = client_context()
    try:
        client: smtplib.SMTP
        if ssl_on:
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo_or_helo_if_needed()
            if not ssl_on and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            if username or password:
                client.login(username, password)
            client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailNotSent(f"{server} refused the login: {_said(exc)}", "mail_username") from None
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(f"{address} ({_said(answer)})" for address, answer in exc.recipients.items())
        raise MailNotSent(f"{server} refused the recipients {refused}", "mail_to") from None
    except smtplib.SMTPSenderRefused as exc:
        raise MailNotSent(f"{server} refused the sender: {_said(exc)}", "mail_from") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailNotSent(f"{server} cannot do it: {exc}", "mail_server") from None
    except ssl.SSLError as exc:
        raise MailNotSent(f"TLS with {server} failed: {exc.reason or exc}", "mail_server") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailNotSent(f"cannot send through {server}: {_said(exc)}", "mail_server") from None


def _said(exc: BaseException | tuple[int, bytes]) -> str:
    """What a server answered (its code and text), or the failure's words."""
    code, text = exc if isinstance(exc, tuple) else (getattr(exc, "smtp_code", None),
                                                     getattr(exc, "smtp_error", None))
    if isinstance(code, int) and code > 0:
        words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return f"{code} {' '.join(words.split())}"[:300]
    return (str(exc) or type(exc).__name__)[:300]


class Mailer:
    """Sends the service's mails one at a time in its task group: a completion's (``completed``)
    and the settings' test (``test``). ``settings``: the service's current settings, read when
    a mail is made and sent (with ``proxy_only`` no mail goes, as it would reach its server
    outside the proxy: said)."""

    def __init__(self, settings: Callable[[], ServiceSettings], tg: Callable[[], anyio.abc.TaskGroup | None],
                 *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._tg = tg
        self._clock = clock
        self._lock = anyio.Lock()
        self._waiting = 0
        # the completions that came while MAX_WAITING mails waited, for one mail that names them
        self._many: list[Job] = []
        self._more = 0  # ... and those past MAX_LISTED, counted

    def completed(self, job: Job) -> None:
        """``job`` completed: its mail sent, if mail is on (in the task group; the outcome logged)."""
        s, tg = self._settings(), self._tg()
        if not s.mail_enabled or tg is None:
            return
        if self._waiting >= MAX_WAITING or self._many or self._more:
            if len(self._many) < MAX_LISTED:
                self._many.append(job)
            else:
                self._more += 1
            if len(self._many) + self._more == 1:  # (the first: its mail waits its turn)
                log.info("job %s (%s): %d mails wait already: its completion goes in one mail with those "
                         "that come before that mail's turn", job.id, job.name, self._waiting)
                self._waiting += 1
                tg.start_soon(self._send_many)
            return
        self._waiting += 1
        tg.start_soon(self._send_logged, completion_message(job, s.mail_from, s.mail_to, self._clock()),
                      f"job {job.id} ({job.name})")

    async def _send_many(self) -> None:
        made = False

        def message() -> EmailMessage:
            nonlocal made
            made = True
            s = self._settings()
            jobs, more = self._many, self._more
            self._many, self._more = [], 0
            return many_message(jobs, more, s.mail_from, s.mail_to, self._clock())

        try:
            await self._send(message)
        except MailNotSent as exc:
            log.warning("the mail of many completions was not sent: %s", exc.reason)
        else:
            log.info("the mail of many completions went to %s", self._settings().mail_to)
        finally:
            if not made:  # (refused before it was made, or the service stops: the next ones start anew)
                self._many, self._more = [], 0

    async def test(self) -> None:
        """Send the test mail now with the current settings (whether mail is on or not):
        ``InvalidJobRequest`` naming a setting a mail needs that is not set, ``MailNotSent``
        saying why it could not be sent."""
        s = self._settings()
        missing = missing_for_mail(s)
        if missing is not None:
            raise InvalidJobRequest("must be set for a mail to be sent", missing)
        self._waiting += 1
        await self._send(trial_message(s.mail_from, s.mail_to, self._clock()))
        log.info("the test mail went to %s through %s", s.mail_to, s.mail_server)

    async def _send_logged(self, message: EmailMessage, about: str) -> None:
        try:
            await self._send(message)
        except MailNotSent as exc:
            log.warning("%s: its completion's mail was not sent: %s", about, exc.reason)
        else:
            log.info("%s: its completion's mail went to %s", about, message["To"])

    async def _send(self, message: EmailMessage | Callable[[], EmailMessage]) -> None:
        """Send ``message`` once the mail before it went (``MailNotSent``); a callable: the
        message made then."""
        placed = False
        try:
            async with self._lock:
                self._waiting -= 1
                placed = True
                s = self._settings()
                missing = missing_for_mail(s)  # (a settings file edited by hand: not checked at a start)
                if missing is not None:
                    raise MailNotSent(f"not sent: {missing} is not set", missing)
                if s.proxy_only:
                    raise MailNotSent("not sent: proxy_only is on, and a mail would go to its server "
                                      "outside the proxy", "proxy_only")
                login = (s.mail_username, s.mail_password) if s.mail_auth_enabled else ("", "")
                made = message() if callable(message) else message
                await anyio.to_thread.run_sync(
                    lambda: deliver(made, s.mail_server, ssl_on=s.mail_ssl, username=login[0],
                                    password=login[1]), abandon_on_cancel=True)
        finally:
            if not placed:  # (cancelled while waiting: the service stops)
                self._waiting -= 1
