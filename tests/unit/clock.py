"""A clock the test moves by hand, for code that takes ``clock=`` (``clock.now += 5``)."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
