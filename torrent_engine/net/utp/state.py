"""The uTP connection state machine, as a table (every transition lives here).

A packet type that a state does not expect is not in the table: ``next_state`` raises
``UtpStateError`` and the connection drops that packet (a peer's stray packet never breaks us).
"""

from __future__ import annotations

from enum import Enum

from ...errors import UtpError
from .packet import PacketType


class State(Enum):
    """A uTP connection's state."""

    SYN_SENT = "syn_sent"  # we sent ST_SYN and wait for its ack
    CONNECTED = "connected"
    FIN_SENT = "fin_sent"  # we sent ST_FIN (no more data from us); the peer may still send
    CLOSED = "closed"  # done: both directions finished, reset, or timed out


class UtpStateError(UtpError):
    """A packet or command that is not allowed in the connection's current state."""


_T = PacketType
TRANSITIONS: dict[tuple[State, int], State] = {  # (state, PacketType) -> state
    (State.SYN_SENT, _T.STATE): State.CONNECTED,  # the SYN's ack
    (State.SYN_SENT, _T.DATA): State.CONNECTED,  # an ack lost, data already flowing
    (State.SYN_SENT, _T.RESET): State.CLOSED,  # refused
    (State.CONNECTED, _T.SYN): State.CONNECTED,  # a duplicate SYN (our ack was lost): re-ack
    (State.CONNECTED, _T.STATE): State.CONNECTED,
    (State.CONNECTED, _T.DATA): State.CONNECTED,
    (State.CONNECTED, _T.FIN): State.CONNECTED,  # the peer's EOF; we may still send
    (State.CONNECTED, _T.RESET): State.CLOSED,
    (State.FIN_SENT, _T.SYN): State.FIN_SENT,
    (State.FIN_SENT, _T.STATE): State.FIN_SENT,  # CLOSED once our FIN is acked and theirs seen
    (State.FIN_SENT, _T.DATA): State.FIN_SENT,
    (State.FIN_SENT, _T.FIN): State.FIN_SENT,
    (State.FIN_SENT, _T.RESET): State.CLOSED,
}

# Commands from the application.
CAN_SEND = frozenset({State.SYN_SENT, State.CONNECTED})
CAN_CLOSE = frozenset({State.SYN_SENT, State.CONNECTED})


def next_state(state: State, kind: int) -> State:
    """The state after receiving a ``kind`` packet (a ``PacketType`` value) in ``state``;
    ``UtpStateError`` when not allowed."""
    try:
        return TRANSITIONS[(state, kind)]
    except KeyError:
        name = PacketType(kind).name if kind in PacketType._value2member_map_ else str(kind)
        raise UtpStateError(f"uTP packet {name} not expected in state {state.value}") from None
