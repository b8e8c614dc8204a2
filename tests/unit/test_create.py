"""create: torrents from files and folders, checked against hashes computed independently here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from torrent_engine.errors import MetainfoError
from torrent_engine.formats.merkle import BLOCK_SIZE
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import auto_piece_length, create_torrent, create_torrent_async

PL = 16384


def blob(seed: str, n: int) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def naive_root(data: bytes, min_leaves: int = 1) -> bytes:
    leaves = [hashlib.sha256(data[i : i + BLOCK_SIZE]).digest() for i in range(0, len(data), BLOCK_SIZE)]
    n = 1
    while n < max(len(leaves), min_leaves):
        n *= 2
    layer = leaves + [bytes(32)] * (n - len(leaves))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]


FILES = {"b.bin": 40000, "a.txt": 100, "sub/c.dat": 3 * PL, "sub/empty": 0, "z": 7}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    for rel, size in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob(rel, size))
    return root


ORDER = ["a.txt", "b.bin", "sub/c.dat", "sub/empty", "z"]  # BEP 52 file-tree order


def test_single_file_v1_piece_hashes(tmp_path: Path) -> None:
    p = tmp_path / "one.bin"
    data = blob("x", 5 * PL + 123)
    p.write_bytes(data)
    t = create_torrent(p, version="v1", piece_length=PL)
    assert t.name == "one.bin" and t.is_v1 and not t.is_v2
    assert t.files[0].path == ("one.bin",) and t.files[0].length == len(data)
    assert t.piece_hashes == tuple(hashlib.sha1(data[i : i + PL]).digest() for i in range(0, len(data), PL))
    assert b"meta version" not in t.info_bytes


def test_single_file_v2_root_and_layer(tmp_path: Path) -> None:
    p = tmp_path / "one.bin"
    data = blob("y", 5 * PL + 123)
    p.write_bytes(data)
    t = create_torrent(p, version="v2", piece_length=2 * PL)
    f = t.files[0]
    assert t.is_v2 and not t.is_v1 and f.path == ("one.bin",)
    assert f.pieces_root == naive_root(data)
    for i in range(t.num_pieces):
        chunk = data[i * 2 * PL : (i + 1) * 2 * PL]
        assert t.expected_piece_hash_v2(i) == naive_root(chunk, min_leaves=2)


def test_folder_v1_concatenates_in_tree_order(folder: Path) -> None:
    t = create_torrent(folder, version="v1", piece_length=PL)
    assert [f.path for f in t.files] == [("share", *r.split("/")) for r in ORDER]
    whole = b"".join(blob(r, FILES[r]) for r in ORDER)
    assert t.piece_hashes == tuple(hashlib.sha1(whole[i : i + PL]).digest() for i in range(0, len(whole), PL))
    assert not any(f.pad for f in t.files)


def test_folder_hybrid_pads_every_file_to_a_piece_boundary(folder: Path) -> None:
    t = create_torrent(folder, version="hybrid", piece_length=PL)
    assert t.is_hybrid
    real = [f for f in t.files if not f.pad]
    assert ["/".join(f.path[1:]) for f in real] == ORDER
    assert all(f.offset % PL == 0 for f in real)
    pads = [f for f in t.files if f.pad]
    assert all(f.path[1] == ".pad" and f.path[2] == str(f.length) and f.attr == "p" for f in pads)
    # the v1 piece space is each file followed by zeros up to the boundary (the last file unpadded)
    space = bytearray()
    for r in ORDER:
        space += blob(r, FILES[r])
        if r != ORDER[-1]:
            space += bytes(-len(space) % PL)
    assert t.total_length == len(space)
    assert t.piece_hashes == tuple(hashlib.sha1(space[i : i + PL]).digest() for i in range(0, len(space), PL))
    for f in real:
        data = blob("/".join(f.path[1:]), f.length)
        assert f.pieces_root == (naive_root(data) if data else None)


def test_v2_and_hybrid_of_the_same_folder_share_roots_and_v2_piece_hashes(folder: Path) -> None:
    v2 = create_torrent(folder, version="v2", piece_length=PL)
    hy = create_torrent(folder, version="hybrid", piece_length=PL)
    assert [f.pieces_root for f in v2.files] == [f.pieces_root for f in hy.files if not f.pad]
    assert v2.num_pieces == hy.num_pieces
    assert [v2.expected_piece_hash_v2(i) for i in range(v2.num_pieces)] == [
        hy.expected_piece_hash_v2(i) for i in range(hy.num_pieces)
    ]
    assert dict(v2.piece_layers) == dict(hy.piece_layers)


def test_metadata_fields(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 1000)
    t = create_torrent(
        p,
        trackers=["http://a/1", ["udp://b/1", "udp://b/2"]],
        web_seeds=["http://s/", "http://s/"],
        private=True,
        comment="hi",
        created_by="me",
        creation_date=1234,
    )
    assert t.trackers == (("http://a/1",), ("udp://b/1", "udp://b/2"))
    assert t.web_seeds == ("http://s/",)
    assert t.private and t.comment == "hi" and t.created_by == "me" and t.creation_date == 1234
    assert Torrent.from_bytes(t.to_bytes()) == t
    bare = create_torrent(p, created_by=None)
    assert bare.creation_date is None and bare.created_by is None and not bare.private


def test_threads_and_chunking_do_not_change_the_result(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torrent_engine.storage.create as create_mod

    one = create_torrent(folder, piece_length=PL, threads=1)
    monkeypatch.setattr(create_mod, "CHUNK_SIZE", PL)  # one piece per task
    two = create_torrent(folder, piece_length=PL, threads=2)
    assert one.to_bytes() == two.to_bytes()


def test_progress_reports_increase_to_the_total(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torrent_engine.storage.create as create_mod

    monkeypatch.setattr(create_mod, "CHUNK_SIZE", PL)
    seen: list[tuple[int, int]] = []
    t = create_torrent(folder, version="v1", piece_length=PL, progress=lambda d, n: seen.append((d, n)))
    assert len(seen) == t.num_pieces
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (t.total_length, t.total_length)


def test_auto_piece_length() -> None:
    assert auto_piece_length(1) == 16384
    assert auto_piece_length(1500 * 16384) == 16384
    assert auto_piece_length(1500 * 16384 + 1) == 32768
    assert auto_piece_length(10**13) == 16 * 1024 * 1024
    for size in (10**6, 10**8, 10**10):
        pl = auto_piece_length(size)
        assert pl & (pl - 1) == 0 and -(-size // pl) <= 1500


@pytest.mark.parametrize("pl", [0, 1000, 8192, 3 * 16384, 2**29])
def test_bad_piece_length(tmp_path: Path, pl: int) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(MetainfoError) as exc:
        create_torrent(tmp_path / "f", piece_length=pl)
    assert exc.value.field == "info.piece length"


def test_nothing_to_share(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "empty").write_bytes(b"")
    with pytest.raises(MetainfoError):
        create_torrent(tmp_path / "d")
    with pytest.raises(FileNotFoundError):
        create_torrent(tmp_path / "missing")


def test_symlinks_are_not_followed(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"do not share")
    (folder / "link").symlink_to(outside)
    (folder / "dirlink").symlink_to(tmp_path)
    t = create_torrent(folder, piece_length=PL)
    assert [f.path[1:] for f in t.files if not f.pad] == [tuple(r.split("/")) for r in ORDER]


def test_bad_version_and_threads(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError):
        create_torrent(tmp_path / "f", version="v3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        create_torrent(tmp_path / "f", threads=0)


@pytest.mark.anyio
async def test_async_wrapper_runs_in_a_worker_thread(folder: Path) -> None:
    t = await create_torrent_async(folder, piece_length=PL)
    assert t == create_torrent(folder, piece_length=PL)


def test_sample_torrent_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("make_sample", root / "examples" / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build(tmp_path) == (root / "examples" / "sample.torrent").read_bytes()


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_single_file_can_be_given_another_name(tmp_path: Path, version: str) -> None:
    (tmp_path / "f.bin").write_bytes(b"q" * 100)
    t = create_torrent(tmp_path / "f.bin", version=version, name="renamed.bin")  # type: ignore[arg-type]
    assert t.name == "renamed.bin" and t.files[0].path == ("renamed.bin",)


def test_source_goes_in_the_info_dict_and_changes_the_info_hash(folder: Path) -> None:
    plain = create_torrent(folder, version="hybrid", piece_length=PL)
    tagged = create_torrent(folder, version="hybrid", piece_length=PL, source="TRACKER")
    assert b"6:source7:TRACKER" in tagged.info_bytes
    assert tagged.info_hash_v1 != plain.info_hash_v1 and tagged.info_hash_v2 != plain.info_hash_v2


def test_skip_hidden_leaves_dotfiles_and_dot_folders_out(folder: Path) -> None:
    (folder / ".hidden").write_bytes(b"x" * 10)
    (folder / ".git").mkdir()
    (folder / ".git" / "objects").write_bytes(b"y" * 10)
    every = {f.path for f in create_torrent(folder, version="v1", piece_length=PL).files}
    shown = {f.path for f in create_torrent(folder, version="v1", piece_length=PL, skip_hidden=True).files}
    assert any(".hidden" in p for p in every) and any(".git" in p for p in every)
    assert not any(".hidden" in p or ".git" in p for p in shown) and shown


def test_an_exception_from_progress_stops_the_hashing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torrent_engine.storage.create as create

    monkeypatch.setattr(create, "CHUNK_SIZE", PL)
    calls: list[int] = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create_torrent(folder, version="v1", piece_length=PL, progress=stop, threads=2)
    assert len(calls) == 1
