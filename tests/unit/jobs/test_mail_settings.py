"""The mail settings' checks and the messages a completion and a test send (jobs/tuning/mail.py)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.api.test_compat_translation import job
from torrent_engine.jobs import InvalidJobRequest, JobState
from torrent_engine.jobs.model import JobFeatures
from torrent_engine.jobs.tuning.mail import (
    check_mail_addresses,
    check_mail_server,
    check_mail_text,
    completion_message,
    missing_for_mail,
    trial_message,
)
from torrent_engine.jobs.tuning.settings import ServiceSettings, updated


def test_addresses_are_one_or_a_list_written_back_plainly() -> None:
    assert check_mail_addresses(" a@b.example ,c.d+tag@e.example", "mail_to", many=True) == \
        "a@b.example, c.d+tag@e.example"
    assert check_mail_addresses("", "mail_to", many=True) == ""
    assert check_mail_addresses("me@example.org", "mail_from", many=False) == "me@example.org"
    for bad, many in (("a@b.c, d@e.f", False), ("Me <me@example.org>", True), ("me", True),
                      ("me@", True), ("a b@c.d", True), ("a@b.c,,d@e.f", True), ("a@-b.c", True),
                      (",".join(["a@b.c"] * 33), True), (7, True)):
        with pytest.raises(InvalidJobRequest) as caught:
            check_mail_addresses(bad, "mail_to", many=many)
        assert caught.value.field == "mail_to", bad


def test_a_server_is_a_host_with_an_optional_port() -> None:
    for good in ("smtp.example.org", "smtp.example.org:587", "127.0.0.1:2525", "[::1]:25", "[::1]", ""):
        assert check_mail_server(good, "mail_server") == good
    for bad in ("smtp example", "smtp.example.org:0", "smtp.example.org:65536", "host:port", "[::1]x",
                "-smtp.example", "a/b", "user@smtp.example", "smtp.example:", "[::1]x", "::1", 25):
        with pytest.raises(InvalidJobRequest):
            check_mail_server(bad, "mail_server")
    with pytest.raises(InvalidJobRequest):
        check_mail_text("a\nb", "mail_password")
    assert check_mail_text("pässwörd; with spaces", "mail_password") == "pässwörd; with spaces"


def test_mail_on_needs_a_server_a_sender_and_a_recipient() -> None:
    s = ServiceSettings()
    assert missing_for_mail(s) == "mail_server"
    with pytest.raises(InvalidJobRequest) as caught:
        updated(s, {"mail_enabled": True, "mail_server": "smtp.example.org", "mail_to": "a@b.example"})
    assert caught.value.field == "mail_enabled" and "mail_from" in caught.value.reason
    on = updated(s, {"mail_enabled": True, "mail_server": "smtp.example.org", "mail_to": "a@b.example",
                     "mail_from": "e@b.example"})
    assert on.mail_enabled and missing_for_mail(on) is None
    with pytest.raises(InvalidJobRequest):
        updated(on, {"mail_to": ""})  # (on, it keeps what it needs)
    assert not updated(on, {"mail_enabled": False, "mail_to": ""}).mail_enabled


def test_the_messages_say_what_completed_where_and_in_how_long() -> None:
    done = dataclasses.replace(job(JobState.SEEDING, progress=1.0), name="Show\r\nBcc: x@evil.example",
                               total_size=3 * 2**30, completed_at=1.0 + 3 * 3600 + 125,
                               features=JobFeatures(category="tv", tags=("a", "b")))
    message = completion_message(done, "e@b.example", "a@b.example, c@d.example", now=10_000.0)
    assert message["Subject"] == 'torrent_engine: "Show Bcc: x@evil.example" has finished downloading'
    assert message["Bcc"] is None and message["To"] == "a@b.example, c@d.example"
    assert message["From"] == "e@b.example" and message["Message-ID"].endswith("@b.example>")
    body = message.get_content()
    assert "Size: 3.0 GiB\n" in body and "Saved in: /dl\n" in body
    assert "Downloaded in: 3 h 2 min (from its add)\n" in body
    assert "Category: tv\nTags: a, b\n" in body and f"Info-hash: {'ab' * 20}" in body
    assert trial_message("e@b.example", "a@b.example", 0.0)["Subject"] == "torrent_engine: a test mail"
    for name in ("Ünïcödé 日本", "Ünïcödé 日本 " + "x" * 2000):  # (7-bit, short lines: any server takes it)
        sent = completion_message(dataclasses.replace(done, name=name), "e@b.example", "a@b.example",
                                  now=0.0).as_bytes()
        assert sent.isascii() and max(len(line) for line in sent.splitlines()) <= 78, sent


@pytest.mark.anyio
async def test_a_completion_s_mail_without_a_server_is_said_not_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    """A settings file edited by hand may say mail is on without a server (a start does not refuse
    it): the completion's mail is not sent, and the log says why."""
    import anyio

    from torrent_engine.jobs.tuning.mail import Mailer

    s = dataclasses.replace(ServiceSettings(), mail_enabled=True, mail_to="a@b.example",
                            mail_from="e@b.example")
    async with anyio.create_task_group() as tg:
        mailer = Mailer(lambda: s, lambda: tg)
        mailer.completed(job(JobState.SEEDING, progress=1.0))
    assert any("its completion's mail was not sent: not sent: mail_server is not set" in m
               for m in caplog.messages), caplog.messages


@pytest.mark.anyio
async def test_completions_past_the_waiting_mails_go_in_one_mail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library checked completes thousands at once: past MAX_WAITING mails waiting, the
    completions that come before the next mail's turn are named in one mail, none dropped."""
    import threading

    import anyio

    from torrent_engine.jobs.tuning import mail

    sent: list[str] = []
    go = threading.Event()

    def deliver(message: object, *args: object, **kwargs: object) -> None:
        go.wait(10)
        sent.append(message.get_content())  # type: ignore[attr-defined]

    monkeypatch.setattr(mail, "deliver", deliver)
    monkeypatch.setattr(mail, "MAX_LISTED", 4)
    s = dataclasses.replace(ServiceSettings(), mail_enabled=True, mail_to="a@b.example",
                            mail_from="e@b.example", mail_server="127.0.0.1:9")
    done = [dataclasses.replace(job(JobState.SEEDING, progress=1.0), id=f"j{i}", name=f"show {i}")
            for i in range(mail.MAX_WAITING + 7)]
    async with anyio.create_task_group() as tg:
        mailer = mail.Mailer(lambda: s, lambda: tg)
        for one in done:
            mailer.completed(one)
        go.set()
        with anyio.fail_after(20):
            while len(sent) < mail.MAX_WAITING + 1:
                await anyio.sleep(0.01)
        mailer.completed(done[0])  # (all sent: the next completion has its own mail)
    assert len(sent) == mail.MAX_WAITING + 2
    sent, last = sent[:-1], sent[-1]
    assert '"show 0" has finished downloading' in last
    assert all(f'"show {i}" has finished downloading' in sent[i] for i in range(mail.MAX_WAITING))
    many = sent[-1]
    assert many.startswith("7 downloads have finished:"), many
    assert all(f'"show {i}"' in many for i in range(mail.MAX_WAITING, mail.MAX_WAITING + 4))
    assert "and 3 more" in many and f'"show {mail.MAX_WAITING + 4}"' not in many
