"""What qBittorrent's WebAPI asks to read and edit a torrent's web seeds (``torrents/webseeds``,
``addWebSeeds``, ``editWebSeed``, ``removeWebSeeds``, WebAPI 2.11.3), turned into the job
service's ``web_seeds`` and ``set_web_seeds`` (the list edits themselves are
``jobs/webseeds.py``'s), with qBittorrent's answers (its ``torrentscontroller.cpp``). Translators
only: every URL is checked before anything changes.
"""

from __future__ import annotations

from urllib.parse import unquote

from ...jobs import Job, JobService
from ...jobs.webseeds import add_web_seeds, check_web_seed, remove_web_seeds
from .qbittorrent_records import QbtError

__all__ = ["qbt_add_web_seeds", "qbt_edit_web_seed", "qbt_remove_web_seeds", "qbt_web_seeds", "web_seed_urls"]


def _checked(value: str, field: str) -> str:
    """One URL as qBittorrent's ``validateWebSeedUrl`` takes it: percent-decoded, then http(s);
    ``InvalidJobRequest`` (a 400) naming it otherwise."""
    return check_web_seed(unquote(value), field)


def web_seed_urls(value: str, field: str = "urls") -> list[str]:
    """``urls``: URLs joined by "|" (empty ones skipped), each checked."""
    return [_checked(u, field) for u in value.split("|") if u]


def qbt_web_seeds(service: JobService, job: Job) -> list[dict[str, str]]:
    """``torrents/webseeds`` ``hash``: ``[{"url": ...}, ...]``, the job's web seeds as edited."""
    return [{"url": url} for url in service.web_seeds(job.id)]


async def qbt_add_web_seeds(service: JobService, job: Job, urls: str) -> None:
    """``torrents/addWebSeeds`` ``hash``, ``urls`` ("|"-joined): those the torrent lacks are added
    (asked at once while it downloads); one URL that is not http(s) is a 400, nothing added."""
    seeds = service.web_seeds(job.id)
    edited = add_web_seeds(seeds, web_seed_urls(urls), "urls")
    if edited != seeds:
        await service.set_web_seeds(job.id, edited, "urls")


async def qbt_edit_web_seed(service: JobService, job: Job, orig_url: str, new_url: str) -> None:
    """``torrents/editWebSeed`` ``hash``, ``origUrl``, ``newUrl``: 400 for either not an http(s)
    URL, 409 when ``origUrl`` is not the torrent's; else ``origUrl`` removed and ``newUrl``
    added (as qBittorrent: a ``newUrl`` the torrent has already just stays)."""
    orig, new = _checked(orig_url, "origUrl"), _checked(new_url, "newUrl")
    if new == orig:
        return
    seeds = service.web_seeds(job.id)
    if orig not in seeds:
        raise QbtError(409, f'"{orig}" is not an existing URL')
    edited = add_web_seeds(remove_web_seeds(seeds, [orig]), [new], "newUrl")
    await service.set_web_seeds(job.id, edited, "newUrl")


async def qbt_remove_web_seeds(service: JobService, job: Job, urls: str) -> None:
    """``torrents/removeWebSeeds`` ``hash``, ``urls`` ("|"-joined): those the torrent has stop at
    once, the others are passed over; one URL that is not http(s) is a 400, nothing removed."""
    seeds = service.web_seeds(job.id)
    edited = remove_web_seeds(seeds, web_seed_urls(urls))
    if edited != seeds:
        await service.set_web_seeds(job.id, edited, "urls")
