"""BEP 46 over a running DHT: the newest signed version of a mutable torrent, and the put of a
new one. The values are read and built by ``net/dht/bep46.py``; this is the shell that asks."""

from __future__ import annotations

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..formats.magnet import MutableMagnet
from ..net.dht import bep44, bep46, items
from ..net.dht.bep46 import MutableTorrentError, TorrentVersion
from ..net.dht.node import DhtNode
from .shared import SharedResources

__all__ = ["RESOLVE_TIMEOUT", "latest_version", "publish_version", "resolve_with"]

RESOLVE_TIMEOUT = 60.0  # seconds for the bootstrap and one lookup of a mutable item


async def latest_version(node: DhtNode, magnet: MutableMagnet, *, keep_alive: bool = False) -> TorrentVersion:
    """The version the highest-``seq`` correctly signed item of ``magnet``'s key and salt names
    (items with a bad signature are never taken: ``items.get_mutable_item`` verifies each one).
    ``keep_alive``: that item is put again, as signed, to the nodes closest to its target (BEP 46:
    a consumer keeps the items it follows alive). ``MutableTorrentError`` when no node holds one,
    or its value names no info-hash."""
    item = await items.get_mutable_item(node, magnet.public_key, magnet.salt)
    if item is None or item.seq is None:
        target = bep44.mutable_target(magnet.public_key, magnet.salt).hex()
        raise MutableTorrentError(f"no DHT node holds the item of key {magnet.public_key.hex()} "
                                  f"(target {target})")
    version = TorrentVersion(bep46.info_hash_of(item.value), item.seq)
    if keep_alive:
        await items.put_signed(node, item)
    return version


async def resolve_with(shared: SharedResources, magnet: MutableMagnet, *,
                       timeout: float = RESOLVE_TIMEOUT, keep_alive: bool = False) -> TorrentVersion:
    """``latest_version`` over ``shared``'s DHT node, started for the lookup if no torrent holds
    it (``MutableTorrentError`` when the DHT is off or nothing answers within ``timeout``)."""
    await shared.acquire()
    try:
        node = shared.dht
        if node is None:
            raise MutableTorrentError("the DHT is off (Config.dht_enabled): a btpk link cannot be resolved")
        try:
            with anyio.fail_after(timeout):
                await node.wait_bootstrapped()
                return await latest_version(node, magnet, keep_alive=keep_alive)
        except TimeoutError:
            raise MutableTorrentError(
                f"no answer for key {magnet.public_key.hex()} within {timeout:g}s") from None
    finally:
        await shared.release()


async def publish_version(node: DhtNode, private_key: Ed25519PrivateKey, info_hash: bytes, *,
                          salt: bytes = b"", seq: int | None = None) -> tuple[int, int]:
    """Put ``{"ih": info_hash}`` signed by ``private_key`` under ``salt``, at ``seq`` (default:
    one more than the highest seen). Returns (seq used, number of nodes that stored it)."""
    _, used, stored = await node.put_mutable(private_key, bep46.torrent_value(info_hash), seq=seq, salt=salt)
    return used, stored
