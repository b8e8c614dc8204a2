"""The job service's settings that clients change at run time: default share limits and what
happens at them, the queue and its maxima, the global rate limits, the incomplete folder, the
programs run on a job's events (intake/autorun.py), the watched folders (intake/watch.py), the proxy
(proxy.py), the IP filter (blocklist.py), the alternative rate limits (altspeed.py), the
connection limits (peerlimits.py), the peer network: port, DHT, PEX, LSD, encryption,
transports (peernet.py), the deduplication's mode and indexed folders (disk/dedup.py), and the
mail a completed download sends (mail.py). One
JSON file, ``state_dir/settings.json``, written atomically; every value is checked on the way in.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from ...config import (
    CONCURRENT_HTTP_ANNOUNCES,
    DEFAULT_ACTIVE_CHECKING,
    MAX_HTTP_ANNOUNCES,
    MAX_STOP_TRACKER_TIMEOUT,
    PEER_TURNOVER,
    PEER_TURNOVER_CUTOFF,
    PEER_TURNOVER_INTERVAL,
    RESUME_SAVE_INTERVAL,
    STOP_TRACKER_TIMEOUT,
    Encryption,
    Transport,
)
from ...engine.addtorrent import TORRENT_FILE_LIMIT_LEAST, TORRENT_FILE_LIMIT_MOST
from ...jsonvalue import JSON
from ...net.tracker.messages import announce_ip_refusal
from ...policy.choker import SEEDING_CHOKERS, SeedingChoker
from ...policy.dedup import DEDUP_MODES, DEFAULT_DEDUP_MODE, DedupMode
from ...storage.resume import write_atomic
from ..exclusions import check_name_patterns
from ..model import InvalidJobRequest, check_stop_condition
from ..trackers import check_tiers
from ..validate import check_limit, check_share_limit, check_suffix
from .altspeed import check_days, check_minute
from .autorun import ProgramEvent, check_command
from .blocklist import check_addresses, check_filter_path, check_filter_url
from .mail import (
    MAIL_ADDRESS_FIELDS,
    MAIL_TEXT_FIELDS,
    check_mail_addresses,
    check_mail_server,
    check_mail_text,
    missing_for_mail,
)
from .netbind import BIND_FIELDS, check_bind_field, checked_binding
from .peerlimits import LIMIT_SETTINGS, check_peer_limit
from .peernet import check_encryption, check_listen_port, check_transport
from .proxy import PROXY_SWITCHES, check_proxy_url

log = logging.getLogger("torrent_engine.jobs.settings")

WatchFolders = tuple[tuple[str, "str | None"], ...]


# the limits whose value is kept while off (``ServiceSettings.kept_limits``), each with its off
# value: the global rates (0) and the default share limits (-1)
KEPT_LIMITS = {"download_limit": 0.0, "upload_limit": 0.0, "ratio_limit": -1.0, "idle_seeding_limit": -1.0}


def check_kept_limits(value: object, name: str) -> tuple[tuple[str, float], ...]:
    """Kept values of limits that are off, as ``{limit: value}``: each a limit of ``KEPT_LIMITS``
    and a value it could have while on (a rate above 0, a share limit from 0)."""
    if not isinstance(value, Mapping):
        raise InvalidJobRequest(f"must be an object of limits ({', '.join(KEPT_LIMITS)}) and their values",
                                name)
    out: dict[str, float] = {}
    for limit, kept in value.items():
        if limit not in KEPT_LIMITS:
            raise InvalidJobRequest(f"{limit!r} is not a limit whose value is kept (those: "
                                    f"{', '.join(KEPT_LIMITS)})", name)
        if KEPT_LIMITS[limit] == 0.0:
            number: float = check_limit(kept, f"{name}.{limit}")
        else:
            share = check_share_limit(kept, f"{name}.{limit}")
            number = -1.0 if share is None else share
        if number == KEPT_LIMITS[limit]:
            raise InvalidJobRequest(f"a kept value is one the limit has while on, not {kept!r}",
                                    f"{name}.{limit}")
        out[limit] = number
    return tuple(sorted(out.items()))


def _kept_after(current: ServiceSettings, values: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """The kept values once ``values`` apply: a limit turned off keeps the value it had (unless
    ``values`` gives it one to keep), a limit turned on keeps none."""
    given = dict(values.get("kept_limits", ()))
    kept = dict(given) if "kept_limits" in values else dict(current.kept_limits)
    for limit, off in KEPT_LIMITS.items():
        if limit not in values:
            continue
        was, now = getattr(current, limit), values[limit]
        if now != off:
            kept.pop(limit, None)
        elif was != off and limit not in given:
            kept[limit] = was
    return tuple(sorted(kept.items()))


# -- checks of the watched folders' settings ----------------------------------------------------
def check_seconds(value: object, name: str, *, minimum: float, maximum: float = math.inf) -> float:
    """A number of seconds, at least ``minimum``, at most ``maximum`` and finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not minimum <= value <= maximum:
        most = f" and <= {maximum:g}" if maximum != math.inf else ""
        raise InvalidJobRequest(f"must be a number of seconds >= {minimum:g}{most}", name)
    return float(value)


