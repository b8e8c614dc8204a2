"""What a uTP connection core reports to its shell (small frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake finished: data may flow both ways."""


@dataclass(frozen=True, slots=True)
class Readable:
    """New in-order bytes wait in the receive buffer (``UtpConnection.read``)."""


@dataclass(frozen=True, slots=True)
class Writable:
    """Send-buffer space was freed by acks."""


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer sent ST_FIN and every byte before it has been read into the buffer."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is finished; ``error`` says why when it did not end cleanly."""

    error: str | None = None


Event = Connected | Readable | Writable | EndOfStream | Closed
