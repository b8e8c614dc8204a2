"""The API over HTTPS, on 127.0.0.1: our API, SSE, the web UI, /metrics and both client dialects
served with a certificate the clients verify (never ``verify=False``), the same guards as over
HTTP, qBittorrent's session cookie ``Secure``; real clients (``qbittorrent-api``,
``transmission-rpc``) trusting that certificate alone; ``torrent-engine daemon --https`` making its
certificate once and printing its fingerprint, ``remote`` verifying it; bad TLS flags refused at
start with one line naming the flag."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
import requests
from cryptography import x509

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api, sse_messages
from torrent_engine.api.tls import (
    SELF_SIGNED_CERT,
    SELF_SIGNED_KEY,
    TlsFiles,
    fingerprint,
    self_signed,
    served_names,
)

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def pair(tmp_path: Path) -> TlsFiles:
    return self_signed(tmp_path / "tls", served_names("127.0.0.1"))


def trusting(tls: TlsFiles) -> ssl.SSLContext:
    """A client context that trusts this certificate alone (not the system's authorities)."""
    return ssl.create_default_context(cafile=str(tls.certfile))


async def test_every_door_over_tls_with_the_same_guards(tmp_path: Path) -> None:
    tls = pair(tmp_path)
    async with running_api(tmp_path, tls=tls) as api:
        assert api.url.startswith("https://127.0.0.1:") and api.server.ui_url.startswith("https://")
        async with httpx.AsyncClient(base_url=api.url, verify=trusting(tls), timeout=30) as c:
            r = await c.get("/api/health", headers=AUTH)
            assert r.status_code == 200 and r.json()["status"] == "ok"
            r = await c.get("/api/jobs", headers=AUTH)
            assert r.status_code == 200 and r.json()["jobs"] == []
            assert (await c.get("/api/jobs")).status_code == 401  # the token, as over HTTP
            r = await c.get("/api/jobs", headers={**AUTH, "Host": "evil.example"})
            assert r.status_code == 403  # the Host check, as over HTTP
            r = await c.get("/")
            assert r.status_code == 200 and "text/html" in r.headers["content-type"]
            r = await c.get("/metrics", headers=AUTH)
            assert r.status_code == 200 and "torrent_engine_" in r.text
            assert (await c.get("/metrics")).status_code == 401
            ticket = (await c.post("/api/events/ticket", headers=AUTH)).json()["ticket"]
            with anyio.fail_after(20):
                async with c.stream("GET", f"/api/events?ticket={ticket}") as response:
                    assert response.status_code == 200
                    first = await anext(sse_messages(response))
            assert first.event == "snapshot"
            # qBittorrent's login: its session cookie is Secure over TLS, and opens the dialect
            r = await c.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
            assert r.status_code == 200 and r.text == "Ok."
            cookie = r.headers["set-cookie"]
            assert "SID=" in cookie and "; secure" in cookie.lower() and "httponly" in cookie.lower()
            r = await c.get("/api/v2/app/version")
            assert r.status_code == 200 and r.text.startswith("v")
            # the CSRF rule stays: a foreign Origin is refused
            r = await c.get("/api/v2/app/version", headers={"Origin": "https://evil.example"})
            assert r.status_code == 401
            # Transmission's RPC: the session-id handshake, then an answer
            r = await c.post("/transmission/rpc", json={"method": "session-get"}, headers=AUTH)
            assert r.status_code == 409
            sid = r.headers["x-transmission-session-id"]
            r = await c.post("/transmission/rpc", json={"method": "session-get"},
                             headers={**AUTH, "X-Transmission-Session-Id": sid})
            assert r.status_code == 200 and r.json()["result"] == "success"
        # a client that does not trust this certificate is refused, and plain HTTP gets no answer
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as system_only:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await system_only.get("/api/health", headers=AUTH)
        plain = api.url.replace("https://", "http://")
        async with httpx.AsyncClient(base_url=plain, timeout=30) as c:
            with pytest.raises(httpx.HTTPError):
                await c.get("/api/health", headers=AUTH)


async def test_the_session_cookie_is_not_secure_over_plain_http(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        assert api.url.startswith("http://")
        r = await api.client.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN},
                                  headers={"Authorization": ""})
        assert r.status_code == 200 and "SID=" in r.headers["set-cookie"]
        assert "secure" not in r.headers["set-cookie"].lower()


def _qbittorrent_api(url: str, tls: TlsFiles) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    qbt = qbittorrentapi.Client(host=url, username="sonarr", password=TOKEN,
                                REQUESTS_ARGS={"timeout": 30, "verify": str(tls.certfile)})
    qbt.auth_log_in()
    assert qbt.app_version().startswith("v") and qbt.torrents_info() == []
    qbt.torrents_add(urls="magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=over-tls", is_paused=True)
    assert [t.name for t in qbt.torrents_info()] == ["over-tls"]
    qbt.auth_log_out()
    untrusting = qbittorrentapi.Client(host=url, username="sonarr", password=TOKEN,
                                       REQUESTS_ARGS={"timeout": 30})
    with pytest.raises(qbittorrentapi.APIConnectionError):
        untrusting.auth_log_in()


