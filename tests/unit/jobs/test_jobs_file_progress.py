"""Each file's verified bytes, as job snapshots show them: counted per file from the pieces had."""

from __future__ import annotations

import random

import pytest

from tests.unit.torrent_factory import make_torrent
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.jobs.snapshot import files_done


@pytest.mark.parametrize("pad", [False, True])
def test_files_done_is_each_files_share_of_the_pieces_had(pad: bool) -> None:
    rng = random.Random(11)
    piece = 16384
    sizes = [0, 1, piece - 1, piece, piece + 1, 5 * piece + 77, 3, 2 * piece]
    torrent = make_torrent([((f"f{i}",), rng.randbytes(n)) for i, n in enumerate(sizes)], piece, pad=pad)
    for trial in range(40):
        n = torrent.num_pieces
        have = Bitfield(n, (p for p in range(n) if rng.random() < trial / 40))
        want = []
        for f in torrent.files:  # (every byte of the file whose piece is had)
            want.append(sum(1 for b in range(f.offset, f.offset + f.length) if b // piece in have))
        assert files_done(torrent, have) == want
    assert files_done(torrent, Bitfield.full(torrent.num_pieces)) == [f.length for f in torrent.files]
