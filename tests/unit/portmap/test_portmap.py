"""Port mapping: NAT-PMP and UPnP IGD messages, and SharedResources mapping its ports on
gateways of our own making (loopback only)."""

from __future__ import annotations

import errno
import logging
import socket
import struct
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.unit.portmap.portmap_fakes import NATPMP_EXTERNAL, UPNP_EXTERNAL, FakeIgd, FakeNatPmpGateway
from torrent_engine.config import Config
from torrent_engine.engine.shared import SharedResources
from torrent_engine.errors import PortMapError
from torrent_engine.net.dht.bep42 import is_valid_node_id
from torrent_engine.net.portmap import natpmp, service, upnp

# -- NAT-PMP messages ---------------------------------------------------------------------------


def test_natpmp_requests_are_rfc6886_bytes() -> None:
    assert natpmp.external_address_request() == b"\x00\x00"
    assert natpmp.map_request("tcp", 6881, 6881, 7200) == struct.pack("!BBHHHI", 0, 2, 0, 6881, 6881, 7200)
    assert natpmp.map_request("udp", 6881, 0, 0)[:2] == b"\x00\x01"
    with pytest.raises(PortMapError, match="internal port"):
        natpmp.map_request("tcp", 0, 1, 1)
    with pytest.raises(PortMapError, match="lifetime"):
        natpmp.map_request("tcp", 1, 1, 2**32)


def test_natpmp_replies_parse_and_refusals_are_typed() -> None:
    address = natpmp.parse_reply(struct.pack("!BBHI4s", 0, 128, 0, 5, bytes([198, 51, 100, 1])))
    assert address == natpmp.ExternalAddress(epoch=5, address="198.51.100.1")
    mapping = natpmp.parse_reply(struct.pack("!BBHIHHI", 0, 130, 0, 5, 6881, 40000, 3600))
    assert mapping == natpmp.Mapping(epoch=5, protocol="tcp", internal_port=6881, external_port=40000,
                                     lifetime=3600)
    with pytest.raises(PortMapError, match="not authorized") as refused:
        natpmp.parse_reply(struct.pack("!BBHIHHI", 0, 129, 2, 5, 6881, 0, 0))
    assert refused.value.code == 2
    for bad, message in [(b"\x00\x80", "too short"), (struct.pack("!BBHI", 1, 128, 0, 0), "version"),
                         (struct.pack("!BBHI", 0, 7, 0, 0), "opcode"),
                         (struct.pack("!BBHI", 0, 128, 0, 0), "too short"),
                         (struct.pack("!BBHIHHI", 0, 130, 0, 5, 6881, 0, 60), "external port 0")]:
        with pytest.raises(PortMapError, match=message):
            natpmp.parse_reply(bad)


# -- UPnP messages ------------------------------------------------------------------------------

SERVICE = upnp.IgdService(service_type="urn:schemas-upnp-org:service:WANIPConnection:1",
                          control_url="http://127.0.0.1:5000/ctl")


def test_ssdp_search_and_reply() -> None:
    request = upnp.search_request()
    assert request.startswith(b"M-SEARCH * HTTP/1.1\r\n") and b'MAN: "ssdp:discover"' in request
    assert b"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1" in request
    reply = upnp.parse_search_reply(
        b"HTTP/1.1 200 OK\r\nLocation: http://10.0.0.1:5000/d.xml\r\nST: x\r\n\r\n")
    assert reply.location == "http://10.0.0.1:5000/d.xml" and reply.search_target == "x"
    for bad in (b"NOTIFY * HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n", b"\xff" * 10, b"H" * 5000):
        with pytest.raises(PortMapError):
            upnp.parse_search_reply(bad)


def test_description_finds_the_connection_service() -> None:
    from tests.unit.portmap.portmap_fakes import DESCRIPTION

    found = upnp.parse_description(DESCRIPTION.encode(), "http://10.0.0.1:5000/rootDesc.xml")
    assert found == upnp.IgdService("urn:schemas-upnp-org:service:WANIPConnection:1",
                                    "http://10.0.0.1:5000/ctl/IPConn")
    with_base = DESCRIPTION.replace("<specVersion>", "<URLBase>http://10.0.0.2:80/</URLBase><specVersion>")
    assert upnp.parse_description(with_base.encode(), "http://x/").control_url == "http://10.0.0.2:80/ctl/IPConn"
    ppp = DESCRIPTION.replace("WANIPConnection:1", "WANPPPConnection:1")
    assert upnp.parse_description(ppp.encode(), "http://10.0.0.1/").service_type.endswith("WANPPPConnection:1")
    with pytest.raises(PortMapError, match="no WANIPConnection"):
        upnp.parse_description(DESCRIPTION.replace("WANIPConnection", "Other").encode(), "http://x/")
    with pytest.raises(PortMapError, match="DTD"):
        upnp.parse_description(b'<!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>', "http://x/")
    with pytest.raises(PortMapError, match="not XML"):
        upnp.parse_description(b"<root><unclosed>", "http://x/")


