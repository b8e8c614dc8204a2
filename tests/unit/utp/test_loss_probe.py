"""The tail loss probe's timer on its own: when it is due, once per silence, and which ack
answers it (the probe repaired a loss) rather than the first copy (the probe was spurious)."""

from __future__ import annotations

from torrent_engine.net.utp.ack_deferral import ACK_DELAY_US
from torrent_engine.net.utp.congestion import RttEstimator
from torrent_engine.net.utp.loss_probe import PROBE_MIN_US, TailLossProbe


def test_no_probe_before_a_round_trip_is_measured_then_two_round_trips_and_the_ack_delay() -> None:
    rtt = RttEstimator()
    assert TailLossProbe.timeout(rtt) == rtt.rto_us
    rtt.sample(50_000)
    assert TailLossProbe.timeout(rtt) == 100_000 + ACK_DELAY_US
    fast = RttEstimator()
    fast.sample(100)
    assert TailLossProbe.timeout(fast) == PROBE_MIN_US + ACK_DELAY_US


def test_the_probe_is_due_once_when_its_deadline_passes_and_allowed() -> None:
    rtt = RttEstimator()
    rtt.sample(50_000)
    probe = TailLossProbe()
    probe.arm(1_000_000, rtt)
    assert probe.at is not None
    probe.expire(probe.at - 1, allowed=True)
    assert not probe.due
    probe.expire(probe.at, allowed=True)
    assert probe.due and probe.at is None
    probe.due = False
    probe.expire(10**9, allowed=True)  # one probe per silence: not armed again by itself
    assert not probe.due
    probe.arm(2_000_000, rtt)
    probe.expire(10**9, allowed=False)  # (e.g. nothing in flight any more)
    assert not probe.due and probe.at is None


def test_an_ack_echoing_the_probe_answers_it_an_earlier_echo_answers_the_first_copy() -> None:
    probe = TailLossProbe()
    probe.sent_again(7, 5_000_000)
    assert probe.seq == 7 and probe.sent == 1
    assert probe.answered(5_100_000, 100_000)  # echoes the probe's own time
    assert probe.answered(5_300_000, 100_000)  # later
    assert not probe.answered(5_100_000, 200_000)  # echoes a time before the probe went
    assert probe.answered(5_100_000, 0)  # no delay reported: taken as the probe's
