"""Socket tests run over every way of moving datagrams: ``recvmmsg`` batches with segmented sends
and coalesced reads (Linux), the same without the offloads, and one ``recvfrom`` per datagram
(elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from torrent_engine.net.utp import gso, mmsg
from torrent_engine.net.utp import socket as utp_socket


@pytest.fixture(params=["recvmmsg", "recvmmsg-no-offload", "recvfrom"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every UtpSocket made in the test reads (and sends) the ``request.param`` way."""
    if request.param.startswith("recvmmsg"):
        if not mmsg.available():
            pytest.skip("recvmmsg is not available on this platform")
        if request.param.endswith("no-offload"):
            monkeypatch.setattr(gso, "available", lambda: False)
            monkeypatch.setattr(utp_socket, "_coalescing", lambda sock: False)
    else:
        monkeypatch.setattr(mmsg, "available", lambda: False)
    yield request.param