def test_soap_requests_and_replies() -> None:
    request = upnp.add_port_mapping(SERVICE, "tcp", 6881, "192.168.1.5", 6881, 3600, "a <b> & c")
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /ctl HTTP/1.1") and b"Host: 127.0.0.1:5000" in head
    assert b'SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"' in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"<NewProtocol>TCP</NewProtocol>" in body and b"a &lt;b&gt; &amp; c" in body
    with pytest.raises(ValueError):
        upnp.add_port_mapping(SERVICE, "tcp", 1, "not-an-address", 1, 0, "")
    from tests.unit.portmap.portmap_fakes import FAULT, OK

    ok = OK.format(action="GetExternalIPAddress", args="<NewExternalIPAddress>1.2.3.4</NewExternalIPAddress>")
    answer = upnp.parse_soap_reply(200, ok.encode(), "GetExternalIPAddress")
    assert answer == {"NewExternalIPAddress": "1.2.3.4"}
    conflict = FAULT.format(code=718, text="ConflictInMappingEntry").encode()
    with pytest.raises(PortMapError, match="ConflictInMappingEntry") as fault:
        upnp.parse_soap_reply(500, conflict, "AddPortMapping")
    assert fault.value.code == 718
    with pytest.raises(PortMapError, match="HTTP status 500"):
        upnp.parse_soap_reply(500, b"", "AddPortMapping")


# -- the service, on gateways of our own --------------------------------------------------------



def _config(**kw: Any) -> Config:
    kw.setdefault("dht_enabled", False)
    kw.setdefault("dht_bootstrap", ())
    return Config(listen_host="127.0.0.1", listen_port=0, port_mapping=True, lsd_enabled=False, **kw)


@pytest.mark.anyio
async def test_natpmp_maps_tcp_and_dht_ports_and_feeds_the_dht_id() -> None:
    gateway = FakeNatPmpGateway()
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.serve)
        config = _config(natpmp_gateway=("127.0.0.1", gateway.port), dht_enabled=True, dht_port=0)
        async with SharedResources(config) as shared:
            await shared.acquire()
            assert shared.port_mapper is not None
            with anyio.fail_after(10):
                await shared.port_mapper.wait_mapped()
            tcp, udp = shared.listen_port, shared.dht.port if shared.dht else 0
            assert gateway.mappings == {(2, tcp): (tcp, 7200), (1, udp): (udp, 7200)}
            assert shared.port_mapper.method == "natpmp"
            assert shared.external_ip == NATPMP_EXTERNAL
            assert shared.dht is not None and shared.dht.external_ip == NATPMP_EXTERNAL
            assert is_valid_node_id(shared.dht.node_id, NATPMP_EXTERNAL)  # BEP 42
            await shared.release()
            assert gateway.mappings == {}  # removed when the services stop
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_falls_back_to_upnp_and_removes_its_mappings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "NATPMP_TRIES", 1)
    igd = FakeIgd()
    async with anyio.create_task_group() as tg:
        await tg.start(igd.serve)
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as silent:  # no NAT-PMP there
            silent_port = int(silent.extra(anyio.abc.SocketAttribute.local_port))
            config = _config(natpmp_gateway=("127.0.0.1", silent_port),
                             upnp_ssdp_address=("127.0.0.1", igd.ssdp_port))
            async with SharedResources(config) as shared:
                await shared.acquire()
                assert shared.port_mapper is not None
                with anyio.fail_after(15):
                    await shared.port_mapper.wait_mapped()
                port = shared.listen_port
                assert list(igd.mappings) == [("TCP", port), ("UDP", port)]  # peers over TCP and uTP
                entry = igd.mappings[("TCP", port)]
                assert entry["NewInternalClient"] == "127.0.0.1" and entry["NewLeaseDuration"] == "3600"
                assert shared.external_ip == UPNP_EXTERNAL and shared.port_mapper.method == "upnp"
                await shared.release()
                assert igd.mappings == {} and igd.actions[-1] == "DeletePortMapping"
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_mapping_whose_answer_a_stop_cut_short_is_removed_too() -> None:
    gateway = FakeNatPmpGateway(mute=1)  # (it maps UDP, and its answers are lost)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.serve)
        mapper = service.PortMapper(natpmp_gateway=("127.0.0.1", gateway.port))
        async with anyio.create_task_group() as owner:
            await owner.start(mapper.run, [("tcp", 40001), ("udp", 40002)])
            with anyio.fail_after(10):
                while (1, 40002) not in gateway.mappings:
                    await anyio.sleep(0.01)
            assert [(m.protocol, m.internal_port) for m in mapper.mappings] == [("tcp", 40001)]
            owner.cancel_scope.cancel()  # (the services stop while the UDP answer is awaited)
        assert gateway.mappings == {}  # (kept for its lease before: 2 hours)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_gateway_that_grants_only_permanent_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "NATPMP_TRIES", 1)
    igd = FakeIgd(only_permanent=True)
    async with anyio.create_task_group() as tg:
        await tg.start(igd.serve)
        mapper = service.PortMapper(natpmp_gateway=None, ssdp_address=("127.0.0.1", igd.ssdp_port))
        monkeypatch.setattr(service, "default_gateway", lambda: None)
        async with anyio.create_task_group() as owner:
            await owner.start(mapper.run, [("tcp", 40001), ("udp", 40002)])
            with anyio.fail_after(15):
                await mapper.wait_mapped()
            assert {m.lifetime for m in mapper.mappings} == {0}
            assert set(igd.mappings) == {("TCP", 40001), ("UDP", 40002)}
            assert igd.mappings[("UDP", 40002)]["NewLeaseDuration"] == "0"
            owner.cancel_scope.cancel()
        assert igd.mappings == {}  # permanent mappings are removed when the mapper stops
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_failures_are_logged_once_and_never_fatal(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(service, "NATPMP_TRIES", 1)
    monkeypatch.setattr(service, "SSDP_WAIT", 0.3)
    monkeypatch.setattr(service, "RETRY_AFTER_FAILURE", 0.05)
    gateway = FakeNatPmpGateway(refuse=2)
    caplog.set_level(logging.WARNING, logger="torrent_engine.net.portmap.service")
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.serve)
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as silent:  # no SSDP answer
            silent_port = int(silent.extra(anyio.abc.SocketAttribute.local_port))
            config = _config(natpmp_gateway=("127.0.0.1", gateway.port),
                             upnp_ssdp_address=("127.0.0.1", silent_port))
            async with SharedResources(config) as shared:
                await shared.acquire()  # the services start although nothing can be mapped
                assert shared.listen_port > 0 and shared.port_mapper is not None
                with anyio.fail_after(10):
                    await shared.port_mapper.wait_mapped()
                    while gateway.requests < 4:  # it keeps asking, on its retry schedule
                        await anyio.sleep(0.05)
                await shared.release()
            assert shared.port_mapper is None and not shared.running
        tg.cancel_scope.cancel()
    failures = [r for r in caplog.records if "port mapping failed" in r.getMessage()]
    assert len(failures) == 1
    assert "not authorized" in failures[0].getMessage() and "no UPnP gateway" in failures[0].getMessage()