def check_watch_folders(value: object, name: str, *, on_disk: bool = True) -> WatchFolders:
    """Watched folders as ``{folder: save path or null}`` (null: the default save path; a save
    path is checked as an add's is, when a file is added). A folder is an absolute path to an
    existing folder (``on_disk``: checked now)."""
    pairs: Sequence[object]
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = list(value)
    else:
        raise InvalidJobRequest("must be an object: {folder: save path, or null for the default}", name)
    out: dict[str, str | None] = {}
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidJobRequest("must be an object: {folder: save path, or null for the default}", name)
        folder, target = pair
        if not isinstance(folder, str) or not folder or "\x00" in folder:
            raise InvalidJobRequest(f"{folder!r}: a folder must be a path", name)
        if not os.path.isabs(folder):
            raise InvalidJobRequest(f"{folder!r}: a watched folder must be an absolute path", name)
        if target is not None and (not isinstance(target, str) or "\x00" in target):
            raise InvalidJobRequest(f"{folder!r}: the save path must be a path or null", name)
        folder = os.path.normpath(folder)
        if on_disk and not os.path.isdir(folder):
            raise InvalidJobRequest(f"{folder!r}: no such folder", name)
        out[folder] = target or None
    return tuple(out.items())


def check_dedup_folders(value: object, name: str) -> tuple[str, ...]:
    """The indexed folders of the deduplication: absolute paths, each once, in order (one that
    is not there now is not refused: each walk says it cannot read it, a drive mounted later is
    walked then)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidJobRequest("must be a list of absolute paths to folders", name)
    out: dict[str, None] = {}
    for folder in value:
        if not isinstance(folder, str) or not folder or "\x00" in folder or not os.path.isabs(folder):
            raise InvalidJobRequest(f"{folder!r}: an indexed folder must be an absolute path", name)
        out[os.path.normpath(folder)] = None
    return tuple(out)


# the folders where copies of .torrent files are written (disk/exports.py)
EXPORT_DIRS = ("torrent_export_dir", "finished_torrent_export_dir")
# the failed logins that get an address refused, and for how long, unless set (``login_max_failures``,
# ``login_ban_time``); the most the first may be (the limiter keeps as many times an address)
LOGIN_FAILURES = 5
LOGIN_BAN_TIME = 60.0
MAX_LOGIN_FAILURES = 1000

SETTINGS_FILE = "settings.json"
# the smart filter's episode patterns: S01E01, 01x01, 2017.01.01, 01.01.2017 (qBittorrent's)
DEFAULT_SMART_EPISODE_FILTERS = (r"s(\d+)e(\d+)", r"(\d+)x(\d+)", r"(\d{4}[.\-]\d{1,2}[.\-]\d{1,2})",
                                 r"(\d{1,2}[.\-]\d{1,2}[.\-]\d{4})")
MAX_FEED_ARTICLES = 10_000  # articles one feed keeps at most
MAX_DISK_RESERVE = 2**50  # bytes a download may leave free at most (the setting's: 1 PiB)
MAX_FEED_FETCH_DELAY = 3600  # seconds between two fetches from one feed host at most (the setting's)
MAX_PATTERNS = 100  # smart filter patterns
# settings to change, by name, with their values as a client or a file sent them: ``updated``
# checks each one (its type too) before any applies
SettingChanges: TypeAlias = dict[str, object]


class ShareLimitAction(enum.StrEnum):
    """What the service does with a job whose share limit is reached."""

    STOP = "stop"  # pause it (it stays in the list, complete)
    REMOVE = "remove"  # end it as completed (into the history), files kept
    REMOVE_WITH_FILES = "remove_with_files"  # end it and delete its files
    SUPER_SEED = "super_seed"  # turn super-seeding (BEP 16) on; it goes on seeding


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Run-time settings (``-1`` = no limit for the share limits and the queue's maxima)."""

    ratio_limit: float = -1.0
    seeding_time_limit: float = -1.0  # seconds
    idle_seeding_limit: float = -1.0  # seconds seeding without sending or receiving a byte
    share_limit_action: ShareLimitAction = ShareLimitAction.STOP
    queueing: bool = False
    max_active_downloads: int = 3
    max_active_uploads: int = 3
    max_active_torrents: int = 5
    # a running job whose download and upload rates both stay below these (bytes per second) for
    # slow_torrent_inactive_time seconds counts in none of the maxima above, while
    # dont_count_slow_torrents (qBittorrent's "do not count slow torrents in these limits")
    dont_count_slow_torrents: bool = False
    slow_torrent_download_rate: int = 2048
    slow_torrent_upload_rate: int = 2048
    slow_torrent_inactive_time: float = 60.0
    # torrents hashing their data at once (-1: no limit): the Config's ``active_checking_limit``
    # unless changed (qBittorrent's max_active_checking_torrents)
    max_active_checking: int = DEFAULT_ACTIVE_CHECKING
    download_limit: int = 0  # bytes per second for all jobs together, 0 = none
    upload_limit: int = 0
    # the value a limit of KEPT_LIMITS had when it was last turned off (0 / -1), by name: a
    # client that shows a limit's value beside its switch shows it again when the switch is
    # turned on (Transmission keeps a limit's value while off); none kept while a limit is on
    kept_limits: tuple[tuple[str, float], ...] = ()
    # new jobs download into the incomplete folder and move to their save path once complete
    incomplete_dir_enabled: bool = False
    incomplete_dir: str = ""  # absolute, inside the download root; "" = its folder "incomplete"
    # programs run on a job's events: command lines with placeholders, never read by a shell
    run_on_added: str = ""
    run_on_added_enabled: bool = False
    run_on_completed: str = ""
    run_on_completed_enabled: bool = False
    run_on_seeding_done: str = ""  # its share limit reached
    run_on_seeding_done_enabled: bool = False
    run_timeout: float = 60.0  # seconds a program may run; its process group is killed then
    # watched folders: (folder, save path: None = the default one), in order
    watch_folders: tuple[tuple[str, str | None], ...] = ()
    watch_enabled: bool = True
    watch_interval: float = 3.0  # seconds between two scans
    # a watched file once added is deleted, not renamed .added (Transmission's
    # trash-original-torrent-files, qBittorrent's auto_delete_mode 1)
    watch_delete_added: bool = False
    # a proxy (docs/proxy.md): its URL ("" = none); whether peers go through it; whether
    # .torrent URL fetches go straight (qBittorrent's "torrents only"); proxy only
    proxy_url: str = ""
    proxy_peer_connections: bool = True
    proxy_torrents_only: bool = False
    proxy_only: bool = False
    # the IP filter (blocklist.py): a list file and a list URL, used while enabled (trackers too,
    # with ip_filter_trackers); the banned addresses, always
    ip_filter_enabled: bool = False
    ip_filter_path: str = ""
    ip_filter_url: str = ""
    ip_filter_trackers: bool = False
    banned_ips: tuple[str, ...] = ()
    # alternative global rate limits (altspeed.py), in force while alt_speed_enabled; the schedule
    # turns that on and off at its window's edges (minutes after midnight, local time; days:
    # Sunday 1, Monday 2 … Saturday 64)
    alt_download_limit: int = 0  # bytes per second, 0 = none
    alt_upload_limit: int = 0
    alt_speed_enabled: bool = False
    alt_schedule_enabled: bool = False
    alt_schedule_from: int = 8 * 60
    alt_schedule_to: int = 20 * 60
    alt_schedule_days: int = 127
    # connections and upload slots (peerlimits.py; -1 = none): qBittorrent's connections over
    # every torrent, the engine's (Config's) per torrent; no upload slots over every torrent by
    # default (they go first come, first served: with qBittorrent's 20, torrents past the
    # first twenty to rechoke could wait for ever)
    max_connections: int = 500  # over every torrent
    max_connections_per_torrent: int = 60  # unless a job has its own
    max_uploads: int = -1  # peers unchoked over every torrent
    max_uploads_per_torrent: int = 4  # regular unchoke slots of a torrent (plus one optimistic)
    # outgoing connection attempts a second over every torrent, the torrents with the fewest
    # peers first (engine/dialgate.py): libtorrent's and qBittorrent's default
    connection_speed: int = 30
    # no peer on a privileged port (below 1024) is dialed (qBittorrent's "block peers on
    # privileged ports", libtorrent's no_connect_privileged_ports)
    block_privileged_ports: bool = False
    # whether the global (and bandwidth groups') rate limits apply to peers on the local network
    # too: loopback, private, link-local addresses (qBittorrent's limit_lan_peers, libtorrent's
    # local peer class); off, those pass their torrent's own limit alone
    limit_lan_peers: bool = True
    # whether a torrent may hold several connections with one IP address (qBittorrent's "allow
    # multiple connections from the same IP address", off there; on here: peers on one host count)
    multiple_connections_per_ip: bool = True
    # how a seeding torrent chooses whom it uploads to (policy/choker.py: round_robin,
    # fastest_upload, anti_leech; qBittorrent's upload_choking_algorithm)
    seeding_choker: SeedingChoker = "round_robin"
    # the address trackers are told to hand out for us ("": the one they see; the Config's
    # announce_ip unless changed: qBittorrent's announce_ip)
    announce_ip: str = ""
    # seconds a stopping torrent gives its trackers' stopped announces (0: none sent; the
    # Config's stop_tracker_timeout unless changed: qBittorrent's stop_tracker_timeout)
    stop_tracker_timeout: float = STOP_TRACKER_TIMEOUT
    # seconds between saves of a running torrent's resume data, when it changed (0: none but
    # those at a stop, a pause, a completion; the Config's resume_save_interval unless changed:
    # qBittorrent's save_resume_data_interval, in minutes there)
    resume_save_interval: float = RESUME_SAVE_INTERVAL
    # a download that completes is checked again from its files before it counts as complete
    # (the Config's recheck_on_completion unless changed: qBittorrent's recheck_completed_torrents)
    recheck_on_completion: bool = False
    # a suffix that each incomplete file of a job carries on disk until complete ("" none:
    # disk/partial.py; qBittorrent's incomplete_files_ext ".!qB", Transmission's rename-partial-files
    # ".part")
    partial_file_suffix: str = ""
    # HTTP(S) tracker announces in flight at once over every torrent (the Config's
    # max_concurrent_http_announces unless changed; qBittorrent's of that name)
    max_concurrent_http_announces: int = CONCURRENT_HTTP_ANNOUNCES
    # SSRF mitigation of tracker and web seed requests (the Config's ssrf_mitigation unless
    # changed: qBittorrent's of that name)
    ssrf_mitigation: bool = True
    # every torrent announces to its trackers at once when our external address changes (the
    # Config's reannounce_when_address_changed unless changed: qBittorrent's of that name)
    reannounce_when_address_changed: bool = False
    # peer turnover: every peer_turnover_interval seconds a torrent at peer_turnover_cutoff
    # percent of its connection limit drops peer_turnover percent of its worst peers to try
    # others (the Config's unless changed; qBittorrent's of those names; 0 percent: never)
    peer_turnover: int = PEER_TURNOVER
    peer_turnover_cutoff: int = PEER_TURNOVER_CUTOFF
    peer_turnover_interval: float = PEER_TURNOVER_INTERVAL
    # one network interface for everything ("": any) and one of its addresses ("": any of them)
    bind_interface: str = ""
    bind_address: str = ""
    # the peer network (peernet.py): the port peers connect to (TCP and uTP; 0 asks for a free
    # one, chosen when applied and kept from then on, as qBittorrent's first start chooses one),
    # a new one chosen at each start (qBittorrent's random_port, Transmission's
    # peer-port-random-on-start), the DHT, PEX, LSD, the encryption (MSE/PE) policy and the
    # transports (any: uTP and TCP; tcp or utp alone) of new connections: the Config's (the
    # daemon's flags) unless changed
    listen_port: int = 0
    random_port: bool = False
    dht_enabled: bool = True
    pex_enabled: bool = True
    lsd_enabled: bool = True
    encryption: Encryption = "prefer"
    transport: Transport = "any"
    # trackers every new torrent that is not private announces to after its own (BEP 12 tiers;
    # qBittorrent's "automatically add these trackers", Transmission's default-trackers), while
    # enabled; kept in each job's trackers at its add
    default_trackers: tuple[tuple[str, ...], ...] = ()
    default_trackers_enabled: bool = False
    # file names new torrents do not download (qBittorrent's "excluded file names"), while
    # enabled: wildcard patterns, any case, each matched against a file's name and its folders';
    # applied to an add that chooses no files itself (a magnet's files when its metadata comes)
    excluded_file_names: tuple[str, ...] = ()
    excluded_file_names_enabled: bool = False
    # when a new job stops by itself, unless its add says (model.STOP_CONDITIONS: qBittorrent's
    # "torrent stop condition")
    stop_condition: str = "none"
    # whether a new job is added paused unless its add says (qBittorrent's "do not start the
    # download automatically", Transmission's start-added-torrents off)
    add_paused: bool = False
    # whether a new job takes the first place in the queue rather than the last, unless its add
    # says (qBittorrent's add_to_top_of_queue)
    add_to_top_of_queue: bool = False
    # a torrent added again (the job exists) gives the job the trackers and web seeds it lacks,
    # unless private (qBittorrent's merge_trackers)
    merge_trackers: bool = False
    # automatic management (``JobFeatures.auto_managed``: a job saved where its category says):
    # whether a qBittorrent add that does not say is so managed (its auto_tmm_enabled); whether a
    # managed job whose category changes moves to the new one's folder, else is managed by hand
    # from then on, where it is (its torrent_changed_tmm_enabled); the same when its category's
    # save path changes (its category_changed_tmm_enabled)
    auto_managed_adds: bool = False
    relocate_on_category_change: bool = True
    relocate_on_category_path_change: bool = False
    # folders inside the download root ("" = none) where a copy of each new job's .torrent is
    # written, and of each finished download's (disk/exports.py: qBittorrent's export_dir and
    # export_dir_fin)
    torrent_export_dir: str = ""
    finished_torrent_export_dir: str = ""
    # failed logins from one address (at any door: the API, the web UI, both dialects), each
    # within login_ban_time seconds of the next, that have it refused for login_ban_time seconds
    # from the last of them (0: never refused; qBittorrent's web_ui_max_auth_fail_count and
    # web_ui_ban_duration, Transmission's anti-brute-force-threshold)
    login_max_failures: int = LOGIN_FAILURES
    login_ban_time: float = LOGIN_BAN_TIME
    # the feeds (feeds/reader.py, qBittorrent's RSS): whether they are read, every how many
    # seconds (a feed's own interval aside), the whole seconds between two fetches from one host
    # (and port: qBittorrent's "same host request delay", one fetch at a time there), how many
    # articles each keeps; whether their new articles are offered to the download rules, the
    # smart filter's episode patterns (regular expressions whose groups name an episode), and
    # whether it takes a REPACK or PROPER of one
    rss_processing_enabled: bool = False
    rss_refresh_interval: float = 1800.0
    rss_fetch_delay: int = 2
    rss_max_articles_per_feed: int = 50
    rss_auto_downloading_enabled: bool = False
    rss_smart_episode_filters: tuple[str, ...] = DEFAULT_SMART_EPISODE_FILTERS
    rss_download_repack_proper_episodes: bool = True
    # deduplication (jobs/disk/dedup.py, docs/dedup.md): how a file held whole is placed in a new
    # job ("off": none is), and the folders whose files are held too besides the complete jobs'
    # (absolute; the Config's ``dedup`` and ``dedup_folders`` unless changed)
    dedup: DedupMode = DEFAULT_DEDUP_MODE
    dedup_folders: tuple[str, ...] = ()
    # the largest .torrent added, in bytes, at every door (an upload, a dialect's, a watched
    # folder's, one fetched by URL, a feed's; qBittorrent's torrent_file_size_limit)
    torrent_file_size_limit: int = TORRENT_FILE_LIMIT_MOST
    # bytes a download leaves free on the disk it writes to (0: none): below, it stops until
    # there is room again, as one stopped by a full disk does (jobs/disk/space.py)
    disk_reserve: int = 0
    # a mail when a download completes (mail.py, qBittorrent's mail_notification_*): whether one
    # is sent, from and to whom (addresses separated by commas), through which SMTP server
    # (host[:port]), over TLS from the first byte (else STARTTLS whenever the server offers it),
    # and the login it asks for
    mail_enabled: bool = False
    mail_from: str = ""
    mail_to: str = ""
    mail_server: str = ""
    mail_ssl: bool = False
    mail_auth_enabled: bool = False
    mail_username: str = ""
    mail_password: str = ""

    def to_json(self) -> dict[str, JSON]:
        """The settings as JSON."""
        out: dict[str, JSON] = dataclasses.asdict(self)
        out["share_limit_action"] = self.share_limit_action.value
        out["watch_folders"] = dict(self.watch_folders)
        out["rss_smart_episode_filters"] = list(self.rss_smart_episode_filters)
        out["kept_limits"] = dict(self.kept_limits)
        return out

    def kept(self, name: str) -> float | None:
        """The value limit ``name`` (of ``KEPT_LIMITS``) had when last turned off; None: none kept."""
        return next((value for kept, value in self.kept_limits if kept == name), None)

    def program(self, event: ProgramEvent) -> str:
        """The command line to run on ``event`` ("" when none is, or it is turned off)."""
        command, enabled = {
            ProgramEvent.ADDED: (self.run_on_added, self.run_on_added_enabled),
            ProgramEvent.COMPLETED: (self.run_on_completed, self.run_on_completed_enabled),
            ProgramEvent.SEEDING_DONE: (self.run_on_seeding_done, self.run_on_seeding_done_enabled),
        }[event]
        return command if enabled else ""


