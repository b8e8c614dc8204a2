"""Rebuild ``examples/sample.torrent``: a small multi-file hybrid (v1 + v2) torrent.

The payload is deterministic (SHA-256 counter stream), so the torrent is byte-identical on
every run: ``python examples/make_sample.py [PAYLOAD_DIR]`` (payload goes to a temp dir unless
given; pass a directory to keep the files for seeding).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

from torrent_engine.storage.create import create_torrent

HERE = Path(__file__).resolve().parent
# path inside the torrent, size in bytes: odd sizes, a nested folder and an empty file
SAMPLE_FILES = [
    ("README.txt", 1_234),
    ("data/numbers.bin", 70_001),
    ("data/empty.dat", 0),
    ("pictures/big.bin", 150_000),
]


def payload(seed: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes (chained SHA-256 of ``seed``), ``size`` long."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def write_payload(root: Path) -> Path:
    """Write the sample's files under ``root/sample`` and return that folder."""
    top = root / "sample"
    for rel, size in SAMPLE_FILES:
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(payload(rel, size))
    return top


def build(root: Path) -> bytes:
    """Build the sample's files under ``root`` and return the bencoded .torrent."""
    torrent = create_torrent(
        write_payload(root),
        version="hybrid",
        piece_length=32 * 1024,
        trackers=[["http://127.0.0.1:6969/announce"]],
        web_seeds=["http://127.0.0.1:8000/"],
        comment="torrent_engine sample: a multi-file hybrid torrent",
        created_by="torrent_engine/0.1",
    )
    return torrent.to_bytes()


def main() -> None:
    """Write the sample .torrent to stdout (its files under argv[1], or a temporary folder)."""
    if len(sys.argv) > 1:
        data = build(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data = build(Path(tmp))
    (HERE / "sample.torrent").write_bytes(data)
    print(f"wrote {HERE / 'sample.torrent'} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
