"""The pure peer pool: adding, banning, candidates and back-off, with the clock passed in."""

from __future__ import annotations

from torrent_engine.session.peer_pool import (
    MAX_CONNECT_FAILURES,
    RETRY_DELAYS,
    SEED_RETRY_DELAY,
    PeerPool,
    retry_delay,
)

A = ("127.0.0.1", 6881)
B = ("127.0.0.2", 6881)


def test_add_keeps_order_and_drops_duplicates_bad_ports_and_banned() -> None:
    pool = PeerPool()
    assert pool.add(A) and pool.add(B)
    assert not pool.add(A)
    assert not pool.add(("127.0.0.3", 0)) and not pool.add(("127.0.0.3", 65536))
    assert pool.ban(("127.0.0.4", 1))
    assert not pool.add(("127.0.0.4", 1))
    assert list(pool) == [A, B]


def test_cap() -> None:
    pool = PeerPool(cap=2)
    assert pool.add(A) and pool.add(B) and pool.full
    assert not pool.add(("127.0.0.3", 1))
    assert len(pool) == 2


def test_ban_once_and_banned_never_a_candidate() -> None:
    pool = PeerPool()
    pool.add(A)
    assert pool.ban(A) and not pool.ban(A)
    assert pool.is_banned(A) and pool.banned_count == 1
    assert list(pool.candidates(0.0, set())) == []
    assert pool.known() == {A}


def test_candidates_skip_busy() -> None:
    pool = PeerPool()
    pool.add(A)
    pool.add(B)
    assert list(pool.candidates(0.0, {A})) == [B]


def test_failure_backoff_grows_then_gives_up() -> None:
    pool = PeerPool()
    pool.add(A)
    now = 100.0
    for n in range(1, MAX_CONNECT_FAILURES + 1):
        pool.failed(A, now)
        assert pool[A].failures == n
        assert pool[A].next_try == now + retry_delay(n)
        assert list(pool.candidates(now + retry_delay(n) - 0.1, set())) == []
        if n < MAX_CONNECT_FAILURES:
            assert list(pool.candidates(now + retry_delay(n), set())) == [A]
    assert list(pool.candidates(now + 10_000.0, set())) == []  # given up
    assert pool.failing() == {A}
    pool.forgive_all()
    assert list(pool.candidates(0.0, set())) == [A]


def test_quick_failure_uses_the_first_delay() -> None:
    pool = PeerPool()
    pool.add(A)
    pool.failed(A, 0.0)
    pool.failed(A, 0.0, quick=True)
    assert pool[A].failures == 2 and pool[A].next_try == RETRY_DELAYS[0]


def test_retry_delay_bounds() -> None:
    assert retry_delay(0) == RETRY_DELAYS[0]
    assert retry_delay(1) == RETRY_DELAYS[0]
    assert retry_delay(99) == RETRY_DELAYS[-1]


def test_drop_at_once_counts_as_failure_a_held_one_resets() -> None:
    pool = PeerPool()
    pool.add(A)
    pool.failed(A, 0.0)
    pool.dropped(A, 50.0, held_for=1.0, both_seeds=False)
    assert pool[A].failures == 2 and pool[A].next_try == 50.0 + retry_delay(2)
    pool.dropped(A, 80.0, held_for=600.0, both_seeds=False)
    assert pool[A].failures == 0 and pool[A].next_try == 80.0 + RETRY_DELAYS[0]
    pool.dropped(A, 90.0, held_for=600.0, both_seeds=True)
    assert pool[A].next_try == 90.0 + SEED_RETRY_DELAY


def test_ourselves_never_again_and_duplicate_later() -> None:
    pool = PeerPool()
    pool.add(A)
    pool.add(B)
    pool.never_again(A)
    pool.later(B, 10.0)
    assert pool[B].next_try == 10.0 + RETRY_DELAYS[-1]
    assert list(pool.candidates(10_000.0, set())) == [B]
    pool.failed(("127.0.0.9", 1), 0.0)  # unknown addresses are ignored
    assert len(pool) == 2


def test_every_source_an_address_was_heard_from_is_kept() -> None:
    pool = PeerPool()
    assert pool.add(("10.0.0.1", 6881), "lsd")
    assert not pool.add(("10.0.0.1", 6881), "tracker")  # known: not added again, but heard there too
    assert not pool.add(("10.0.0.1", 6881), "lsd")
    assert pool.sources(("10.0.0.1", 6881)) == ("tracker", "lsd")  # in SOURCES order
    assert pool.add(("10.0.0.2", 6881), "pex") and pool.sources(("10.0.0.2", 6881)) == ("pex",)
    assert pool.add(("10.0.0.3", 6881)) and pool.sources(("10.0.0.3", 6881)) == ("user",)
    assert pool.sources(("10.0.0.9", 1)) == ()
    assert pool.sources(("10.0.0.9", 1), incoming=True) == ("incoming",)  # it dialed us
    assert pool.sources(("10.0.0.1", 6881), incoming=True) == ("tracker", "lsd", "incoming")
    pool.ban(("10.0.0.4", 6881))
    assert not pool.add(("10.0.0.4", 6881), "dht") and pool.sources(("10.0.0.4", 6881)) == ()


def test_an_address_the_user_names_again_is_dialed_at_once_however_often_it_failed() -> None:
    pool = PeerPool()
    pool.add(A)
    for _ in range(MAX_CONNECT_FAILURES):  # refused until given up (it did not listen yet)
        pool.failed(A, 0.0)
    assert list(pool.candidates(10_000.0, set())) == []
    assert pool.add(A, "user")  # the user adds it again: dial it (the connector wakes on True)
    assert pool[A].failures == 0 and list(pool.candidates(0.0, set())) == [A]
    assert not pool.add(A, "user")  # nothing failed since: nothing new to try


def test_a_tracker_announcing_an_address_again_forgives_one_failure_other_sources_none() -> None:
    pool = PeerPool()
    pool.add(A, "dht")
    for _ in range(MAX_CONNECT_FAILURES):
        pool.failed(A, 0.0)
    for source in ("dht", "pex", "lsd", "magnet", "incoming"):
        assert not pool.add(A, source)  # anyone may repeat an address there
    assert pool[A].failures == MAX_CONNECT_FAILURES
    assert pool.add(A, "tracker")  # someone else reached it: one more try, after its back-off
    assert pool[A].failures == MAX_CONNECT_FAILURES - 1 and pool[A].next_try == retry_delay(4)
    assert list(pool.candidates(retry_delay(4), set())) == [A]
    assert not pool.add(A, "tracker")  # no longer given up: it is dialed when its back-off ends
    assert pool[A].failures == MAX_CONNECT_FAILURES - 2


def test_a_banned_address_named_again_stays_banned() -> None:
    pool = PeerPool()
    pool.add(A)
    pool.failed(A, 0.0)
    pool.ban(A)
    assert not pool.add(A, "user") and list(pool.candidates(10_000.0, set())) == []


def test_our_own_address_is_never_tried_again_whoever_names_it() -> None:
    pool = PeerPool()
    pool.add(A, "tracker")
    pool.never_again(A)  # (the handshake's peer id was ours)
    assert not pool.add(A, "user") and not pool.add(A, "tracker")
    pool.forgive_all()
    assert pool[A].failures == MAX_CONNECT_FAILURES and list(pool.candidates(10_000.0, set())) == []