def check_patterns(value: object, name: str) -> tuple[str, ...]:
    """Regular expressions (a list of them, or lines of text as qBittorrent sends them), each
    compiling; at least one, at most ``MAX_PATTERNS``."""
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, (list, tuple)) or not value or len(value) > MAX_PATTERNS \
            or not all(isinstance(p, str) and 0 < len(p) <= 500 for p in value):
        raise InvalidJobRequest(f"must be 1 to {MAX_PATTERNS} regular expressions", name)
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidJobRequest(f"{pattern[:80]!r} is not a regular expression: {exc}", name) from None
    return tuple(value)


def _int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidJobRequest(f"must be a whole number >= {minimum}", name)
    return value


def _one_of(value: object, name: str, choices: Sequence[str]) -> str:
    """``value``, one of ``choices``; else ``InvalidJobRequest`` naming them."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidJobRequest(f"must be one of {', '.join(choices)}", name)
    return value


def _int_in(value: object, name: str, low: int, high: int, said: str = "") -> int:
    """``value``, a whole number from ``low`` to ``high``; else ``InvalidJobRequest`` saying
    ``said`` (by default, that range)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidJobRequest(said or f"must be a whole number from {low} to {high}", name)
    return value


def updated(current: ServiceSettings, changes: Mapping[str, object], *,
            loading: bool = False) -> ServiceSettings:
    """``current`` with ``changes`` applied, each checked (unknown names refused). ``loading``:
    read from the saved file (a watched folder missing now is kept: it may be mounted later)."""
    known = {f.name for f in dataclasses.fields(ServiceSettings)}
    values: dict[str, Any] = {}  # Any: checked values of the settings' several types, as replace() takes them
    for name, value in changes.items():
        if name not in known:
            raise InvalidJobRequest(f"unknown setting (known: {', '.join(sorted(known))})", name)
        if name in ("ratio_limit", "seeding_time_limit", "idle_seeding_limit"):
            limit = check_share_limit(value, name)
            values[name] = -1.0 if limit is None else limit
        elif name == "share_limit_action":
            if not isinstance(value, str) or value not in ShareLimitAction.__members__.values():
                names = ", ".join(a.value for a in ShareLimitAction)
                raise InvalidJobRequest(f"must be one of {names}", name)
            values[name] = ShareLimitAction(value)
        elif name in ("queueing", "incomplete_dir_enabled", "dont_count_slow_torrents", "add_paused",
                      "add_to_top_of_queue", "merge_trackers", "rss_download_repack_proper_episodes",
                      "auto_managed_adds", "relocate_on_category_change", "relocate_on_category_path_change"):
            if not isinstance(value, bool):
                raise InvalidJobRequest("must be true or false", name)
            values[name] = value
        elif name in ("incomplete_dir", *EXPORT_DIRS):  # (confined to the download root by the service)
            if not isinstance(value, str) or "\x00" in value:
                raise InvalidJobRequest("must be a folder inside the download root", name)
            values[name] = value
        elif name in LIMIT_SETTINGS:
            values[name] = check_peer_limit(value, name)
        elif name == "max_active_checking":
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not (value == -1 or 1 <= value < 2**31):
                raise InvalidJobRequest("must be -1 (no limit) or a whole number from 1", name)
            values[name] = value
        elif name.startswith("max_active"):
            values[name] = _int(value, name, -1)
        elif name in ("download_limit", "upload_limit", "alt_download_limit", "alt_upload_limit"):
            values[name] = check_limit(value, name)
        elif name in ("run_on_added", "run_on_completed", "run_on_seeding_done"):
            values[name] = check_command(value, name)
        elif name == "run_timeout":
            values[name] = check_seconds(value, name, minimum=1.0)
        elif name in ("slow_torrent_inactive_time", "login_ban_time"):
            values[name] = check_seconds(value, name, minimum=1.0)
        elif name == "stop_tracker_timeout":
            values[name] = check_seconds(value, name, minimum=0.0, maximum=MAX_STOP_TRACKER_TIMEOUT)
        elif name == "resume_save_interval":
            values[name] = check_seconds(value, name, minimum=0.0)
        elif name == "max_concurrent_http_announces":
            values[name] = _int_in(value, name, 1, MAX_HTTP_ANNOUNCES)
        elif name in ("peer_turnover", "peer_turnover_cutoff"):
            values[name] = _int_in(value, name, 0, 100, "must be a whole number of percent from 0 to 100")
        elif name == "peer_turnover_interval":
            values[name] = check_seconds(value, name, minimum=1.0)
        elif name == "rss_refresh_interval":
            values[name] = check_seconds(value, name, minimum=60.0)
        elif name == "rss_max_articles_per_feed":
            values[name] = _int_in(value, name, 1, MAX_FEED_ARTICLES)
        elif name == "rss_fetch_delay":
            values[name] = _int_in(value, name, 0, MAX_FEED_FETCH_DELAY,
                                   f"must be a whole number of seconds from 0 to {MAX_FEED_FETCH_DELAY}")
        elif name == "disk_reserve":
            values[name] = _int_in(value, name, 0, MAX_DISK_RESERVE,
                                   f"must be a whole number of bytes from 0 (none) to {MAX_DISK_RESERVE}")
        elif name == "torrent_file_size_limit":
            values[name] = _int_in(value, name, TORRENT_FILE_LIMIT_LEAST, TORRENT_FILE_LIMIT_MOST,
                                   f"must be a whole number of bytes from {TORRENT_FILE_LIMIT_LEAST} (1 MiB) "
                                   f"to {TORRENT_FILE_LIMIT_MOST} (the largest .torrent this daemon reads)")
        elif name == "rss_smart_episode_filters":
            values[name] = check_patterns(value, name)
        elif name == "login_max_failures":
            values[name] = _int_in(value, name, 0, MAX_LOGIN_FAILURES,
                                   f"must be a whole number from 0 (never refused) to {MAX_LOGIN_FAILURES}")
        elif name in ("slow_torrent_download_rate", "slow_torrent_upload_rate"):
            values[name] = _int(value, name, 0)  # (bytes per second)
        elif name == "watch_folders":
            values[name] = check_watch_folders(value, name, on_disk=not loading)
        elif name == "kept_limits":
            values[name] = check_kept_limits(value, name)
        elif name == "dedup":
            values[name] = _one_of(value, name, DEDUP_MODES)
        elif name == "dedup_folders":
            values[name] = check_dedup_folders(value, name)
        elif name == "watch_interval":
            values[name] = check_seconds(value, name, minimum=0.1)
        elif name in ("alt_schedule_from", "alt_schedule_to"):
            values[name] = check_minute(value, name)
        elif name == "alt_schedule_days":
            values[name] = check_days(value, name)
        elif name == "ip_filter_path":
            values[name] = check_filter_path(value, name, on_disk=not loading)
        elif name == "ip_filter_url":
            values[name] = check_filter_url(value, name)
        elif name == "banned_ips":
            values[name] = check_addresses(value, name)
        elif name == "listen_port":
            values[name] = check_listen_port(value, name)
        elif name == "encryption":
            values[name] = check_encryption(value, name)
        elif name == "transport":
            values[name] = check_transport(value, name)
        elif name == "default_trackers":
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) \
                    or not all(isinstance(t, (list, tuple)) for t in value):
                raise InvalidJobRequest("must be a list of tiers, each a list of tracker URLs", name)
            values[name] = check_tiers(value, name)
        elif name == "stop_condition":
            values[name] = check_stop_condition(value, name)
        elif name == "seeding_choker":
            values[name] = _one_of(value, name, SEEDING_CHOKERS)
        elif name == "announce_ip":
            refusal = announce_ip_refusal(value.strip() if isinstance(value, str) else value)
            if refusal is not None:
                raise InvalidJobRequest(refusal, name)
            values[name] = str(value).strip()
        elif name == "excluded_file_names":
            values[name] = check_name_patterns(value, name)
        elif name == "partial_file_suffix":
            values[name] = check_suffix(value, name)
        elif name in BIND_FIELDS:
            values[name] = check_bind_field(value, name)
        elif name == "proxy_url":
            values[name] = check_proxy_url(value, name)
        elif name in MAIL_ADDRESS_FIELDS:
            values[name] = check_mail_addresses(value, name, many=name == "mail_to")
        elif name == "mail_server":
            values[name] = check_mail_server(value, name)
        elif name in MAIL_TEXT_FIELDS:
            values[name] = check_mail_text(value, name)
        elif name.endswith("_enabled") or name in ("ip_filter_trackers", "block_privileged_ports",
                                                   "multiple_connections_per_ip", "watch_delete_added",
                                                   "recheck_on_completion", "ssrf_mitigation",
                                                   "reannounce_when_address_changed", "random_port",
                                                   "mail_ssl", "limit_lan_peers") \
                or name in PROXY_SWITCHES:
            if not isinstance(value, bool):
                raise InvalidJobRequest("must be true or false", name)
            values[name] = value
        else:
            values[name] = _int(value, name, 0)
    if not loading and any(limit in values for limit in KEPT_LIMITS):
        values["kept_limits"] = _kept_after(current, values)
    new = checked_binding(current, dataclasses.replace(current, **values), values, loading=loading)
    if new.proxy_only and not new.proxy_url and not loading:
        raise InvalidJobRequest("needs a proxy (proxy_url): nothing could leave without one", "proxy_only")
    missing = missing_for_mail(new) if new.mail_enabled and not loading else None
    if missing is not None:
        raise InvalidJobRequest(f"needs {missing} set: no mail can be sent without it", "mail_enabled")
    return new


