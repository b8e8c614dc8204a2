"""A torrent's data checked on disk without a session (``storage.datacheck``): each file's state
(complete, incomplete, missing, wrong size, unreadable), the pieces that verify, and nothing
written, created or truncated, for v1, v2 and hybrid torrents."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from torrent_engine.errors import StorageError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.datacheck import check_data

PL = 16384
# a file of several pieces with a short tail, one inside a piece, an empty one, one in a folder
FILES = {"a.bin": 3 * PL + 100, "b.txt": 5000, "empty": 0, "sub/c.bin": 2 * PL}


def _share(root: Path) -> Path:
    folder = root / "show"
    for rel, size in FILES.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes((i * 7 + len(rel)) % 251 for i in range(size)))
    return folder


def _tree(root: Path) -> dict[str, tuple[int, float]]:
    """Every entry under ``root``: its size and modification time (files) or -1 (folders)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else -1, st.st_mtime)
    return out


def _states(found: object) -> dict[str, tuple[str, int, int]]:
    return {f.path: (f.state, f.verified, f.pieces) for f in found.files}  # type: ignore[attr-defined]


@pytest.fixture(params=["v1", "v2", "hybrid"])
def made(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Torrent, Path]:
    folder = _share(tmp_path / "data")
    return create_torrent(folder, version=request.param, piece_length=PL), tmp_path / "data"


def test_data_as_made_is_complete(made: tuple[Torrent, Path]) -> None:
    torrent, data = made
    found = anyio.run(check_data, torrent, data)
    assert found.complete
    assert len(found.verified) == torrent.num_pieces and found.verified_bytes == found.total_bytes
    assert {f.path: f.state for f in found.files} == {f"show/{rel}": "complete" for rel in FILES}
    assert all(f.size_on_disk == f.length for f in found.files)  # (pad files are not listed)


def test_each_fault_is_named_by_file_and_nothing_is_written(made: tuple[Torrent, Path]) -> None:
    """A damaged byte, a missing file, a longer file, a folder where a file should be: each file
    says which, with how many of its pieces verified; the data is left as it was (no file created
    for the missing one, none truncated)."""
    torrent, data = made
    show = data / "show"
    damaged = bytearray((show / "a.bin").read_bytes())
    damaged[PL + 5] ^= 0xFF  # the second piece of a.bin
    (show / "a.bin").write_bytes(bytes(damaged))
    (show / "sub" / "c.bin").unlink()
    with open(show / "b.txt", "ab") as f:
        f.write(b"more")
    (show / "empty").unlink()
    (show / "empty").mkdir()
    before = _tree(data)
    found = anyio.run(check_data, torrent, data)
    assert _tree(data) == before
    assert not found.complete
    states = _states(found)
    assert states["show/a.bin"][0] == "incomplete"
    assert states["show/b.txt"][0] == "wrong_size"
    assert states["show/sub/c.bin"] == ("missing", 0, 3 if torrent.is_v1 and not torrent.is_v2 else 2)
    assert states["show/empty"][0] == "unreadable"
    assert next(f for f in found.files if f.path == "show/empty").reason == "a folder is there"
    a = next(f for f in found.files if f.path == "show/a.bin")
    if torrent.is_v2:  # (file-aligned pieces: a.bin's own four, the damaged one failing)
        assert (a.verified, a.pieces) == (3, 4)
    else:  # (v1: a.bin's last piece holds b.txt, whose extra bytes are not read, and the start
        # of the missing c.bin: it fails too, though a.bin's own bytes in it are right)
        assert (a.verified, a.pieces) == (2, 4)
    assert found.verified_bytes < found.total_bytes


def test_a_link_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    torrent = create_torrent(_share(tmp_path / "data"), version="v1", piece_length=PL)
    outside = tmp_path / "elsewhere.bin"
    (tmp_path / "data" / "show" / "b.txt").rename(outside)
    (tmp_path / "data" / "show" / "b.txt").symlink_to(outside)
    found = anyio.run(check_data, torrent, tmp_path / "data")
    b = next(f for f in found.files if f.path == "show/b.txt")
    assert (b.state, b.size_on_disk) == ("unreadable", 5000)
    assert "outside the folder" in b.reason


def test_a_save_path_that_is_not_a_folder_is_an_error(tmp_path: Path) -> None:
    torrent = create_torrent(_share(tmp_path / "data"), version="v1", piece_length=PL)
    with pytest.raises(StorageError, match="not a folder"):
        anyio.run(check_data, torrent, tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_progress_is_told_to_the_end(tmp_path: Path) -> None:
    torrent = create_torrent(_share(tmp_path / "data"), version="hybrid", piece_length=PL)
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        await check_data(torrent, tmp_path / "data", threads=1, progress=lambda c, t: seen.append((c, t)))

    anyio.run(main)
    assert seen[0] == (0, torrent.num_pieces) and seen[-1] == (torrent.num_pieces, torrent.num_pieces)
