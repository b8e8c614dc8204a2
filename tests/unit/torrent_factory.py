"""Builds real .torrent bytes (v1, v2 or hybrid, optional BEP 47 pad files) for storage/verify tests.

Independent of ``torrent_engine.storage.create`` on purpose: the torrents are parsed by
``Torrent.from_bytes`` so the tests exercise the real metainfo model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from torrent_engine.formats.bencode import encode
from torrent_engine.formats.merkle import block_hashes, piece_layer, pieces_root
from torrent_engine.formats.metainfo import Torrent


def _v1_pieces(blob: bytes, piece_length: int) -> bytes:
    return b"".join(
        hashlib.sha1(blob[i : i + piece_length]).digest() for i in range(0, len(blob), piece_length)
    )


def make_torrent(
    files: list[tuple[tuple[str, ...], bytes]],
    piece_length: int = 32768,
    *,
    version: str = "v1",
    pad: bool = False,
    name: str = "t",
    single: bool = False,
) -> Torrent:
    """A torrent over ``files`` (paths relative to the torrent's folder, contents).

    ``pad`` inserts BEP 47 pad files so that every file starts on a piece boundary (always
    done for hybrid torrents); ``single`` makes a single-file v1 torrent of ``files[0]``.
    """
    if version != "v1":  # the v2 file tree is ordered by name; hybrid v1 lists must match it
        files = sorted(files, key=lambda f: [p.encode() for p in f[0]])
        if single:  # a single-file tree names its one file as the torrent is named
            files = [((name,), files[0][1])]
    info: dict[bytes, Any] = {b"name": name.encode(), b"piece length": piece_length}
    top: dict[bytes, Any] = {}
    if version in ("v1", "hybrid"):
        if single:
            blob = files[0][1]
            info[b"length"] = len(blob)
        else:
            entries: list[dict[bytes, Any]] = []
            chunks: list[bytes] = []
            size = 0
            for n, (path, data) in enumerate(files):
                entries.append({b"length": len(data), b"path": [p.encode() for p in path]})
                chunks.append(data)
                size += len(data)
                last = n == len(files) - 1
                if (pad or version == "hybrid") and not last and size % piece_length:
                    gap = piece_length - size % piece_length
                    entries.append({b"attr": b"p", b"length": gap, b"path": [b".pad", str(gap).encode()]})
                    chunks.append(bytes(gap))
                    size += gap
            info[b"files"] = entries
            blob = b"".join(chunks)
        info[b"pieces"] = _v1_pieces(blob, piece_length)
    if version in ("v2", "hybrid"):
        info[b"meta version"] = 2
        tree: dict[bytes, Any] = {}
        layers: dict[bytes, bytes] = {}
        for path, data in files:
            leaf: dict[bytes, Any] = {b"length": len(data)}
            if data:
                leaves = block_hashes(data)
                root = pieces_root(leaves, piece_length)
                leaf[b"pieces root"] = root
                if len(data) > piece_length:
                    layers[root] = b"".join(piece_layer(leaves, piece_length))
            node = tree
            for p in path:
                node = node.setdefault(p.encode(), {})
            node[b""] = leaf
        info[b"file tree"] = tree
        if layers:
            top[b"piece layers"] = layers
    top[b"info"] = info
    return Torrent.from_bytes(encode(top))


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic non-repeating bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


@dataclass(frozen=True)
class LayoutFile:
    path: tuple[str, ...]
    length: int
    offset: int
    pad: bool = False
    attr: str = ""


@dataclass(frozen=True)
class Layout:
    """A bare piece space (satisfies ``layout.TorrentLayout``) for picker tests and benchmarks."""

    piece_length: int
    files: tuple[LayoutFile, ...]

    @cached_property
    def total_length(self) -> int:
        return max((f.offset + f.length for f in self.files), default=0)

    @cached_property
    def num_pieces(self) -> int:
        return -(-self.total_length // self.piece_length)

    def piece_size(self, index: int) -> int:
        return min(self.piece_length, self.total_length - index * self.piece_length)


def layout(piece_length: int, *lengths: int, pads: dict[int, int] | None = None) -> Layout:
    """Files of ``lengths`` back to back; ``pads`` inserts a pad file of that size after file i."""
    files: list[LayoutFile] = []
    offset = 0
    for i, n in enumerate(lengths):
        files.append(LayoutFile(("t", f"f{i}"), n, offset))
        offset += n
        if pads and i in pads:
            files.append(LayoutFile(("t", ".pad", str(i)), pads[i], offset, pad=True, attr="p"))
            offset += pads[i]
    return Layout(piece_length, tuple(files))
