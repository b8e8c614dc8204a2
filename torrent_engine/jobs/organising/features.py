"""What a job carries besides its download: category, tags, share limits, queue flags, a display name.

``JobFeatures`` is plain data, stored in the job's record and shown in its snapshot; the checks
here turn caller input into valid values (``InvalidJobRequest`` naming the field otherwise).
Share limits follow one convention everywhere: ``None`` = the service's default, ``-1`` = no
limit, otherwise the limit (a ratio; seconds of seeding).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING  # Any: decoded JSON holds values of any JSON type (checked where read)

from ...formats.magnet import Magnet
from ...formats.metainfo import Torrent
from ...session.setup import TOP_PRIORITY, first_last_pieces
from ..model import NO_LIMIT, InvalidJobRequest, JobFeatures

if TYPE_CHECKING:
    from ...session import Session

CONTENT_LAYOUTS = ("original", "subfolder", "no_subfolder")  # how a torrent's files land (at the add)
MAX_NAME = 255
MAX_COMMENT = 64 * 1024  # (a comment is prose; a cap keeps a record small)


def check_category(name: object, field: str = "category") -> str:
    """A category name: "" (none), or words joined by single "/" (a subcategory), no NUL, no "\\"."""
    if not isinstance(name, str):
        raise InvalidJobRequest("must be a string", field)
    if name == "":
        return ""
    if (len(name) > MAX_NAME or name.startswith("/") or name.endswith("/") or "//" in name
            or "\\" in name or "\x00" in name or name.strip() != name):
        raise InvalidJobRequest(f"{name!r} is not a valid category name", field)
    return name


def check_tag(tag: object, field: str = "tags") -> str:
    """A tag: non-empty, no comma (lists of tags are comma-separated), no NUL, trimmed."""
    if not isinstance(tag, str):
        raise InvalidJobRequest("each tag must be a string", field)
    tag = tag.strip()
    if not tag or "," in tag or "\x00" in tag or len(tag) > MAX_NAME:
        raise InvalidJobRequest(f"{tag!r} is not a valid tag", field)
    return tag


def check_tags(tags: object, field: str = "tags") -> tuple[str, ...]:
    """Tags (a list of them, else ``InvalidJobRequest``), sorted and unique."""
    if not isinstance(tags, (list, tuple, set, frozenset)):
        raise InvalidJobRequest("must be a list of tags", field)
    return tuple(sorted({check_tag(t, field) for t in tags}))


def check_share_limit(value: object, field: str) -> float | None:
    """A share limit: None (the default), -1 (none) or a finite number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidJobRequest("must be a number (-1 = no limit, null = the default)", field)
    try:
        number = float(value)
    except OverflowError:  # (a whole number no float holds)
        number = math.inf
    if not math.isfinite(number):
        raise InvalidJobRequest("must be a number (-1 = no limit, null = the default)", field)
    if number == NO_LIMIT:
        return NO_LIMIT
    if number < 0:
        raise InvalidJobRequest("must be >= 0, or -1 for no limit", field)
    return number


def check_content_layout(value: object) -> str:
    """The content layout: "original" (the torrent's own), "subfolder" (a one-file torrent gets a
    folder of its name) or "no_subfolder" (for one-file torrents only: see ``layout_save_path``)."""
    if not isinstance(value, str) or value.lower() not in CONTENT_LAYOUTS:
        raise InvalidJobRequest(f"{value!r} is not one of {', '.join(CONTENT_LAYOUTS)}", "content_layout")
    return value.lower()


def layout_save_path(save: Path, torrent: Torrent | Magnet, layout: str) -> Path:
    """Where the job saves so that its files land as ``layout`` asks (the caller confines it).

    "subfolder" puts a one-file torrent in a folder named after it (without its extension); a
    multi-file torrent has its own top folder already. "no_subfolder" of a multi-file torrent
    would need the storage to drop the top folder, which it does not do: refused; for a one-file
    torrent it is the original layout. Either needs the metainfo (refused for a bare magnet)."""
    if layout == "original":
        return save
    if not isinstance(torrent, Torrent):
        raise InvalidJobRequest(f"{layout!r} needs the metainfo (add the .torrent, not a magnet link)",
                                "content_layout")
    multi = any(len(f.path) > 1 for f in torrent.files)
    if layout == "subfolder":
        return save if multi else save / (PurePosixPath(torrent.name).stem or torrent.name)
    if multi:
        raise InvalidJobRequest("no_subfolder is not supported for a multi-file torrent (its files keep "
                                "their top folder)", "content_layout")
    return save


