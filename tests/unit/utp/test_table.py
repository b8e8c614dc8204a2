"""The socket's connection table on its own: lookups by address and id and by wire address,
the connection an ICMP error's datagram came from, free ids for a dial, and silent peers."""

from __future__ import annotations

import random

from torrent_engine.net.utp.connection import UtpConnection
from torrent_engine.net.utp.packet import PacketType, decode, encode_header
from torrent_engine.net.utp.state import State
from torrent_engine.net.utp.stream import UtpStream
from torrent_engine.net.utp.table import SILENT_MAX, SILENT_MEMORY, ConnectionTable, SilentPeers

PEER = ("127.0.0.1", 6881)


class _Owner:
    local_address = ("127.0.0.1", 7000)

    def mark(self, stream: UtpStream) -> None:
        pass


def _stream(conn_id: int, addr: tuple[str, int] = PEER) -> UtpStream:
    return UtpStream(_Owner(), UtpConnection.initiate(conn_id, 100), addr)


def test_connections_are_found_by_address_and_id_and_by_wire_address_once_seen() -> None:
    table = ConnectionTable()
    a, b = _stream(10), _stream(10, ("127.0.0.1", 6882))
    key = table.add(PEER, a)
    table.add(("127.0.0.1", 6882), b)
    assert len(table) == 2 and table.get(PEER, 10) is a and table.get(PEER, 11) is None
    assert table.by_wire == {}
    table.learn_wire(a, ("::ffff:127.0.0.1", 6881, 0, 0), 11)
    assert table.by_wire == {(("::ffff:127.0.0.1", 6881, 0, 0), 11): a}
    table.forget(key)
    assert table.get(PEER, 10) is None and table.by_wire == {} and len(table) == 1
    assert [s for _, s in table] == [b] and table.clear() == [b] and not table


def test_only_connections_not_closed_count_as_open() -> None:
    table = ConnectionTable()
    a, b = _stream(10), _stream(20)
    table.add(PEER, a)
    table.add(PEER, b)
    b.conn.abort("gone")
    assert b.conn.state is State.CLOSED and table.open_count() == 1


def test_the_sender_of_a_datagram_named_by_an_icmp_error_is_found_by_its_ids() -> None:
    table = ConnectionTable()
    dialed = _stream(10)  # receives on 10, sends on 11
    table.add(PEER, dialed)
    syn = dialed.conn.datagrams(1_000_000)[0]
    assert table.sender_of(syn, PEER) is dialed  # a SYN carries our receive id
    accepted = UtpStream(_Owner(), UtpConnection.accept(decode(syn), 500, 1_000_000), ("127.0.0.1", 9))
    table.add(("127.0.0.1", 9), accepted)  # receives on 11, sends on 10
    state = encode_header(PacketType.STATE, 10, 0, 0, 0, 500, 0)
    assert table.sender_of(state, ("127.0.0.1", 9)) is accepted
    assert table.sender_of(state, PEER) is None  # (another peer's address)


def test_a_free_id_is_one_no_connection_with_that_peer_uses() -> None:
    table = ConnectionTable()
    rng = random.Random(1)
    taken = random.Random(1).randrange(1 << 16)
    table.add(PEER, _stream(taken))
    conn_id = table.free_id(PEER, rng)
    assert conn_id is not None and conn_id != taken
    assert table.free_id(PEER, random.Random(1), tries=1) is None


def test_silent_peers_are_remembered_for_a_while_and_the_oldest_forgotten_first() -> None:
    silent = SilentPeers()
    silent.note("10.0.0.1", 1, 100.0)
    assert silent.is_silent("10.0.0.1", 1, 100.0 + SILENT_MEMORY)
    assert not silent.is_silent("10.0.0.1", 1, 100.0 + SILENT_MEMORY + 1)
    assert not silent.is_silent("10.0.0.1", 2, 100.0)
    for port in range(SILENT_MAX + 1):
        silent.note("10.0.0.2", port, 200.0)
    assert not silent.is_silent("10.0.0.2", 0, 200.0) and silent.is_silent("10.0.0.2", SILENT_MAX, 200.0)
