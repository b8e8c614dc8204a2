"""What an add asks besides the torrent: ``AddOptions``, every option a job can be given at its
add, checked once as a front end builds it (``InvalidJobRequest`` naming the field) and carried
unchanged to ``JobService.add`` (what to add is ``addtorrent.AddTorrent``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import InvalidJobRequest, JobFeatures, check_stop_condition
from ..organising.features import check_features
from ..tuning.peerlimits import check_job_peers
from ..validate import check_add_priorities, check_file_indices, check_limit, check_peers


@dataclass(frozen=True, slots=True)
class AddOptions:
    """Every option an add can give a job, as a front end read it from its wire format; checked
    as it is built (``InvalidJobRequest`` naming the field), carried unchanged to the add, which
    checks only what needs the torrent (file indices in range). A batch of adds shares one."""

    save_path: str | None = None  # None: the category's folder, else the download root
    files: tuple[int, ...] | None = None  # the files to download (None: all), sorted, unique
    sequential: bool = False
    paused: bool | None = None  # None: the settings' (``add_paused``)
    peers: tuple[tuple[str, int], ...] = ()
    client: str | None = None
    features: JobFeatures | None = None
    download_limit: int = 0
    upload_limit: int = 0
    seed_mode: bool = False  # the data is complete on disk: seed at once, verify each piece when served
    # the folder for the data while it downloads (moved to the save path once complete): None =
    # the service's setting decides (``incomplete_dir_enabled``), "" = none for this job
    download_path: str | None = None
    # (file index, priority 1..7, or 0: skip), over the selection's; sorted by index, one each.
    # A .torrent's alone (a magnet's files are not known at the add)
    file_priorities: tuple[tuple[int, int], ...] = ()
    # first in the queue rather than last (qBittorrent's addToTopOfQueue); None: the settings'
    # (``add_to_top_of_queue``)
    queue_top: bool | None = None
    max_peers: int = 0  # the job's connections at most; 0: the setting for every torrent
    owner: str = ""  # the user adding it ("": the admin's)
    # when the job stops by itself (``model.STOP_CONDITIONS``); None: the settings' (``stop_condition``)
    stop_condition: str | None = None

    def __post_init__(self) -> None:
        def set_(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        # (where a path leads is checked against the download root at the add)
        if self.save_path is not None and not isinstance(self.save_path, str):
            raise InvalidJobRequest("must be a path", "save_path")
        if self.download_path is not None and not isinstance(self.download_path, str):
            raise InvalidJobRequest("must be a path, or \"\" for none", "download_path")
        if not isinstance(self.owner, str):
            raise InvalidJobRequest("must be a user name", "owner")
        if self.client is not None and not isinstance(self.client, str):
            raise InvalidJobRequest("must be a lease id", "client")
        if self.features is not None and not isinstance(self.features, JobFeatures):
            raise InvalidJobRequest("must be JobFeatures", "features")
        for name in ("sequential", "paused", "seed_mode", "queue_top"):
            if not isinstance(getattr(self, name), bool) and not (name in ("paused", "queue_top")
                                                                  and getattr(self, name) is None):
                raise InvalidJobRequest(f"must be true or false, not {getattr(self, name)!r}", name)
        set_("files", check_file_indices(self.files))
        set_("peers", check_peers(self.peers))
        set_("download_limit", check_limit(self.download_limit, "download_limit"))
        set_("upload_limit", check_limit(self.upload_limit, "upload_limit"))
        set_("features", check_features(self.features))
        set_("file_priorities", check_add_priorities(self.file_priorities, self.files))
        set_("max_peers", check_job_peers(self.max_peers, "max_peers"))
        if self.stop_condition is not None:
            check_stop_condition(self.stop_condition, "stop_condition")
