"""Cookies a user gives for the .torrent URLs the engine fetches (a private tracker's login, as
qBittorrent's ``app/setCookies`` keeps them): each checked once, and matched to a request URL
as Qt's cookie jar, which qBittorrent fetches with, matches them. Pure: the caller gives the time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .url import split_http_url

__all__ = ["MAX_COOKIES", "Cookie", "CookieError", "check_cookie", "cookie_header"]

MAX_COOKIES = 512  # kept at once (a client sends the whole list each time)
MAX_NAME_VALUE = 4096  # bytes of a cookie's name and value together (RFC 6265 §6.1's least)
MAX_DOMAIN = 253  # a DNS name's length
MAX_PATH = 1024
LATEST = 253402300799  # 9999-12-31T23:59:59Z, the last moment a QDateTime shows in an ISO date
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230's token: a cookie's name (RFC 6265 §4.1.1)
_DOMAIN = re.compile(r"\.?[0-9A-Za-z_\-.]+|\[[0-9A-Fa-f:.]+\]")  # a host name, an IPv4 or a bracketed IPv6


class CookieError(ValueError):
    """A cookie that cannot be kept: what was wrong and the field (``name``, ``value``,
    ``domain``, ``path``, ``expirationDate``)."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class Cookie:
    """One cookie as it is given: sent to ``domain`` (itself; with a leading dot, its sub-domains
    too) for the URLs under ``path`` (``""``: every one) until ``expires`` (epoch seconds; None: a
    session cookie, kept until the program stops, as Qt keeps one)."""

    name: str
    value: str
    domain: str
    path: str
    expires: int | None

    def expired(self, now: float) -> bool:
        """Whether it is past its expiry (a session cookie never is)."""
        return self.expires is not None and self.expires <= now

    def matches(self, host: str, path: str, now: float) -> bool:
        """Whether a request to ``host`` (lower case, IPv6 without brackets) for ``path`` carries
        it: Qt's ``isParentDomain`` and ``isParentPath`` (RFC 6265 §5.1.3, §5.1.4)."""
        if self.expired(now):
            return False
        domain = self.domain.lower()
        if domain.startswith("[") and domain.endswith("]"):
            domain = domain[1:-1]
        if domain.startswith("."):
            if host != domain[1:] and not host.endswith(domain):
                return False
        elif host != domain:
            return False
        if not self.path:
            return True
        if not path.startswith(self.path):
            return False
        return len(path) == len(self.path) or self.path.endswith("/") or path[len(self.path)] == "/"


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise CookieError("must be a string", field)
    if len(value.encode()) > limit:
        raise CookieError(f"longer than {limit} bytes", field)
    if any(not c.isascii() or not c.isprintable() or c == ";" for c in value):
        raise CookieError("must be printable ASCII without ';'", field)  # (it goes in a header line)
    return value


def check_cookie(name: object, value: object, domain: object, path: object, expires: object) -> Cookie:
    """A cookie of these values as a client sends them (``expires``: an integer of epoch
    seconds, or None for a session cookie); ``CookieError`` naming the first that is wrong."""
    name_text = _text(name, "name", MAX_NAME_VALUE)
    if not _TOKEN.fullmatch(name_text):
        raise CookieError("must be a token: letters, digits and !#$%&'*+-.^_`|~", "name")
    value_text = _text(value, "value", MAX_NAME_VALUE - len(name_text))
    domain_text = _text(domain, "domain", MAX_DOMAIN)
    if not _DOMAIN.fullmatch(domain_text) or domain_text.strip(".") == "":
        raise CookieError("must be a host name (a leading '.' for its sub-domains too) or an IP address",
                          "domain")
    path_text = _text(path, "path", MAX_PATH)
    if path_text and not path_text.startswith("/"):
        raise CookieError("must be empty or start with '/'", "path")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
        raise CookieError("must be an integer (seconds since the epoch)", "expirationDate")
    if expires is not None and not -LATEST <= expires <= LATEST:
        raise CookieError(f"must be between {-LATEST} and {LATEST}", "expirationDate")
    return Cookie(name_text, value_text, domain_text, path_text, expires)


def cookie_header(cookies: Iterable[Cookie], url: str, now: float) -> str:
    """The ``Cookie:`` value a GET of ``url`` carries (``""``: none): the cookies that match it,
    those with the longer path first (RFC 6265 §5.4); none for a URL that is not http(s)."""
    try:
        where = split_http_url(url)
    except ValueError:
        return ""
    host = where.host.lower()
    sent = [c for c in cookies if c.matches(host, where.path, now)]
    sent.sort(key=lambda c: -len(c.path))
    return "; ".join(f"{c.name}={c.value}" for c in sent)
