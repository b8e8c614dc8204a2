"""A limit's value kept while it is off (``ServiceSettings.kept_limits``): what it was when
turned off, shown again when turned on, as Transmission keeps a limit's value beside its switch;
checked on the way in, and saved with the other settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrent_engine.jobs.model import InvalidJobRequest
from torrent_engine.jobs.tuning.settings import (
    SavedSettings,
    ServiceSettings,
    load_settings,
    save_settings,
    updated,
)


def test_a_limit_turned_off_keeps_the_value_it_had_until_it_is_on_again() -> None:
    s = updated(ServiceSettings(), {"download_limit": 250_000, "ratio_limit": 1.5})
    assert s.kept_limits == ()
    s = updated(s, {"download_limit": 0, "ratio_limit": -1})
    assert s.kept("download_limit") == 250_000 and s.kept("ratio_limit") == 1.5
    assert s.to_json()["kept_limits"] == {"download_limit": 250_000, "ratio_limit": 1.5}
    s = updated(s, {"upload_limit": 0})  # (off already: nothing to keep)
    assert s.kept("upload_limit") is None
    s = updated(s, {"download_limit": 300_000})
    assert s.kept("download_limit") is None and s.kept("ratio_limit") == 1.5


def test_a_share_limit_of_zero_is_a_value_kept() -> None:
    s = updated(ServiceSettings(), {"ratio_limit": 0.0})
    assert updated(s, {"ratio_limit": -1}).kept("ratio_limit") == 0.0
    assert updated(ServiceSettings(), {"kept_limits": {"ratio_limit": 0}}).kept("ratio_limit") == 0.0


def test_a_value_given_with_its_limit_off_is_kept_for_when_it_is_on() -> None:
    s = updated(ServiceSettings(upload_limit=50_000),
                {"upload_limit": 0, "kept_limits": {"upload_limit": 70_000, "idle_seeding_limit": 600}})
    assert s.upload_limit == 0
    assert dict(s.kept_limits) == {"upload_limit": 70_000, "idle_seeding_limit": 600.0}


@pytest.mark.parametrize(("value", "said"), [
    ([["download_limit", 1]], "must be an object"),
    ({"max_uploads": 3}, "'max_uploads' is not a limit whose value is kept"),
    ({"download_limit": 0}, "a kept value is one the limit has while on"),
    ({"ratio_limit": -1}, "a kept value is one the limit has while on"),
    ({"download_limit": -5}, "must be a whole number of bytes per second"),
    ({"ratio_limit": "x"}, "must be a number"),
])
def test_a_bad_kept_value_is_refused_naming_it(value: object, said: str) -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        updated(ServiceSettings(), {"kept_limits": value})
    assert said in caught.value.reason and caught.value.field.startswith("kept_limits")


def test_kept_values_are_saved_and_read_again(tmp_path: Path) -> None:
    s = updated(updated(ServiceSettings(), {"upload_limit": 40_000}), {"upload_limit": 0})
    save_settings(tmp_path, SavedSettings(s, None))
    assert load_settings(tmp_path).settings.kept("upload_limit") == 40_000
