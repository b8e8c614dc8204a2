"""The job service's run-time settings: read at the start, changed by the API, the dialects and
the configuration (``configure``: a start, a SIGHUP), switched by the alternative limits'
schedule; applied to the engine (rate limits, peer limits, proxy, interface, IP filter, the
listening port, DHT, PEX, LSD and encryption).
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from ..config import Config
from ..engine.shared import TokenBucket
from ..errors import ConfigError
from ..policy.ipfilter import IpFilter
from .disk.exports import export_folder
from .disk.incomplete import incomplete_folder
from .lifecycle import JobLifecycle
from .model import InvalidJobRequest, StateNotSaved
from .queueing.rounds import QueueRounds
from .store import not_saved
from .tuning.altspeed import effective_limits, scheduled
from .tuning.blocklist import Blocklist
from .tuning.netbind import apply_binding
from .tuning.peerlimits import apply_peer_limits
from .tuning.peernet import apply_peer_network, check_port_free, check_utp_free, choose_port
from .tuning.proxy import apply_proxy, proxy_config
from .tuning.settings import (
    EXPORT_DIRS,
    Configured,
    SavedSettings,
    ServiceSettings,
    load_settings,
    save_settings,
    updated,
)

log = logging.getLogger("torrent_engine.jobs.configure")


SCHEDULE_SETTINGS = frozenset({"alt_schedule_enabled", "alt_schedule_from", "alt_schedule_to",
                               "alt_schedule_days"})


class SettingsControl:
    """The one owner of the run-time settings of the jobs of ``run`` (``settings.json``); a
    change wakes every job and asks ``rounds`` for a round (limits and slots: judged again), and
    is told to each of ``watchers`` (what was, what is), whichever front end made it."""

    def __init__(self, run: JobLifecycle, rounds: QueueRounds, *, state_dir: Path | None,
                 clock: Callable[[], float]) -> None:
        self.run = run
        self.rounds = rounds
        self.state_dir = state_dir
        self._clock = clock
        self.settings = ServiceSettings()
        self.watchers: list[Callable[[ServiceSettings, ServiceSettings], None]] = []
        self.blocklist = Blocklist(lambda: self.settings, self._apply_ip_filter, state_dir=state_dir,
                                   clock=clock)
        self._configured: Configured | None = None  # what the configuration asked for last
        self._alt_scheduled: bool | None = None  # what the schedule said when last looked at
        self._alt_minute = -1  # the minute it was last looked at (once a minute)

    async def load(self, configured: Configured, asked: Mapping[str, object] | None = None) -> None:
        """Read the settings; apply the global rate limits, download slots and incomplete folder
        (``configured``: what the configuration asks, ``configure``'s keywords)."""
        saved = await anyio.to_thread.run_sync(load_settings, self.state_dir)
        self.settings, self._configured = saved.settings, saved.configured
        self.apply_global_limits()
        if self.settings.proxy_url:  # (none saved: a library's own Config.proxy stays)
            await apply_proxy(self.run.manager, self.settings)
        if self.settings.bind_interface:  # (none saved: a library's own Config.bind_interface stays)
            await apply_binding(self.run.manager, self.settings)
        apply_config_fields(self.run.manager.config, ServiceSettings(), self.settings)
        await self.configure(**configured, asked=asked)
        await self._port_at_start()
        await apply_peer_network(self.run.manager, self.settings)  # (a file from before them: the Config's)
        await self.blocklist.refresh()

    async def _port_at_start(self) -> None:
        """The listening port at a start: a new free one when ``random_port`` asks for one at
        each start, or none was chosen yet (a file from before the choice); one kept from an
        earlier start (chosen, or set through the API) that cannot be listened on now (another
        program holds it) is given up for a free one, said in the log. A port the configuration
        names (the daemon's ``--listen-port``) stays as it is asked, whatever ``random_port``
        says: a session then says it is in use when another program holds it."""
        port, asked = self.settings.listen_port, (self._configured or {}).get("listen_port", 0)
        if port != 0 and port == asked:
            return
        if port != 0 and not self.settings.random_port:
            try:
                await self.run.manager.shared.check_listen_port(port)
                return
            except ConfigError as exc:
                if exc.field != "listen_port":  # (the address: no port is better; said as a choice's)
                    raise InvalidJobRequest(exc.reason, exc.field) from None
                log.warning("the listening port kept from the last start is given up for a free one: %s",
                            exc.reason)
        await self.update_settings(listen_port=0)

    def apply_global_limits(self) -> None:
        """Set the shared buckets and peer limits from the settings (the only place they are set)."""
        shared = self.run.manager.shared
        down, up = effective_limits(self.settings)  # (the alternative ones while they are on)
        shared.download_limit = TokenBucket(down)
        shared.upload_limit = TokenBucket(up)
        apply_peer_limits(shared, self.settings)
        shared.set_checking_limit(self.settings.max_active_checking)

    def _apply_ip_filter(self, ip_filter: IpFilter, trackers: bool) -> None:
        self.run.manager.shared.set_ip_filter(ip_filter, trackers=trackers)

    def get_settings(self) -> ServiceSettings:
        """The run-time settings, the global rate limits among them (this object owns them: the
        shared buckets are set from here alone)."""
        return self.settings

    async def update_settings(self, **changes: object) -> ServiceSettings:
        """Change settings (``InvalidJobRequest`` naming a bad one; nothing changes then); saved.
        The one way the global rate limits change: the API, the download-client dialects and
        the configuration (``configure``: a start, a SIGHUP) all come here."""
        await self.run.started()
        new = updated(self.settings, changes)
        if new.listen_port == 0:  # (a free one chosen now, kept from then on)
            new = dataclasses.replace(new, listen_port=await choose_port(self.run.manager))
            log.info("listening port %d chosen for incoming peers, a free one", new.listen_port)
        if new.listen_port != self.settings.listen_port and self.run.running:  # (in use: refused, not saved)
            await check_port_free(self.run.manager, new.listen_port)
        if new.transport != self.settings.transport and self.run.running:  # (uTP turned on: its UDP port)
            check_utp_free(self.run.manager, new.transport)
        if new.incomplete_dir != self.settings.incomplete_dir and new.incomplete_dir:
            folder = await anyio.to_thread.run_sync(incomplete_folder, self.run.download_root, new)
            new = dataclasses.replace(new, incomplete_dir=str(folder))  # (kept absolute)
        folders: dict[str, Any] = {}  # (Any: as replace() takes them)
        for name in EXPORT_DIRS:  # (inside the download root, as a save path; kept absolute)
            folder = getattr(new, name)
            if folder and folder != getattr(self.settings, name):
                kept = await anyio.to_thread.run_sync(export_folder, self.run.download_root, folder, name)
                folders[name] = str(kept)
        new = dataclasses.replace(new, **folders)
        if SCHEDULE_SETTINGS & changes.keys():  # (a schedule set or changed applies at once)
            self._alt_scheduled = scheduled(new, self.run.clock())
            if self._alt_scheduled is not None and "alt_speed_enabled" not in changes:
                new = dataclasses.replace(new, alt_speed_enabled=self._alt_scheduled)
        saved = SavedSettings(new, self._configured)
        try:
            await anyio.to_thread.run_sync(save_settings, self.run.state_dir, saved)
        except OSError as exc:  # (nothing changed: the change is refused, saying where)
            raise not_saved(exc, self.run.state_dir) from exc
        before, self.settings = self.settings, new
        self.apply_global_limits()
        if proxy_config(before) != proxy_config(new):
            await apply_proxy(self.run.manager, new)
        if self.run.loaded or self.run.running:  # (at a start: once every setting is read)
            await self.blocklist.refresh(look_now=True)
        if (before.bind_interface, before.bind_address) != (new.bind_interface, new.bind_address):
            await apply_binding(self.run.manager, new)
        apply_config_fields(self.run.manager.config, before, new)
        try:
            await apply_peer_network(self.run.manager, new)
        except InvalidJobRequest:  # (the port was taken since the check: the old one is kept)
            self.settings = dataclasses.replace(new, listen_port=before.listen_port)
            await anyio.to_thread.run_sync(save_settings, self.run.state_dir,
                                           SavedSettings(self.settings, self._configured))
            raise
        self.run.sleepers.wake_all(self.run.jobs)  # (limits and slots: every job is judged again)
        for watcher in self.watchers:
            watcher(before, self.settings)
        if self.run.running:
            await self.rounds.enforce()
        return self.get_settings()

    async def alt_speed_tick(self, now: float) -> None:
        """Once a minute: at an edge of the alternative limits' window (the schedule's answer
        changed since the last look) they are turned on or off; between edges a manual toggle
        holds, as in qBittorrent and Transmission."""
        minute = int(now // 60)
        if minute == self._alt_minute:
            return
        self._alt_minute = minute
        decision = scheduled(self.settings, now)
        if decision is None or decision == self._alt_scheduled:
            self._alt_scheduled = decision
            return
        self._alt_scheduled = decision
        if decision != self.settings.alt_speed_enabled:
            log.info("alternative rate limits %s by the schedule", "on" if decision else "off")
            try:
                await self.update_settings(alt_speed_enabled=decision)
            except StateNotSaved as exc:
                log.warning("alternative rate limits not switched: %s", exc)
                self._alt_scheduled = None  # (tried again at the next minute)

    async def configure(self, *, download_limit: int, upload_limit: int, max_active_downloads: int = 0,
                        incomplete_dir: str = "",
                        asked: Mapping[str, object] | None = None) -> builtins.list[str]:
        """``JobService.configure``'s work (its docstring says what the configuration changes)."""
        wanted: dict[str, object] = {"download_limit": download_limit, "upload_limit": upload_limit,
                                  "max_active_downloads": max_active_downloads,
                                  "incomplete_dir": incomplete_dir}
        seen = self._configured if self._configured is not None else {}
        changes: dict[str, object] = {}
        for name, value in (asked or {}).items():
            value = list(value) if isinstance(value, tuple) else value  # (as JSON notes it)
            wanted[name] = value
            if seen.get(name) != value:
                changes[name] = value
        for name in ("download_limit", "upload_limit"):
            if seen.get(name) != wanted[name]:
                changes[name] = wanted[name]
        if seen.get("max_active_downloads", 0) != max_active_downloads:  # (not noted: none asked)
            if max_active_downloads > 0:
                changes["max_active_downloads"] = max_active_downloads
                if not self.settings.queueing:
                    changes.update(queueing=True, max_active_uploads=-1, max_active_torrents=-1)
            else:
                changes["max_active_downloads"] = -1  # (no maximum)
        if seen.get("incomplete_dir", "") != incomplete_dir:  # (not noted: none asked)
            changes["incomplete_dir_enabled"] = bool(incomplete_dir)
            if incomplete_dir:
                changes["incomplete_dir"] = incomplete_dir
        before, self._configured = self._configured, wanted
        if changes or seen != wanted:
            try:
                await self.update_settings(**changes)
            except BaseException:  # (refused: not applied, so the same file is judged again)
                self._configured = before
                raise
        return list(changes)


# The settings that are ``Config`` fields of the same name, which the engine reads where it uses
# them (at each announce, each stop, each save, each completion, each tracker or web seed
# request, each turnover's look, each change of our address): set on the manager's Config when
# changed.
CONFIG_FIELDS = ("announce_ip", "stop_tracker_timeout", "resume_save_interval", "recheck_on_completion",
                 "max_concurrent_http_announces", "ssrf_mitigation", "peer_turnover", "peer_turnover_cutoff",
                 "peer_turnover_interval", "reannounce_when_address_changed")


def apply_config_fields(config: Config, before: ServiceSettings, new: ServiceSettings) -> None:
    """The ``CONFIG_FIELDS`` that ``new`` changed from ``before`` set on ``config`` (at the
    start, ``before`` is the defaults: the Config's own value stays unless the setting was
    changed)."""
    for name in CONFIG_FIELDS:
        value = getattr(new, name)
        if value != getattr(before, name):
            setattr(config, name, value)
