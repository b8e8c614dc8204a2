"""Gateways of our own making on loopback, faithful to the protocols: a NAT-PMP gateway
(RFC 6886) and a UPnP Internet Gateway Device (SSDP responder, description, SOAP control).
They hand out only documentation addresses as "external" (never contacted)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import anyio
import anyio.abc

NATPMP_EXTERNAL = "203.0.113.7"
UPNP_EXTERNAL = "203.0.113.9"


@dataclass
class FakeNatPmpGateway:
    refuse: int = 0  # a result code to answer every mapping request with (0: grant)
    # (opcode, internal port) -> (external port, lifetime)
    mappings: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    requests: int = 0
    port: int = 0
    epoch: int = 1000
    external: str = NATPMP_EXTERNAL  # the address it says it has (a test may change it)
    most: int = 0  # the longest lease it grants, seconds (0: what is asked)
    mute: int = 0  # an opcode whose mappings it makes without answering (1 UDP, 2 TCP; 0: none)

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with await anyio.create_udp_socket(local_host="127.0.0.1", local_port=0) as sock:
            self.port = int(sock.extra(anyio.abc.SocketAttribute.local_port))
            task_status.started()
            async for data, (host, port) in sock:
                self.requests += 1
                reply = self._answer(data)
                if reply is not None:
                    await sock.sendto(reply, host, port)

    def _answer(self, data: bytes) -> bytes | None:
        if len(data) < 2 or data[0] != 0:
            return struct.pack("!BBHI", 0, 128 + (data[1] if len(data) > 1 else 0), 1, self.epoch)
        op = data[1]
        if op == 0 and len(data) == 2:
            return struct.pack("!BBHI4s", 0, 128, 0, self.epoch, bytes(map(int, self.external.split("."))))
        if op in (1, 2) and len(data) == 12:
            _v, _o, _r, internal, external, lifetime = struct.unpack("!BBHHHI", data)
            if self.refuse:
                return struct.pack("!BBHIHHI", 0, 128 + op, self.refuse, self.epoch, internal, 0, 0)
            if lifetime == 0:
                self.mappings.pop((op, internal), None)
                return struct.pack("!BBHIHHI", 0, 128 + op, 0, self.epoch, internal, 0, 0)
            granted = external or internal
            lifetime = min(lifetime, self.most) if self.most else lifetime
            self.mappings[(op, internal)] = (granted, lifetime)
            if op == self.mute:
                return None
            return struct.pack("!BBHIHHI", 0, 128 + op, 0, self.epoch, internal, granted, lifetime)
        return struct.pack("!BBHI", 0, 128 + op, 5, self.epoch)


DESCRIPTION = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
  <specVersion><major>1</major><minor>0</minor></specVersion>
  <device>
    <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
    <deviceList><device>
      <deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
      <deviceList><device>
        <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
        <serviceList><service>
          <serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
          <serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
          <controlURL>/ctl/IPConn</controlURL>
          <eventSubURL>/evt/IPConn</eventSubURL>
          <SCPDURL>/WANIPCn.xml</SCPDURL>
        </service></serviceList>
      </device></deviceList>
    </device></deviceList>
  </device>
</root>
"""

FAULT = """<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>
<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>{code}</errorCode>
<errorDescription>{text}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>
"""

OK = """<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<u:{action}Response xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">{args}</u:{action}Response>
</s:Body></s:Envelope>
"""


@dataclass
class FakeIgd:
    only_permanent: bool = False  # answer a lease != 0 with fault 725, as some routers do
    mappings: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)  # (proto, ext) -> args
    actions: list[str] = field(default_factory=list)
    ssdp_port: int = 0
    http_port: int = 0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.http_port = int(listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port))
        async with listener, await anyio.create_udp_socket(local_host="127.0.0.1", local_port=0) as ssdp, \
                anyio.create_task_group() as tg:
            self.ssdp_port = int(ssdp.extra(anyio.abc.SocketAttribute.local_port))
            tg.start_soon(listener.serve, self._http)
            task_status.started()
            async for data, (host, port) in ssdp:
                if data.startswith(b"M-SEARCH") and b"ssdp:discover" in data:
                    await ssdp.sendto(
                        ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n"
                         "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
                         f"LOCATION: http://127.0.0.1:{self.http_port}/rootDesc.xml\r\n"
                         "SERVER: fake/1.0 UPnP/1.1 gateway/1.0\r\n\r\n").encode(), host, port)

    async def _http(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1)) if b"ength" in head else 0
            while len(body) < length:
                body += await stream.receive()
            if head.startswith(b"GET /rootDesc.xml"):
                await self._reply(stream, 200, DESCRIPTION)
                return
            action_match = re.search(rb'(?i)soapaction:\s*"[^#]+#(\w+)"', head)
            if not head.startswith(b"POST /ctl/IPConn") or action_match is None:
                await self._reply(stream, 404, "")
                return
            action = action_match.group(1).decode()
            self.actions.append(action)
            args = {m.group(1).decode(): m.group(2).decode()
                    for m in re.finditer(rb"<(New\w+)>([^<]*)</New\w+>", body)}
            status, text = self._act(action, args)
            await self._reply(stream, status, text)

    def _act(self, action: str, args: dict[str, str]) -> tuple[int, str]:
        if action == "GetExternalIPAddress":
            address = f"<NewExternalIPAddress>{UPNP_EXTERNAL}</NewExternalIPAddress>"
            return 200, OK.format(action=action, args=address)
        key = (args.get("NewProtocol", ""), int(args.get("NewExternalPort", "0")))
        if action == "AddPortMapping":
            if self.only_permanent and args.get("NewLeaseDuration") != "0":
                return 500, FAULT.format(code=725, text="OnlyPermanentLeasesSupported")
            self.mappings[key] = args
            return 200, OK.format(action=action, args="")
        if action == "DeletePortMapping":
            if self.mappings.pop(key, None) is None:
                return 500, FAULT.format(code=714, text="NoSuchEntryInArray")
            return 200, OK.format(action=action, args="")
        return 500, FAULT.format(code=401, text="Invalid Action")

    @staticmethod
    async def _reply(stream: anyio.abc.SocketStream, status: int, text: str) -> None:
        body = text.encode()
        reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}[status]
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        await stream.send(head.encode() + body)
