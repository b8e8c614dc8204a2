"""Socket tests run over both ways of reading datagrams: ``recvmmsg`` batches (Linux) and one
``recvfrom`` per datagram (elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from torrent_engine.utp import mmsg


@pytest.fixture(params=["recvmmsg", "recvfrom"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every UtpSocket made in the test reads with ``request.param``."""
    if request.param == "recvmmsg":
        if not mmsg.available():
            pytest.skip("recvmmsg is not available on this platform")
    else:
        monkeypatch.setattr(mmsg, "available", lambda: False)
    yield request.param
