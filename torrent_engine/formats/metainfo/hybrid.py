"""BEP 52's upgrade path: a hybrid torrent's v1 and v2 views must describe the same files."""

from __future__ import annotations

from ...errors import MetainfoError
from .files import RawFile


def check_hybrid(v1: list[RawFile], v2: list[RawFile], multi: bool, name: str, pl: int) -> None:
    """The v1 and v2 views name the same files, in the same order, with the same piece
    alignment (v1 reaching it with BEP 47 pad files); each v1 file takes its v2 pieces root."""
    field_name = "info.files" if multi else "info.length"
    real_v1 = [f for f in v1 if not f.pad]
    if len(real_v1) != len(v2):
        raise MetainfoError(f"hybrid: {len(real_v1)} v1 files but {len(v2)} v2 files", field_name)
    v2_multi = len(v2) > 1 or len(v2[0].path) > 1
    # A folder holding one file: libtorrent writes a v1 file list under `name` and a v2 file
    # tree of just that file, and reads it by the v1 view (name/file). So do we.
    one_file_folder = multi and not v2_multi and len(real_v1) == 1 and real_v1[0].path == v2[0].path
    if v2_multi != multi and not one_file_folder:
        raise MetainfoError("hybrid: single-file in one view, multi-file in the other", field_name)
    pos = 0
    v2_pos = 0  # where the v2 layout puts the next file: the previous file's end, aligned up
    j = 0
    for f in v1:
        if f.pad:
            pos += f.length
            continue
        g = v2[j]
        v2_pos += -v2_pos % pl
        v2_path = g.path  # a single-file v2 tree names its file: it must be the v1 name
        v1_path = f.path if multi else (name,)
        if v1_path != v2_path or f.length != g.length:
            raise MetainfoError(
                f"hybrid: v1 file {'/'.join(v1_path)!r} ({f.length} bytes) does not match "
                f"v2 file {'/'.join(g.path)!r} ({g.length} bytes)",
                field_name,
            )
        if f.length and pos != v2_pos:
            raise MetainfoError(
                f"hybrid: v1 file {'/'.join(v1_path)!r} starts at {pos}, not on the piece boundary "
                f"{v2_pos} where v2 puts it",
                field_name,
            )
        f.pieces_root = g.pieces_root
        pos += f.length
        if f.length:
            v2_pos = pos
        j += 1
    if -(-pos // pl) != -(-v2_pos // pl):
        raise MetainfoError("hybrid: trailing pad files add pieces that v2 does not have", field_name)
