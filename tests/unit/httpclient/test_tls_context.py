"""The client TLS context (``net.tls.client_context``): made once for every HTTPS request, not
once a request (loading the system's certificates is ~20 ms of CPU), and made again when the
environment names other certificates."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio.abc
import pytest

from tests.unit.tracker._tracker_servers import HttpRequest, http_response, http_tracker, self_signed
from torrent_engine.net import tls
from torrent_engine.net.httpclient import http_get

pytestmark = pytest.mark.anyio


async def test_the_tls_context_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server_context, _ = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))  # (trusted as the system's)
    made = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(http_response(b"ok"))

    monkeypatch.setattr(ssl, "create_default_context", counting)
    tls._context.cache_clear()
    try:
        async with http_tracker(answer, tls=server_context) as server:
            for _ in range(3):
                assert (await http_get(f"https://127.0.0.1:{server.port}/a", timeout=5)).body == b"ok"
        first = tls.client_context()
        assert len(made) == 1 and tls.client_context() is first
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "other.pem"))  # (another trust: another context)
        assert tls.client_context() is not first and len(made) == 2
    finally:
        tls._context.cache_clear()
