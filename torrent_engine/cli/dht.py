"""``torrent-engine dht ping|get-peers|announce|put|get|genkey``: the DHT, for humans debugging a
network. Each command starts a short-lived read-only node (BEP 43), does one thing, and exits.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ..engine.runtime import run as run_loop
from ..errors import DHTError
from ..formats.bencode import BValue
from ..formats.endpoint import EndpointError, split_host_port
from ..net.dht import bep44
from ..net.dht.node import DhtNode
from . import COMMANDS

T = TypeVar("T")


def parse_host_port(text: str, *, allow_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` (``formats.endpoint``)."""
    try:
        return split_host_port(text, allow_zero=allow_zero)
    except EndpointError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` where port 0 lets the system choose."""
    return parse_host_port(text, allow_zero=True)


def parse_hash(text: str) -> bytes:
    """Parse a 40-hex-digit info-hash or target; ``argparse.ArgumentTypeError`` otherwise."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise argparse.ArgumentTypeError(f"expected 40 hex digits, got {text!r}")
    return raw


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dht`` subcommand and its actions to ``subparsers``."""
    p = subparsers.add_parser(
        "dht",
        help=COMMANDS["dht"],
        description="Talk to a BitTorrent DHT (BEP 5, BEP 44) with a short-lived read-only node.",
    )
    sub = p.add_subparsers(dest="dht_command", metavar="ACTION", required=True)

    def common(sp: argparse.ArgumentParser, bootstrap: bool = True) -> None:
        if bootstrap:
            sp.add_argument(
                "--bootstrap",
                metavar="HOST:PORT",
                type=parse_host_port,
                action="append",
                default=[],
                required=True,
                help="a DHT node to start from (repeatable)",
            )
        sp.add_argument("--bind", metavar="HOST:PORT", type=parse_bind, default=None, help="local address")
        sp.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds (30)")
        sp.add_argument("--query-timeout", type=float, default=2.0, help="seconds to wait for one reply (2)")
        sp.add_argument("--no-bep42", action="store_true", help="accept node ids that violate BEP 42")
        sp.set_defaults(run=run)

    sp = sub.add_parser("ping", help="ping one node and print its id")
    sp.add_argument("node", metavar="HOST:PORT", type=parse_host_port)
    common(sp, bootstrap=False)

    sp = sub.add_parser("get-peers", help="print the peers of an info-hash, one HOST:PORT per line")
    sp.add_argument("info_hash", metavar="INFOHASH", type=parse_hash)
    common(sp)

    sp = sub.add_parser("announce", help="announce a peer port for an info-hash")
    sp.add_argument("info_hash", metavar="INFOHASH", type=parse_hash)
    sp.add_argument("port", type=int)
    sp.add_argument("--seed", action="store_true", help="announce as a seed (BEP 33)")
    common(sp)

    sp = sub.add_parser("put", help="store an item (BEP 44); prints its target")
    sp.add_argument("value", help="the value, stored as a byte string")
    sp.add_argument("--key", type=Path, help="key file (from 'genkey') for a mutable item")
    sp.add_argument("--salt", default="", help="salt of a mutable item")
    sp.add_argument("--seq", type=int, default=None, help="sequence number (default: next one)")
    common(sp)

    sp = sub.add_parser("get", help="fetch an item (BEP 44) and print its value")
    sp.add_argument("target", nargs="?", type=parse_hash, help="target of an immutable item")
    sp.add_argument("--public-key", help="hex public key of a mutable item")
    sp.add_argument("--salt", default="", help="salt of a mutable item")
    common(sp)

    sp = sub.add_parser("genkey", help="write a new Ed25519 key file for mutable items")
    sp.add_argument("keyfile", type=Path)
    sp.set_defaults(run=run)


def load_key(path: Path) -> Ed25519PrivateKey:
    """A key file holds the 32-byte Ed25519 seed as 64 hex digits."""
    try:
        seed = bytes.fromhex(path.read_text().strip())
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise DHTError(f"{path}: not a key file (expected 64 hex digits)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _show(value: BValue) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    return repr(value)


def run(args: argparse.Namespace) -> int:
    """Run one DHT action (``args.dht_command``); return the exit code."""
    action: str = args.dht_command
    if action == "genkey":
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        args.keyfile.write_text(seed.hex() + "\n")
        args.keyfile.chmod(0o600)
        print(bep44.public_key_bytes(key).hex())
        return 0
    if action == "get" and args.target is None and args.public_key is None:
        print("torrent-engine dht get: give a TARGET or --public-key", file=sys.stderr)
        return 2
    return run_loop(_main, args)


async def _with_node(args: argparse.Namespace, job: Callable[[DhtNode], Awaitable[T]]) -> T:
    bind = args.bind or ("0.0.0.0", 0)
    node = DhtNode(
        bind=bind,
        bootstrap=getattr(args, "bootstrap", []),
        enforce_bep42=not args.no_bep42,
        read_only=True,
        query_timeout=args.query_timeout,
    )
    result: list[T] = []
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        await tg.start(node.run)
        try:
            with anyio.fail_after(args.timeout):
                if getattr(args, "bootstrap", None):
                    await node.wait_bootstrapped()
                    if not len(node.table):
                        raise DHTError("no bootstrap node answered")
                result.append(await job(node))
        except (DHTError, TimeoutError) as exc:
            error = exc  # re-raised outside the task group, so it is not wrapped in a group
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return result[0]


async def _main(args: argparse.Namespace) -> int:
    action: str = args.dht_command
    try:
        return await _dispatch(action, args)
    except TimeoutError:
        raise DHTError(f"{action} timed out after {args.timeout:g}s") from None


async def _dispatch(action: str, args: argparse.Namespace) -> int:
    if action == "ping":
        host, port = args.node
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise DHTError(f"cannot resolve {host}: {exc}") from None
        address = (str(infos[0][4][0]), int(infos[0][4][1]))
        if args.bind is None and ":" in address[0]:
            args.bind = ("::", 0)
        node_id = await _with_node(args, lambda n: n.ping(address))
        print(f"{_host_port(host, port)} id={node_id.hex()}")
        return 0
    if action == "get-peers":
        peers = await _with_node(args, lambda n: n.get_peers(args.info_hash))
        for host, port in peers:
            print(_host_port(host, port))
        return 0
    if action == "announce":
        stored = await _with_node(args, lambda n: n.announce_peer(args.info_hash, args.port, seed=args.seed))
        print(f"announced to {stored} nodes")
        return 0 if stored else 1
    if action == "put":
        value = args.value.encode()
        if args.key is None:
            target, stored = await _with_node(args, lambda n: n.put_immutable(value))
            print(f"{target.hex()} stored on {stored} nodes")
            return 0 if stored else 1
        key = load_key(args.key)
        salt = args.salt.encode()
        target, seq, stored = await _with_node(
            args, lambda n: n.put_mutable(key, value, seq=args.seq, salt=salt)
        )
        print(f"{target.hex()} seq={seq} stored on {stored} nodes")
        return 0 if stored else 1
    if action == "get":
        if args.public_key is not None:
            try:
                pub = bytes.fromhex(args.public_key)
            except ValueError:
                pub = b""
            if len(pub) != 32:
                raise DHTError("--public-key must be 64 hex digits")
            salt = args.salt.encode()
            found = await _with_node(args, lambda n: n.get_mutable(pub, salt))
            if found is None:
                print("not found", file=sys.stderr)
                return 1
            print(f"{_show(found[0])}\nseq={found[1]}")
            return 0
        got = await _with_node(args, lambda n: n.get_immutable(args.target))
        if got is None:
            print("not found", file=sys.stderr)
            return 1
        print(_show(got))
        return 0
    raise DHTError(f"unknown dht action {action!r}")
