"""The queue's moves by name (the HTTP API's vocabulary): see rounds.py."""

from __future__ import annotations

from .rounds import QUEUE_MOVES

__all__ = ["QUEUE_MOVES"]
