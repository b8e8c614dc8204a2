"""What a job carries besides its download: category, tags, share limits, queue flags, a display name.

``JobFeatures`` is plain data, stored in the job's record and shown in its snapshot; the checks
here turn caller input into valid values (``InvalidJobRequest`` naming the field otherwise).
Share limits follow one convention everywhere: ``None`` = the service's default, ``-1`` = no
limit, otherwise the limit (a ratio; seconds of seeding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from ...formats.metainfo import Torrent
from ...session.setup import TOP_PRIORITY, first_last_pieces
from ..model import InvalidJobRequest, JobFeatures
from ..validate import MAX_NAME, check_category, check_share_limit, check_tags

if TYPE_CHECKING:
    from ...session import Session

CONTENT_LAYOUTS = ("original", "subfolder", "no_subfolder")  # how a torrent's files land (at the add)
MAX_COMMENT = 64 * 1024  # (a comment is prose; a cap keeps a record small)
D = TypeVar("D", bool, None)  # (a flag's default)


def check_content_layout(value: object) -> str:
    """The content layout: "original" (the torrent's own), "subfolder" (a one-file torrent gets a
    folder of its name) or "no_subfolder" (for one-file torrents only: see ``layout_save_path``)."""
    if not isinstance(value, str) or value.lower() not in CONTENT_LAYOUTS:
        raise InvalidJobRequest(f"{value!r} is not one of {', '.join(CONTENT_LAYOUTS)}", "content_layout")
    return value.lower()


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
        idle_seeding_limit=check_share_limit(data["idle_seeding_limit"], "idle_seeding_limit")
        if "idle_seeding_limit" in data else f.idle_seeding_limit,
        force_start=flag(data, "force_start", f.force_start),
        first_last_piece=flag(data, "first_last_piece", f.first_last_piece),
        content_layout=check_content_layout(data["content_layout"]) if "content_layout" in data
        else f.content_layout,
        rename=check_rename(data["rename"]) if "rename" in data else f.rename,
        comment=check_comment(data["comment"]) if "comment" in data else f.comment,
        share_limit_action=check_share_limit_action(data["share_limit_action"])
        if "share_limit_action" in data else f.share_limit_action,
        auto_managed=flag(data, "auto_managed", f.auto_managed))


def flag(data: Mapping[str, object], name: str, default: D) -> bool | D:
    """The true-or-false field ``name`` of ``data`` (``default`` when absent), else
    ``InvalidJobRequest`` naming it."""
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