@pytest.mark.anyio
async def test_on_by_default_and_off_when_told() -> None:
    gateway = FakeNatPmpGateway()
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.serve)
        for mapping in (None, False):
            kw: dict[str, Any] = {} if mapping is None else {"port_mapping": mapping}
            config = Config(listen_host="127.0.0.1", natpmp_gateway=("127.0.0.1", gateway.port),
                            dht_enabled=False, lsd_enabled=False, **kw)
            async with SharedResources(config) as shared:
                await shared.acquire()
                if mapping is None:  # the default: mapped
                    assert shared.port_mapper is not None
                    with anyio.fail_after(10):
                        await shared.port_mapper.wait_mapped()
                    assert (2, shared.listen_port) in gateway.mappings
                else:
                    assert shared.port_mapper is None
                    await anyio.sleep(0.2)
                await shared.release()
            if mapping is None:
                assert gateway.mappings == {}
                asked = gateway.requests
        assert gateway.requests == asked  # nothing more with port_mapping=False, lsd_enabled=False
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_gateway_that_cannot_be_reached_is_a_logged_failure(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Socket errors (no route, ICMP port unreachable) end a round like any refusal: logged,
    retried later, never the end of the services."""
    monkeypatch.setattr(service, "NATPMP_TRIES", 2)
    monkeypatch.setattr(service, "SSDP_WAIT", 0.3)
    caplog.set_level(logging.WARNING, logger="torrent_engine.net.portmap.service")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]  # nobody listens there once it is closed
    config = _config(natpmp_gateway=("127.0.0.1", closed_port), upnp_ssdp_address=("127.0.0.1", closed_port))
    real_sendto = anyio.abc.UDPSocket.sendto

    async def unreachable(self: Any, data: bytes, host: str, port: int) -> None:
        if port == closed_port:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        await real_sendto(self, data, host, port)

    monkeypatch.setattr(anyio.abc.UDPSocket, "sendto", unreachable)
    async with SharedResources(config) as shared:
        await shared.acquire()
        assert shared.port_mapper is not None
        with anyio.fail_after(10):
            await shared.port_mapper.wait_mapped()
        assert shared.running and shared.port_mapper.mappings == []
        await shared.release()
    failures = [r.getMessage() for r in caplog.records if "port mapping failed" in r.getMessage()]
    assert len(failures) == 1 and "cannot send the SSDP search" in failures[0], failures
    assert "NAT-PMP" in failures[0]
