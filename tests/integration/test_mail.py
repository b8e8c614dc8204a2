"""A mail when a download completes, as qBittorrent's "e-mail notification upon download
completion": set through qBittorrent's preferences and our settings (every value checked), a
test mail (``app/sendTestEmail`` by qbittorrent-api, ``POST /api/settings/test-mail``) through
an SMTP server on loopback that asks for a login, the server's refusals said with the setting
they concern, the password an admin's to read; a download that completes in the incomplete
folder mails once its files are at their save path; STARTTLS and TLS."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio
import pytest

from tests.integration._smtp_server import LOGIN, smtp_server
from tests.integration.api_helpers import qbt_client, running_api
from tests.integration.test_api_users import qbt_as, users
from tests.integration.test_jobs_service import seeder

pytestmark = pytest.mark.anyio


def _prefs(port: int, **more: object) -> dict[str, str]:
    return {"json": json.dumps({
        "mail_notification_enabled": True, "mail_notification_sender": "engine@example.org",
        "mail_notification_email": "me@example.org, you@example.org",
        "mail_notification_smtp": f"127.0.0.1:{port}", "mail_notification_ssl_enabled": False,
        "mail_notification_auth_enabled": True, "mail_notification_username": LOGIN[0],
        "mail_notification_password": LOGIN[1], **more})}


async def test_the_mail_settings_are_checked_and_a_test_mail_goes_through_the_server(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with smtp_server() as server, running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/v2/app/sendTestEmail")  # (nothing set yet)
        assert r.status_code == 409 and "mail_server" in r.text, r.text
        for changes, field in (({"mail_enabled": True}, "mail_enabled"),  # (no server, sender, recipient)
                               ({"mail_to": "me@example.org, not an address"}, "mail_to"),
                               ({"mail_from": "a@b.c, d@e.f"}, "mail_from"),
                               ({"mail_server": "smtp.example.org:99999"}, "mail_server"),
                               ({"mail_server": "smtp example"}, "mail_server"),
                               ({"mail_password": "two\r\nlines"}, "mail_password"),
                               ({"mail_ssl": "yes"}, "mail_ssl")):
            r = await c.patch("/api/settings", json=changes)
            assert (r.status_code, r.json().get("field")) == (400, field), (changes, r.text)
        r = await c.post("/api/v2/app/setPreferences", data={"json": '{"mail_notification_smtp": "a b"}'})
        assert r.status_code == 400 and "mail_notification_smtp" in r.text, r.text
        r = await c.post("/api/v2/app/setPreferences", data=_prefs(server.port))
        assert r.status_code == 200, r.text
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert (prefs["mail_notification_enabled"], prefs["mail_notification_smtp"],
                prefs["mail_notification_password"]) == (True, f"127.0.0.1:{server.port}", LOGIN[1])
        settings = (await c.get("/api/settings")).json()
        assert (settings["mail_to"], settings["mail_password"]) == (
            "me@example.org, you@example.org", LOGIN[1])
        async with qbt_as(api, "alice") as alice:  # (the password is the daemon's: not a user's to read)
            assert (await alice.get("/api/v2/app/preferences")).json()["mail_notification_password"] == "***"
            assert (await alice.post("/api/v2/app/sendTestEmail")).status_code == 403

        # (as a front end asks it: qbittorrent-api's app_send_test_email, a blocking client)
        await anyio.to_thread.run_sync(lambda: qbt_client(api.url).app_send_test_email())
        mail = await server.mail(0)
        assert (mail.sender, mail.recipients, mail.login) == (
            "engine@example.org", ["me@example.org", "you@example.org"], LOGIN[0])
        assert mail.message["Subject"] == "torrent_engine: a test mail" and mail.message["Date"]
        assert "can send mail" in mail.message.get_content()

        # the server's refusals, each naming the setting it concerns
        r = await c.patch("/api/settings", json={"mail_password": "wrong"})
        assert r.status_code == 200, r.text
        r = await c.post("/api/settings/test-mail")
        assert (r.status_code, r.json()["field"]) == (502, "mail_username"), r.text
        assert "refused the login: 535" in r.json()["error"]
        r = await c.patch("/api/settings", json={"mail_auth_enabled": False, "mail_to": "nobody@example.org"})
        assert r.status_code == 200, r.text
        r = await c.post("/api/settings/test-mail")
        assert (r.status_code, r.json()["field"]) == (502, "mail_to"), r.text
        assert "nobody@example.org (550 5.1.1" in r.json()["error"]
        r = await c.patch("/api/settings", json={"mail_ssl": True, "mail_to": "me@example.org"})
        r = await c.post("/api/settings/test-mail")  # (a server that speaks no TLS)
        assert (r.status_code, r.json()["field"]) == (502, "mail_server"), r.text
        r = await c.patch("/api/settings", json={"mail_ssl": False, "mail_server": "127.0.0.1:9"})
        r = await c.post("/api/settings/test-mail")  # (nothing listens there)
        assert (r.status_code, r.json()["field"]) == (502, "mail_server"), r.text
        assert (await c.post("/api/settings/test-mail")).json()["error"].startswith(
            "mail_server: cannot send through 127.0.0.1:9: ")
        r = await c.patch("/api/settings", json={"mail_server": f"127.0.0.1:{server.port}",
                                                 "proxy_url": "socks5://127.0.0.1:9", "proxy_only": True})
        assert r.status_code == 200, r.text
        r = await c.post("/api/settings/test-mail")  # (it would leave outside the proxy)
        assert (r.status_code, r.json()["field"]) == (502, "proxy_only"), r.text
        assert len(server.mails) == 1


async def test_a_completed_download_mails_once_its_files_are_at_their_save_path(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "torrent_engine.jobs.tuning.mail")
    async with smtp_server() as server, seeder(tmp_path / "seed", rate=400_000,
                                               files=[("a.bin", 300_000)]) as (seed, torrent, _), \
            running_api(tmp_path / "api") as api:
        c = api.client
        r = await c.post("/api/v2/app/setPreferences", data=_prefs(server.port, temp_path_enabled=True))
        assert r.status_code == 200, r.text
        r = await c.patch("/api/settings", json={"mail_to": "me@example.org", "mail_auth_enabled": False})
        assert r.status_code == 200, r.text
        job, _ = await api.service.add(torrent.to_bytes(), save_path="tv",
                                       peers=[("127.0.0.1", seed.listen_port)])
        mail = await server.mail(0, timeout=60)
        body = mail.message.get_content()
        assert mail.message["Subject"] == f'torrent_engine: "{torrent.name}" has finished downloading'
        assert (mail.recipients, mail.login) == (["me@example.org"], None)
        saved = api.download_root / "tv"
        assert f"Saved in: {saved}\n" in body and "Size: 293.0 KiB" in body, body
        assert f"Info-hash: {torrent.info_hash.hex()}" in body
        assert (saved / torrent.name / "a.bin").is_file() or (saved / "a.bin").is_file()  # (moved first)
        assert api.service.get(job.id).completed_at is not None
    assert any("its completion's mail went to me@example.org" in m for m in caplog.messages)
    assert len(server.mails) == 1


async def test_starttls_when_offered_and_tls_at_once_carry_the_mail_and_an_untrusted_certificate_stops_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that offers STARTTLS gets the mail (and the login) over TLS, never in clear; its
    certificate is checked (a self-signed one the system does not trust: not sent); with
    ``mail_ssl`` TLS from the first byte."""
    from tests.unit.tracker._tracker_servers import self_signed

    certificate, _ = self_signed(tmp_path)
    async with smtp_server(certificate) as starttls, smtp_server(certificate, implicit=True) as implicit, \
            running_api(tmp_path / "api") as api:
        c = api.client
        r = await c.post("/api/v2/app/setPreferences", data=_prefs(starttls.port))
        assert r.status_code == 200, r.text
        r = await c.post("/api/settings/test-mail")
        assert (r.status_code, r.json()["field"]) == (502, "mail_server"), r.text
        assert "TLS with" in r.json()["error"] and "CERTIFICATE_VERIFY_FAILED" in r.json()["error"]
        assert starttls.mails == []  # (not sent in clear instead)

        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))  # (the system trusts it now)
        r = await c.post("/api/settings/test-mail")
        assert r.status_code == 200, r.text
        mail = await starttls.mail(0)
        assert (mail.tls, mail.login) == (True, LOGIN[0])

        r = await c.patch("/api/settings", json={"mail_ssl": True,
                                                 "mail_server": f"127.0.0.1:{implicit.port}"})
        assert r.status_code == 200, r.text
        r = await c.post("/api/settings/test-mail")
        assert r.status_code == 200, r.text
        mail = await implicit.mail(0)
        assert (mail.tls, mail.login) == (True, LOGIN[0])
