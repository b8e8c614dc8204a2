"""The job service is put together from parts that each own one concern and are handed to each
other explicitly: none inherits from another, and no module of jobs/ grows past what a reader
can hold (a class split over files by inheritance level would be one object in disguise)."""

from __future__ import annotations

from pathlib import Path

import torrent_engine.jobs as jobs_package
from torrent_engine.jobs.configure import SettingsControl
from torrent_engine.jobs.control import JobControl
from torrent_engine.jobs.disk.relocate import Mover
from torrent_engine.jobs.edits import JobEdits
from torrent_engine.jobs.intake.adding import JobAdder
from torrent_engine.jobs.lifecycle import JobLifecycle
from torrent_engine.jobs.news import EngineNews
from torrent_engine.jobs.organising.organise import Organiser
from torrent_engine.jobs.queueing.rounds import QueueRounds
from torrent_engine.jobs.restore import Restorer
from torrent_engine.jobs.service import JobService

PARTS = (JobService, JobLifecycle, EngineNews, Restorer, QueueRounds, SettingsControl, Organiser, Mover,
         JobEdits, JobAdder, JobControl)
MOST_LINES = 850


def test_no_part_of_the_service_inherits_from_another() -> None:
    assert {part.__name__: part.__bases__ for part in PARTS} == {part.__name__: (object,) for part in PARTS}


def test_no_module_of_the_job_service_is_longer_than_a_reader_can_hold() -> None:
    folder = Path(jobs_package.__file__).parent
    lengths = {p.name: len(p.read_text().splitlines()) for p in folder.glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MOST_LINES} == {}
