"""The stall diagnosis: each reason from the facts a session feeds it, after the grace only."""

from __future__ import annotations

import pytest

from torrent_engine.policy.stall import StallDetector, StallReason, SwarmFacts, diagnose


def facts(**kw: object) -> SwarmFacts:
    base: dict[str, object] = dict(sources=1, known=0, connected=0, failed=0, encryption_refused=0, banned=0,
                                   peers_with_wanted=0)
    base.update(kw)
    return SwarmFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "reason", "words"), [
    (facts(sources=0), StallReason.NO_PEER_SOURCES, "no peer sources"),
    (facts(), StallReason.NO_PEERS_FOUND, "no peers found"),
    (facts(tracker_errors=("http://t/a: refused",)), StallReason.TRACKER_ERRORS, "tracker errors: http://t/a"),
    (facts(known=3, failed=3), StallReason.NONE_REACHABLE, "3 peers known, none reachable"),
    (facts(known=2, failed=2, encryption_refused=2), StallReason.ENCRYPTION_REFUSED, "for encryption"),
    (facts(known=3, failed=3, encryption_refused=1), StallReason.NONE_REACHABLE, "none reachable"),
    (facts(known=2, banned=2), StallReason.ALL_BANNED, "all 2 known peers are banned"),
    (facts(known=2, connected=2), StallReason.NO_PEER_HAS_PIECES, "none has the missing pieces"),
    (facts(known=2, connected=2, peers_with_wanted=1), StallReason.NOTHING_ARRIVES, "none sends"),
    (facts(known=1, connected=1, fetching_metadata=True), StallReason.NOTHING_ARRIVES, "the metadata"),
    (facts(known=2, connected=2, peers_with_wanted=2, piece_layers_missing=2, hash_requests_sent=4,
           hash_requests_failed=4), StallReason.NO_PIECE_LAYERS,
     "4 hash requests sent, 4 rejected or unanswered"),
    (facts(known=1, connected=1, piece_layers_missing=1), StallReason.NO_PIECE_LAYERS,
     "piece hashes (v2 piece layers, BEP 52) of 1 file: no connected peer has those pieces"),
    # BEP 19: a web seed is a source of its own, not "no peer source"
    (facts(sources=1, web_seeds=1), StallReason.NOTHING_ARRIVES, "1 web seeds, none sends"),
    (facts(sources=1, web_seeds=1, web_seed_errors=("http://w/f: HTTP 503",)), StallReason.WEB_SEEDS_FAILING,
     "web seeds fail: http://w/f: HTTP 503"),
    (facts(sources=1, web_seed_errors=("http://w/f: banned",), known=1, banned=1),
     StallReason.WEB_SEEDS_FAILING, "http://w/f: banned"),
    (facts(known=2, failed=2, web_seed_errors=("http://w/f: given up",)), StallReason.NONE_REACHABLE,
     "none reachable"),
])
def test_each_reason(given: SwarmFacts, reason: StallReason, words: str) -> None:
    found, message = diagnose(given)
    assert found is reason and words in message


def test_only_after_the_grace_and_progress_resets_it() -> None:
    detector = StallDetector(grace=10)
    quiet = facts(sources=0)
    assert detector.observe(0.0, 100, quiet) is None
    assert detector.observe(9.9, 100, quiet) is None
    stall = detector.observe(10.0, 100, quiet)
    assert stall is not None and stall.reason is StallReason.NO_PEER_SOURCES and stall.seconds == 10.0
    assert detector.observe(11.0, 101, quiet) is None  # a byte arrived: counting starts again
    assert detector.observe(20.9, 101, quiet) is None
    assert detector.observe(21.0, 101, quiet) is not None
    detector.reset(30.0)  # e.g. paused and resumed
    assert detector.observe(35.0, 101, quiet) is None
