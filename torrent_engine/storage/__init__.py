"""Torrent data on disk (see ``core``): pieces mapped onto files, read and written by worker
threads; ``paths`` keeps every file below the save path, ``descriptors`` caches open files,
``lanes`` runs the hashing and writing threads, ``timing`` counts how long piece writes take."""

from __future__ import annotations

from ..formats.layout import FileMap, FileSlice
from .core import (
    PieceStorage,
    RenamesFiles,
    Storage,
    StorageFactory,
    VerifiedPieceWriter,
    WatchedFiles,
    aligned_buffer,
    verified,
)
from .paths import check_components, safe_join

__all__ = ["FileMap", "FileSlice", "PieceStorage", "RenamesFiles", "Storage", "StorageFactory",
           "VerifiedPieceWriter", "WatchedFiles", "aligned_buffer", "check_components", "safe_join",
           "verified"]