async def test_qbittorrent_api_over_tls(tmp_path: Path) -> None:
    tls = pair(tmp_path)
    async with running_api(tmp_path, tls=tls) as api:
        await anyio.to_thread.run_sync(_qbittorrent_api, api.url, tls)
        assert [job.name for job in api.service.list()] == ["over-tls"]


def _transmission_rpc(port: int, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    transmission_rpc = require_module("transmission_rpc")
    with pytest.raises(transmission_rpc.TransmissionConnectError):  # the system's authorities only
        transmission_rpc.Client(protocol="https", host="127.0.0.1", port=port, username="radarr",
                                password=TOKEN, timeout=30)

    class Trusting(requests.Session):  # transmission-rpc has no CA option: its session trusts ours
        def __init__(self) -> None:
            super().__init__()
            self.verify = str(tls.certfile)

    monkeypatch.setattr(requests, "Session", Trusting)
    tr = transmission_rpc.Client(protocol="https", host="127.0.0.1", port=port, username="radarr",
                                 password=TOKEN, timeout=30)
    assert tr.get_torrents() == []
    tr.add_torrent("magnet:?xt=urn:btih:" + "ef" * 20 + "&dn=rpc-over-tls", paused=True)
    assert [t.name for t in tr.get_torrents()] == ["rpc-over-tls"]


async def test_transmission_rpc_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = pair(tmp_path)
    async with running_api(tmp_path, tls=tls) as api:
        await anyio.to_thread.run_sync(_transmission_rpc, api.server.bound_port, tls, monkeypatch)


# -- the daemon as a process ----------------------------------------------------------------------
def _daemon_command(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(tmp_path / "state"),
            "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--api-token", TOKEN,
            "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd",
            *extra]


async def _start_and_stop(tmp_path: Path, *extra: str) -> tuple[str, dict[str, str]]:
    """Start the daemon, wait for its api.json, ask it over HTTPS, drive it with `remote`, stop it
    with SIGTERM; (what it printed, its api.json)."""
    state = tmp_path / "state"
    (state / "api.json").unlink(missing_ok=True)
    out_path = tmp_path / "daemon.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(_daemon_command(tmp_path, *extra), stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            with anyio.fail_after(60):
                while not (state / "api.json").exists():
                    assert proc.poll() is None, out_path.read_text()
                    await anyio.sleep(0.05)
            written = json.loads((state / "api.json").read_text())
            assert written["url"].startswith("https://127.0.0.1:") and written["cafile"] == \
                str(state / SELF_SIGNED_CERT)
            context = ssl.create_default_context(cafile=written["cafile"])
            async with httpx.AsyncClient(base_url=written["url"], verify=context, timeout=30) as c:
                r = await c.get("/api/jobs", headers=AUTH)
                assert r.status_code == 200, r.text
            listed = await anyio.run_process(
                [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(state), "list"],
                env={**os.environ, "TORRENT_ENGINE_API_TOKEN": TOKEN}, check=False)
            assert listed.returncode == 0, listed.stderr.decode()
            proc.terminate()
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return out_path.read_text(), written


@pytest.mark.slow
async def test_daemon_https_makes_its_certificate_once_and_prints_its_fingerprint(tmp_path: Path) -> None:
    first, written = await _start_and_stop(tmp_path, "--https")
    cert_path = tmp_path / "state" / SELF_SIGNED_CERT
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    printed = fingerprint(cert)
    assert f"web UI and API at {written['url']}/#token={TOKEN}" in first
    assert printed in first and "made now" in first, first
    assert (tmp_path / "state" / SELF_SIGNED_KEY).stat().st_mode & 0o777 == 0o600
    # again, from the config file's key: the same certificate, the same fingerprint
    config = tmp_path / "te.toml"
    config.write_text("https = true\n")
    second, _ = await _start_and_stop(tmp_path, "--config", str(config))
    assert printed in second and "made now" not in second, second
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()) == cert


def _refused(tmp_path: Path, *flags: str) -> str:
    result = subprocess.run(_daemon_command(tmp_path, *flags), capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 1 and result.stdout == "", (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_tls_flags_stop_the_daemon_with_one_line(tmp_path: Path) -> None:
    tls = pair(tmp_path)
    other = self_signed(tmp_path / "other", served_names("127.0.0.1"))
    cert, key = str(tls.certfile), str(tls.keyfile)
    said = _refused(tmp_path, "--tls-cert", cert)
    assert said == "torrent-engine daemon: error: --tls-cert: needs --tls-key, the certificate's private key"
    said = _refused(tmp_path, "--https", "--tls-cert", cert, "--tls-key", key)
    assert said.startswith("torrent-engine daemon: error: --https: cannot go with --tls-cert")
    said = _refused(tmp_path, "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", key)
    assert said.startswith("torrent-engine daemon: error: --tls-cert: cannot read the certificate")
    assert "missing.pem" in said and "No such file" in said
    said = _refused(tmp_path, "--tls-cert", cert, "--tls-key", str(other.keyfile))
    assert said.startswith("torrent-engine daemon: error: --tls-key: the key") and "does not match" in said
    assert not (tmp_path / "state" / "api.json").exists()
