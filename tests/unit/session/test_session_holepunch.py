"""The session's BEP 55 roles (``session/holepunch.py``) with peers whose links record what is
sent: the relay's answers, what is ignored, ``connect`` dials, and rendezvous after PEX."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from torrent_engine.config import Config
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.extensions import PEX_HOLEPUNCH, PEX_REACHABLE, PEX_UTP, PexMessage
from torrent_engine.net.peer.holepunch import (
    HolepunchError,
    HolepunchMessage,
    HolepunchType,
    decode_holepunch,
    encode_holepunch,
)
from torrent_engine.session.holepunch import Holepunch
from torrent_engine.session.peer import PeerState
from torrent_engine.session.peer_pool import PeerPool
from torrent_engine.session.pex import pex_view

pytestmark = pytest.mark.anyio
OUR_PORT = 6881


class Link:
    def __init__(self, transport: str = "tcp") -> None:
        self.transport = transport
        self.encrypted = False
        self.sent: list[m.Message] = []

    async def send_many(self, msgs: Any) -> None:
        self.sent.extend(msgs)


class Dialing:
    """What hole punching asks of the dialing (``Dialer``): the dials it starts, recorded."""

    def __init__(self, punched: list[Any]) -> None:
        self.connecting: set[tuple[str, int]] = set()
        self.punch = punched.append

    def peer_limit(self) -> int:
        return Config().max_peers_per_torrent


def peer(host: str, port: int, *, incoming: bool = False, listen_port: int | None = None,
         ut_holepunch: int = 7, transport: str = "tcp") -> PeerState:
    p = PeerState(host=host, port=port, link=Link(transport), incoming=incoming,  # type: ignore[arg-type]
                  have=Bitfield(1))
    p.listen_port, p.ut_holepunch = listen_port, ut_holepunch
    return p


@dataclass
class Shared:
    """What hole punching reads of the shared resources (``Reachable``)."""

    utp: object | None
    external_ip: str | None
    listen_port: int = OUR_PORT


@dataclass
class Context:
    """What hole punching reads of its torrent (``HolepunchContext``)."""

    peers: dict[tuple[str, int], PeerState]
    shared: Shared
    config: Config = field(default_factory=lambda: Config(dht_enabled=False, port_mapping=False,
                                                          lsd_enabled=False))
    pool: PeerPool = field(default_factory=PeerPool)


def holepunch(*peers: PeerState, utp: bool = True,
              external_ip: str | None = None) -> tuple[Holepunch, list[Any]]:
    punched: list[Any] = []
    context = Context({p.key: p for p in peers}, Shared(object() if utp else None, external_ip))
    return Holepunch(context, Dialing(punched)), punched


def received(p: PeerState) -> list[HolepunchMessage]:
    sent = p.link.sent  # type: ignore[attr-defined]
    assert all(isinstance(x, m.Extended) and x.ext_id == p.ut_holepunch for x in sent)
    return [decode_holepunch(x.payload) for x in sent]


def rendezvous(host: str, port: int) -> bytes:
    return encode_holepunch(HolepunchMessage(HolepunchType.RENDEZVOUS, (host, port)))


async def test_the_relay_sends_connect_to_both_with_their_listen_endpoints() -> None:
    initiator = peer("10.0.0.1", 50001, incoming=True, listen_port=7000)  # it dialed us
    target = peer("10.0.0.2", 50002, incoming=True, listen_port=7001, ut_holepunch=9)
    hp, _ = holepunch(initiator, target)
    await hp.on_message(initiator, rendezvous("10.0.0.2", 7001))  # as our PEX listed it
    assert received(initiator) == [HolepunchMessage(HolepunchType.CONNECT, ("10.0.0.2", 7001))]
    assert received(target) == [HolepunchMessage(HolepunchType.CONNECT, ("10.0.0.1", 7000))]
    assert hp.relayed == 1


@pytest.mark.parametrize(("endpoint", "code"), [
    (("10.0.0.9", 7009), HolepunchError.NOT_CONNECTED),
    (("10.0.0.3", 7003), HolepunchError.NO_SUPPORT),
    (("203.0.113.5", OUR_PORT), HolepunchError.NO_SELF),
    (("10.0.0.1", 7000), HolepunchError.NO_SUCH_PEER),  # the initiator itself
])
async def test_the_relay_answers_what_it_cannot_do_with_an_error(endpoint: tuple[str, int],
                                                                 code: HolepunchError) -> None:
    initiator = peer("10.0.0.1", 7000)
    no_support = peer("10.0.0.3", 7003, ut_holepunch=0)
    hp, _ = holepunch(initiator, no_support, external_ip="203.0.113.5")
    await hp.on_message(initiator, rendezvous(*endpoint))
    assert received(initiator) == [HolepunchMessage(HolepunchType.ERROR, endpoint, code)]
    assert received(no_support) == [] and hp.relayed == 0


async def test_a_peer_that_did_not_announce_the_extension_is_ignored() -> None:
    stranger = peer("10.0.0.1", 7000, ut_holepunch=0)
    target = peer("10.0.0.2", 7001)
    hp, punched = holepunch(stranger, target)
    await hp.on_message(stranger, rendezvous("10.0.0.2", 7001))
    await hp.on_message(stranger, encode_holepunch(HolepunchMessage(HolepunchType.CONNECT, ("10.0.0.5", 1))))
    assert stranger.link.sent == [] and target.link.sent == [] and punched == []  # type: ignore[attr-defined]


async def test_connect_dials_over_utp_unless_connected_already_or_without_utp() -> None:
    relay = peer("10.0.0.1", 7000)
    known = peer("10.0.0.2", 50002, incoming=True, listen_port=7001)
    hp, punched = holepunch(relay, known)

    def connect(host: str, port: int) -> bytes:
        return encode_holepunch(HolepunchMessage(HolepunchType.CONNECT, (host, port)))

    await hp.on_message(relay, connect("10.0.0.7", 7007))
    await hp.on_message(relay, connect("10.0.0.2", 7001))  # that peer, by its listen endpoint
    await hp.on_message(relay, connect("10.0.0.2", 50002))  # and by its connection
    assert punched == [("10.0.0.7", 7007)] and hp.punched == 1
    no_utp, none = holepunch(relay, utp=False)
    await no_utp.on_message(relay, connect("10.0.0.7", 7007))
    assert none == []
    busy, dialed = holepunch(relay)
    budget = busy._ctx.config.max_peers_per_torrent
    busy._dialer.connecting.update(("10.1.0.1", port) for port in range(budget))
    await busy.on_message(relay, connect("10.0.0.7", 7007))
    assert dialed == []  # dialing as many as the budget already: a relay cannot add more


async def test_a_failed_dial_of_a_relayed_pex_peer_asks_the_peer_that_listed_it_once() -> None:
    relay = peer("10.0.0.1", 7000)
    hp, _ = holepunch(relay)
    hp.note_pex(relay, PexMessage(added=(("10.0.0.8", 7008), ("10.0.0.9", 7009), ("10.0.0.10", 7010)),
                                  added_flags=(PEX_HOLEPUNCH, PEX_HOLEPUNCH | PEX_REACHABLE, 0)))
    for key in (("10.0.0.8", 7008), ("10.0.0.9", 7009), ("10.0.0.10", 7010), ("10.0.0.8", 7008)):
        await hp.dial_failed(key)
    assert received(relay) == [HolepunchMessage(HolepunchType.RENDEZVOUS, ("10.0.0.8", 7008))]


def test_pex_flags_say_utp_and_holepunch() -> None:
    to = peer("10.0.0.1", 7000)
    utp_peer = peer("10.0.0.2", 7001, transport="utp")
    plain = peer("10.0.0.3", 7002, ut_holepunch=0)
    view = pex_view(to, [to, utp_peer, plain])
    assert view[("10.0.0.2", 7001)] == PEX_REACHABLE | PEX_UTP | PEX_HOLEPUNCH
    assert view[("10.0.0.3", 7002)] == PEX_REACHABLE
