"""Property tests of FileMap and Storage over random layouts with pad and empty files.

FileMap: slices cover exactly the requested range, in order, inside their files, with pad
ranges marked. Storage: writing every piece in random order and in random chunks, then reading
random ranges, gives back the model's bytes; files on disk equal their contents; pad files are
never created.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.torrent_factory import Layout, LayoutFile
from torrent_engine.formats.layout import FileMap
from torrent_engine.storage import Storage


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    piece_length = draw(st.sampled_from([16, 64, 256, 1024]))
    files: list[LayoutFile] = []
    offset = 0
    for i in range(draw(st.integers(1, 6))):
        n = draw(st.integers(0, 3 * piece_length))
        files.append(LayoutFile(("t", f"f{i}"), n, offset))
        offset += n
        if draw(st.booleans()) and offset % piece_length:
            gap = piece_length - offset % piece_length
            files.append(LayoutFile(("t", ".pad", str(i)), gap, offset, pad=True, attr="p"))
            offset += gap
    if offset == 0:
        files.append(LayoutFile(("t", "last"), 1, 0))
    return Layout(piece_length, tuple(files))


def model(lay: Layout, seed: int) -> bytes:
    rng = random.Random(seed)
    blob = bytearray()
    for f in lay.files:
        blob += bytes(f.length) if f.pad else rng.randbytes(f.length)
    return bytes(blob)


@settings(max_examples=200, deadline=None)
@given(layouts(), st.data())
def test_file_map_slices_cover_the_range(lay: Layout, data: st.DataObject) -> None:
    fm = FileMap(lay)
    index = data.draw(st.integers(0, lay.num_pieces - 1))
    size = lay.piece_size(index)
    begin = data.draw(st.integers(0, size))
    length = data.draw(st.integers(0, size - begin))
    slices = fm.slices(index, begin, length)
    assert sum(s.length for s in slices) == length
    pos = index * lay.piece_length + begin
    for s in slices:
        assert s.length > 0
        f = lay.files[s.file_index]
        assert f.offset + s.file_offset == pos  # contiguous, in order
        assert s.file_offset + s.length <= f.length
        assert s.pad == f.pad
        pos += s.length


@settings(max_examples=60, deadline=None)
@given(layouts(), st.integers(0, 2**16), st.data())
def test_storage_round_trip(lay: Layout, seed: int, data: st.DataObject) -> None:
    blob = model(lay, seed)
    pl = lay.piece_length
    chunks: list[tuple[int, int, bytes]] = []
    for i in range(lay.num_pieces):
        size = lay.piece_size(i)
        step = data.draw(st.integers(1, size), label="chunk")
        for begin in range(0, size, step):
            chunks.append((i, begin, blob[i * pl + begin : i * pl + min(size, begin + step)]))
    random.Random(seed).shuffle(chunks)
    reads = [
        (i, b, data.draw(st.integers(0, lay.piece_size(i) - b)))
        for i in data.draw(st.lists(st.integers(0, lay.num_pieces - 1), max_size=5))
        for b in [data.draw(st.integers(0, lay.piece_size(i)))]
    ]

    async def run(root: Path) -> None:
        st_ = Storage(lay, root, max_open_files=2)
        for i, begin, chunk in chunks:
            await st_.write_block(i, begin, chunk)
        for i, begin, length in reads:
            assert await st_.read_block(i, begin, length) == blob[i * pl + begin : i * pl + begin + length]
        for i in range(lay.num_pieces):
            assert await st_.read_piece(i) == blob[i * pl : i * pl + lay.piece_size(i)]
        await st_.close()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        anyio.run(run, root)
        for f in lay.files:
            path = root.joinpath(*f.path)
            if f.pad:
                assert not path.exists()
            else:
                assert path.read_bytes() == blob[f.offset : f.offset + f.length]
        assert not (root / "t" / ".pad").exists()
