"""The job service: background downloads as jobs, with history, persistence and client leases.

``async with JobService(config, download_root="downloads", state_dir="state") as jobs:``
``    job, created = await jobs.add("magnet:?xt=...")`` — see docs/jobs.md.
"""

from __future__ import annotations

from .intake.addoptions import AddOptions
from .lifecycle import CLIENT_SESSION_ENDED
from .model import (
    FINISHED_STATES,
    ClientChanges,
    DuplicateJob,
    Holdings,
    InvalidJobRequest,
    Job,
    JobAdded,
    JobChanges,
    JobConflict,
    JobError,
    JobFeatures,
    JobFile,
    JobNotFound,
    JobOptions,
    JobPeer,
    JobProgress,
    JobRemoved,
    JobResult,
    JobStall,
    JobState,
    JobStateChanged,
    JobTracker,
    JobUpdated,
    Lease,
    LeaseNotFound,
    SavePathError,
    ServiceStarting,
    ServiceStats,
    ServiceStatsEvent,
    ServiceStopped,
    StateNotSaved,
    TransferCounts,
    TransferStats,
)
from .organising.categories import Category
from .service import JobService
from .tuning.settings import ServiceSettings, ShareLimitAction

__all__ = [
    "CLIENT_SESSION_ENDED",
    "Category",
    "ClientChanges",
    "DuplicateJob",
    "Holdings",
    "FINISHED_STATES",
    "InvalidJobRequest",
    "Job",
    "JobAdded",
    "JobChanges",
    "JobConflict",
    "JobError",
    "JobFeatures",
    "JobFile",
    "JobNotFound",
    "AddOptions",
    "JobOptions",
    "JobPeer",
    "JobProgress",
    "JobRemoved",
    "JobResult",
    "JobStall",
    "JobService",
    "JobState",
    "JobStateChanged",
    "JobTracker",
    "JobUpdated",
    "Lease",
    "LeaseNotFound",
    "SavePathError",
    "ServiceStarting",
    "ServiceSettings",
    "ServiceStats",
    "ServiceStatsEvent",
    "ServiceStopped",
    "ShareLimitAction",
    "StateNotSaved",
    "TransferCounts",
    "TransferStats",
]
