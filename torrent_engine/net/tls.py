"""The TLS context of the engine's client connections (HTTPS trackers, web seeds, ``.torrent``
URLs, feeds, a mail server): made once and shared, as an ``ssl.SSLContext`` is meant to be, since
making one loads the system's trusted certificates (~20 ms of CPU each, bench/RESULTS.md). It
follows ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` as ``ssl.create_default_context`` does: a change
of either is a context of its own.
"""

from __future__ import annotations

import functools
import os
import ssl

__all__ = ["client_context"]


def client_context() -> ssl.SSLContext:
    """The default client context (certificates verified against the system's trusted ones,
    the host name checked), one a process for the environment's certificate locations."""
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    del cafile, capath  # (the key: ssl reads them from the environment itself)
    return ssl.create_default_context()