# What the configuration (the ``Config``: the daemon's flags and config file) asked for when it
# was last applied, by setting: the global rate limits (bytes/s, 0 = none), the download slots
# (``max_active_downloads``, 0 = none), the incomplete folder (``incomplete_dir``, "" = none); and
# the settings of ``ASKED`` as they are named here.
Configured = dict[str, Any]  # Any: the service's configure(**configured) takes it as its keywords
ASKED = ("run_on_added", "run_on_added_enabled", "run_on_completed", "run_on_completed_enabled",
         "run_on_seeding_done", "run_on_seeding_done_enabled", "run_timeout", "watch_folders",
         "watch_enabled", "watch_interval", "proxy_url", "proxy_only",
         "ip_filter_enabled", "ip_filter_path", "ip_filter_url", "ip_filter_trackers", "banned_ips",
         "alt_download_limit", "alt_upload_limit", "alt_schedule_enabled", "alt_schedule_from",
         "alt_schedule_to", "alt_schedule_days", "max_connections", "max_connections_per_torrent",
         "max_uploads", "max_uploads_per_torrent", "connection_speed", "bind_interface",
         "bind_address", "max_active_checking", "listen_port", "random_port", "dht_enabled", "pex_enabled",
         "lsd_enabled", "encryption", "transport", "dedup", "dedup_folders", "disk_reserve")
