"""The indexed folders of v2 deduplication (jobs/disk/folder_index.py's FolderIndex): each file hashed
once per size and mtime, the cache kept across runs, links and temporaries passed over, the walk
bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from torrent_engine.jobs.disk import folder_index
from torrent_engine.jobs.disk.folder_index import FolderIndex
from torrent_engine.storage.dedup import file_pieces_root


def test_files_are_hashed_once_per_size_and_mtime_and_the_cache_outlives_the_index(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    (lib / "a.bin").write_bytes(b"a" * 40_000)
    (lib / "sub" / "b.bin").write_bytes(b"b" * 20_000)
    (lib / "empty").write_bytes(b"")
    (lib / ".b.bin.1234.dedup").write_bytes(b"half")  # (a file being placed)
    os.symlink(lib / "a.bin", lib / "link.bin")
    cache = tmp_path / "cache.json"
    index = FolderIndex(cache)
    assert index.scan([str(lib)]) == 2 and index.hashed == 2
    root = file_pieces_root(lib / "a.bin")
    assert [k.path for k in index.known(root)] == [str(lib / "a.bin")]
    assert index.known(root)[0].length == 40_000 and index.known(root)[0].origin == "folder"
    assert index.unchanged(str(lib / "a.bin"))
    index.scan([str(lib)])
    assert index.hashed == 2  # nothing changed: nothing hashed
    again = FolderIndex(cache)
    again.load()
    assert [k.path for k in again.known(root)] == [str(lib / "a.bin")]
    (lib / "a.bin").write_bytes(b"c" * 40_000)
    os.utime(lib / "a.bin", ns=(1, 1))
    assert not again.unchanged(str(lib / "a.bin"))
    again.scan([str(lib)])
    assert again.hashed == 1 and again.known(root) == []
    assert [k.path for k in again.known(file_pieces_root(lib / "a.bin"))] == [str(lib / "a.bin")]


def test_a_walk_stops_at_its_bound(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.bin").write_bytes(bytes([i]) * 100)
    index = FolderIndex(None)
    assert index.scan([str(tmp_path)], max_files=3) == 3 and index.truncated


def test_an_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    index = FolderIndex(cache)
    index.load()
    assert index.files == {}


def test_the_index_text_is_what_json_dumps_writes() -> None:
    """The index and the folders' cache are written as ``json.dumps`` would write them, a large
    mapping encoded a chunk at a time: the same text, in the same order, whatever the chunks."""
    import json

    from torrent_engine.jobs.disk.folder_index import JSON_CHUNK, json_text

    for n in (0, 1, JSON_CHUNK, JSON_CHUNK + 1, 2 * JSON_CHUNK + 7):
        jobs = {f"j{i:05d}\u00e9\"\\": [[i, f"{i:064x}", 262144 + i]] for i in range(n)}
        data: dict[str, object] = {"version": 1, "jobs": jobs, "note": {"k": [1.5, None, True]}}
        text = json_text(data)
        assert text == json.dumps(data, separators=(",", ":"))
        assert json.loads(text) == data


def test_a_file_changed_since_hashed_is_known_by_its_size_not_by_its_old_root(tmp_path: Path) -> None:
    """Between a walk and the end of its hashing, a file changed since its last hash is as the
    walk saw it (its length is its own: a v1 look may try it) but not as hashed (the pieces
    root known is of its old bytes: not used until hashed again)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    path = lib / "a.bin"
    path.write_bytes(b"a" * 40_000)
    index = FolderIndex(None)
    index.scan([str(lib)])
    old = file_pieces_root(path)
    path.write_bytes(b"b" * 40_000)
    os.utime(path, ns=(1, 1))
    seen: list[tuple[bool, bool, list[str]]] = []
    index.scan([str(lib)], sized=lambda: seen.append(
        (index.unchanged(str(path)), index.as_walked(str(path)), [k.path for k in index.known(old)])))
    assert seen == [(False, True, [str(path)])]  # (the old root still indexed, not vouched for)
    assert index.unchanged(str(path)) and index.known(old) == []


def test_the_kernels_file_systems_are_not_walked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (a folder of "/" held /proc, whose kcore says it is 128 TiB long: its hashing never ended)
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        "27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        f"30 27 0:40 / {tmp_path}/lib/my\\040sys rw - sysfs sysfs rw\n"
        "31 27 0:41 / /dev/shm rw - tmpfs tmpfs rw\n"
        "not a line of mountinfo\n")
    assert folder_index.pseudo_mounts(str(info)) == {"/proc", f"{tmp_path}/lib/my sys"}
    assert folder_index.pseudo_mounts(str(tmp_path / "none")) == frozenset()
    lib = tmp_path / "lib"
    (lib / "my sys").mkdir(parents=True)
    (lib / "my sys" / "kcore").write_bytes(b"k" * 5_000)
    (lib / "data.bin").write_bytes(b"d" * 5_000)
    monkeypatch.setattr(folder_index, "MOUNTINFO", str(info))
    index = FolderIndex(None)
    assert index.scan([str(lib)]) == 1 and list(index.sizes) == [str(lib / "data.bin")]
    assert index.scan([str(lib / "my sys"), str(lib)]) == 1  # (one of them itself: said so)
    assert index.errors == {str(lib / "my sys"): "a file system of the kernel's, not walked"}
