"""The v2 view of an info dict (BEP 52): the meta version, the file tree, and the piece layers
that hash up to each file's pieces root."""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import BencodeError, MetainfoError
from ..bencode import BValue, decode
from ..merkle import HASH_SIZE, root_from_piece_layer
from .fields import MAX_FILES, META_VERSION, read_length, text
from .files import PAD_ATTR, SYMLINK_ATTR, FileEntry, RawFile, read_attr, read_symlink, sanitize_path


def is_v2(info: dict[bytes, BValue], info_bytes: bytes) -> bool:
    """Whether the info dict is v2 (``meta version`` 2), checked before anything else so that a
    newer format gets a clear message; a v2 info dict must be canonical bencoding."""
    if b"meta version" not in info:
        if b"file tree" in info:
            raise MetainfoError("'file tree' present without 'meta version' 2", "info.meta version")
        return False
    mv = info[b"meta version"]
    if not isinstance(mv, int):
        raise MetainfoError("not an integer", "info.meta version")
    if mv != META_VERSION:
        raise MetainfoError(f"unsupported meta version {mv}", "info.meta version")
    try:  # libtorrent refuses a v2 info dict that is not canonical bencoding
        decode(info_bytes, strict=True)
    except BencodeError as exc:
        raise MetainfoError(f"a v2 info dict must be canonical bencoding: {exc.reason}", "info") from None
    return True


def v2_files(info: dict[bytes, BValue]) -> list[RawFile]:
    """The files of the v2 ``file tree``, in tree order (sorted in valid torrents)."""
    tree = info.get(b"file tree")
    if not isinstance(tree, dict):
        raise MetainfoError("missing or not a dictionary", "info.file tree")
    if b"" in tree:
        raise MetainfoError("the root of the file tree must not be a file", "info.file tree")
    out: list[RawFile] = []
    # Iterative walk in dict order: depth is already bounded by the decoder, and an explicit
    # stack keeps the order without recursion.
    pending: list[tuple[tuple[bytes, ...], BValue]] = [((), tree)]
    while pending:
        raw_path, node = pending.pop()
        fname = "info.file tree/" + "/".join(text(p) for p in raw_path)
        if not isinstance(node, dict):
            raise MetainfoError("not a dictionary", fname)
        if b"" in node and raw_path:
            if len(node) != 1:
                raise MetainfoError("a file entry must not have siblings", fname)
            fd = node[b""]
            if not isinstance(fd, dict):
                raise MetainfoError("file entry is not a dictionary", fname)
            attr = read_attr(fd)
            # BEP 47: a symlink holds no data, so it may give no length (libtorrent)
            no_length = SYMLINK_ATTR in attr and b"length" not in fd
            length = 0 if no_length else read_length(fd, f"{fname}.length")
            root = fd.get(b"pieces root")
            if PAD_ATTR in attr:  # BEP 47/52: v2 aligns files itself; libtorrent refuses it too
                raise MetainfoError("a file in a v2 file tree must not be a pad file", f"{fname}.attr")
            if length > 0 and SYMLINK_ATTR not in attr:
                if not isinstance(root, bytes) or len(root) != HASH_SIZE:
                    raise MetainfoError("missing or not 32 bytes", f"{fname}.pieces root")
                if not any(root):
                    raise MetainfoError("all zeros (no root hash)", f"{fname}.pieces root")
            else:
                root = None
            path = sanitize_path(list(raw_path), lambda fname=fname: fname)  # type: ignore[misc]
            if SYMLINK_ATTR in attr:
                length, root = 0, None
            out.append(RawFile(path, length, attr, read_symlink(fd, attr), root))
            if len(out) > MAX_FILES:
                raise MetainfoError(f"more than {MAX_FILES} files", "info.file tree")
            continue
        if not node and raw_path:
            continue  # an empty directory holds no files (libtorrent skips it too)
        for key in reversed(list(node)):
            pending.append((raw_path + (key,), node[key]))
    if not out:
        raise MetainfoError("no files", "info.file tree")
    return out


def check_piece_layers(
    layers_raw: object, files: Sequence[FileEntry], piece_length: int
) -> dict[bytes, bytes]:
    """The piece layers of ``files`` from a ``piece layers`` dict, each checked against its file's
    pieces root. A missing layer is no error: as libtorrent does, it is fetched from peers (BEP 52
    hash requests) and ``Torrent.missing_piece_layers`` names its file."""
    needed = {f.pieces_root: f.length for f in files if f.pieces_root is not None and f.length > piece_length}
    if layers_raw is None:
        return {}
    if not isinstance(layers_raw, dict):
        raise MetainfoError("not a dictionary", "piece layers")
    for root, layer in layers_raw.items():  # every layer must belong to a file (libtorrent)
        if len(root) != HASH_SIZE or not isinstance(layer, bytes) or len(layer) % HASH_SIZE:
            raise MetainfoError("a key is not 32 bytes or a layer not a multiple of 32 bytes",
                                "piece layers")
        if root not in needed:
            raise MetainfoError("not the pieces root of any file larger than one piece",
                                f"piece layers[{root.hex()}]")
    out: dict[bytes, bytes] = {}
    for root, length in needed.items():
        layer = layers_raw.get(root)
        fname = f"piece layers[{root.hex()}]"
        if layer is None:
            continue
        if not isinstance(layer, bytes):
            raise MetainfoError("not a string", fname)
        count = -(-length // piece_length)
        if len(layer) != count * HASH_SIZE:
            raise MetainfoError(f"{len(layer)} bytes, expected {count * HASH_SIZE}", fname)
        hashes = [layer[i : i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)]
        if root_from_piece_layer(hashes, piece_length) != root:
            raise MetainfoError("does not hash to the file's pieces root", fname)
        out[root] = layer
    return out