CONFIGURABLE = ("download_limit", "upload_limit", "max_active_downloads", "incomplete_dir", *ASKED)


@dataclass(frozen=True, slots=True)
class SavedSettings:
    """What ``settings.json`` holds: the settings, and what the configuration asked for when it
    was last applied (None: unknown, no file yet)."""

    settings: ServiceSettings
    configured: Configured | None


def load_settings(state_dir: Path | None) -> SavedSettings:
    """The saved settings (the defaults when there are none, or the file is not a JSON object).
    A setting whose saved value no longer passes its check (e.g. a rate limit above what an
    older version allowed) is dropped alone, with a warning naming it: the others are kept."""
    if state_dir is None:
        return SavedSettings(ServiceSettings(), None)
    path = state_dir / SETTINGS_FILE
    if not path.is_file():
        return SavedSettings(ServiceSettings(), None)
    try:
        raw = json.loads(path.read_bytes())
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable; default settings apply: %s", path, exc)
        return SavedSettings(ServiceSettings(), None)
    seen = raw.pop("configured", None)
    limits = raw.pop("configured_limits", None)  # (as files written before the download slots)
    settings = ServiceSettings()
    for name, value in raw.items():
        try:
            settings = updated(settings, {name: value}, loading=True)  # (one at a time: a bad one goes alone)
        except InvalidJobRequest as exc:
            log.warning("%s: setting %r = %s dropped (its default applies): %s", path, name,
                        _shown(value), exc.reason)
    return SavedSettings(settings, _configured(path, seen, limits, settings))


