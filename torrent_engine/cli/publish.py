"""``torrent-engine publish``: put a new version of a BEP 46 mutable torrent in the DHT — the
item ``{"ih": <info-hash>}`` signed with an ed25519 key, at one more than the highest ``seq``
the DHT holds — and print the ``magnet:?xs=urn:btpk:`` link that follows it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ..engine.addtorrent import TorrentFile, read_add_torrent
from ..engine.mutable import publish_version
from ..engine.runtime import run as run_loop
from ..errors import DHTError, TorrentEngineError
from ..formats.magnet import MutableMagnet
from ..net.dht import bep44
from . import COMMANDS
from .dht import _with_node, load_key, parse_bind, parse_host_port


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``publish`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "publish",
        help=COMMANDS["publish"],
        description="Sign a torrent's info-hash with an ed25519 key and put it in the DHT as the "
                    "newest version of a BEP 46 mutable torrent; prints the magnet:?xs=urn:btpk: link.",
    )
    p.add_argument("torrent", metavar="TORRENT|INFOHASH",
                   help="a .torrent file, or the version's info-hash as 40 hex digits")
    p.add_argument("--key", type=Path, required=True,
                   help="key file (64 hex digits, as 'dht genkey' writes): made, mode 0600, if missing")
    p.add_argument("--salt", default="", help="salt (text, at most 64 bytes): several torrents under one key")
    p.add_argument("--seq", type=int, default=None,
                   help="sequence number (default: one more than the highest the DHT holds)")
    p.add_argument("--name", default=None, help="a display name (dn) for the link")
    p.add_argument("--bootstrap", metavar="HOST:PORT", type=parse_host_port, action="append", default=[],
                   required=True, help="a DHT node to start from (repeatable)")
    p.add_argument("--bind", metavar="HOST:PORT", type=parse_bind, default=None, help="local address")
    p.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds (30)")
    p.add_argument("--query-timeout", type=float, default=2.0, help="seconds to wait for one reply (2)")
    p.add_argument("--no-bep42", action="store_true", help="accept node ids that violate BEP 42")
    p.set_defaults(run=run)


def key_file(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``; a new one written there first (mode 0600, never over a file) when
    there is none."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise DHTError(f"{path}: cannot make a key file: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w") as f:
            f.write(seed.hex() + "\n")
        return key
    try:
        return load_key(path)
    except OSError as exc:
        raise DHTError(f"{path}: cannot read the key file: {exc.strerror or exc}") from None


def info_hash_of(text: str) -> bytes:
    """The info-hash ``text`` names: 40 hex digits, or a .torrent file's (``TorrentEngineError``)."""
    if len(text) == 40:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return read_add_torrent(TorrentFile(text)).info_hash


def run(args: argparse.Namespace) -> int:
    """Publish; return the exit code."""
    salt = args.salt.encode()
    if len(salt) > bep44.MAX_SALT_SIZE:
        raise DHTError(f"--salt is {len(salt)} bytes; BEP 44 allows {bep44.MAX_SALT_SIZE}")
    if args.seq is not None and not 0 <= args.seq <= bep44.MAX_SEQ:
        raise DHTError(f"--seq must be 0..{bep44.MAX_SEQ}")
    try:
        info_hash = info_hash_of(args.torrent)
    except TorrentEngineError as exc:  # (it names the file)
        raise DHTError(f"not an info-hash nor a .torrent: {exc}") from None
    key = key_file(args.key)
    return run_loop(_main, args, key, info_hash, salt)


async def _main(args: argparse.Namespace, key: Ed25519PrivateKey, info_hash: bytes, salt: bytes) -> int:
    try:
        seq, stored = await _with_node(
            args, lambda n: publish_version(n, key, info_hash, salt=salt, seq=args.seq))
    except TimeoutError:
        raise DHTError(f"publish timed out after {args.timeout:g}s") from None
    link = MutableMagnet(bep44.public_key_bytes(key), salt, display_name=args.name)
    print(link.to_uri())
    print(f"seq={seq} info_hash={info_hash.hex()} stored on {stored} nodes")
    return 0 if stored else 1