def check_rename(value: object) -> str:
    """A display name ("" = the torrent's own)."""
    if not isinstance(value, str) or "\x00" in value or len(value) > 4 * MAX_NAME:
        raise InvalidJobRequest("must be a name without NUL", "rename")
    return value.strip()


def check_comment(value: object) -> str | None:
    """A comment shown instead of the metainfo's (None = the torrent's own, "" = none)."""
    if value is None:
        return None
    if not isinstance(value, str) or "\x00" in value or len(value) > MAX_COMMENT:
        raise InvalidJobRequest(f"must be null or a text of at most {MAX_COMMENT} characters without NUL",
                                "comment")
    return value


SHARE_LIMIT_ACTIONS = ("stop", "remove", "remove_with_files", "super_seed")  # ShareLimitAction's values


def check_share_limit_action(value: object) -> str | None:
    """What a job's reached share limit does (None = the service's ``share_limit_action``)."""
    if value is not None and value not in SHARE_LIMIT_ACTIONS:
        raise InvalidJobRequest(f"must be null or one of {', '.join(SHARE_LIMIT_ACTIONS)}",
                                "share_limit_action")
    return value if isinstance(value, str) else None


def shown_comment(features: JobFeatures, torrent: Torrent | None) -> str:
    """The comment a client shows: the job's own, else its metainfo's ("" before the metadata)."""
    if features.comment is not None:
        return features.comment
    return (torrent.comment or "") if torrent is not None else ""


def features_from(data: Mapping[str, object], base: JobFeatures | None = None) -> JobFeatures:
    """``base`` (or the defaults) with the fields ``data`` names, each checked."""
    f = base if base is not None else JobFeatures()
    return JobFeatures(
        category=check_category(data["category"]) if "category" in data else f.category,
        tags=check_tags(data["tags"]) if "tags" in data else f.tags,
        ratio_limit=check_share_limit(data["ratio_limit"], "ratio_limit") if "ratio_limit" in data
        else f.ratio_limit,
        seeding_time_limit=check_share_limit(data["seeding_time_limit"], "seeding_time_limit")
        if "seeding_time_limit" in data else f.seeding_time_limit,
        force_start=_flag(data, "force_start", f.force_start),
        first_last_piece=_flag(data, "first_last_piece", f.first_last_piece),
        content_layout=check_content_layout(data["content_layout"]) if "content_layout" in data
        else f.content_layout,
        rename=check_rename(data["rename"]) if "rename" in data else f.rename,
        comment=check_comment(data["comment"]) if "comment" in data else f.comment,
        share_limit_action=check_share_limit_action(data["share_limit_action"])
        if "share_limit_action" in data else f.share_limit_action)


def _flag(data: Mapping[str, object], name: str, default: bool) -> bool:
    if name not in data:
        return default
    value = data[name]
    if not isinstance(value, bool):
        raise InvalidJobRequest("must be true or false", name)
    return value


def prioritise_first_last(session: Session, priorities: Sequence[int] | None) -> None:
    """Give each wanted file's first and last piece the top priority (so a player can read a
    file's header and index early); nothing before the metainfo is known."""
    if not session.has_metadata:
        return
    picker = session.picker
    for index in sorted(first_last_pieces(session.torrent, priorities)):
        if picker.piece_priority(index) > 0:
            picker.set_piece_priority(index, TOP_PRIORITY)


def check_features(features: JobFeatures | None) -> JobFeatures | None:
    """``features`` as handed to ``add``, every field checked (``InvalidJobRequest`` naming it)."""
    return None if features is None else features_from(features.to_json())