def _configured(path: Path, seen: object, limits: object, settings: ServiceSettings) -> Configured:
    """What the configuration asked for when it was last applied, as the file notes it (under
    ``configured``, or ``configured_limits`` before the download slots). Not noted, or noted in
    a form this version cannot read (dropped with a warning): the settings' own limits, as for
    a file written before the configuration was noted."""
    if seen is None and limits is not None:
        if isinstance(limits, list) and len(limits) == 2 and all(type(v) is int for v in limits):
            seen = {"download_limit": limits[0], "upload_limit": limits[1]}
        else:
            log.warning("%s: configured_limits = %s dropped: not two whole numbers", path, _shown(limits))
    if isinstance(seen, dict):
        # (a setting this version does not take from the configuration, noted by another: not ours)
        noted = {k: v for k, v in seen.items() if k in CONFIGURABLE}
        if all(type(v) is (str if k == "incomplete_dir" else int)
               for k, v in noted.items() if k not in ASKED):
            return noted
    if seen is not None:
        log.warning("%s: configured = %s dropped: not whole numbers by setting", path, _shown(seen))
    # (a file from before the configuration was noted: what it holds is what applies)
    return {"download_limit": settings.download_limit, "upload_limit": settings.upload_limit}


def _shown(value: object) -> str:
    """A saved value as a warning quotes it (cut short: a damaged file may hold anything)."""
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def save_settings(state_dir: Path | None, saved: SavedSettings) -> None:
    """Write the settings atomically (nothing without a state folder)."""
    if state_dir is not None:
        data = saved.settings.to_json()
        if saved.configured is not None:
            data["configured"] = dict(saved.configured)
        write_atomic(state_dir / SETTINGS_FILE, json.dumps(data).encode())
