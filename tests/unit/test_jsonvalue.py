"""JSON received at the engine's edges: the narrowing helpers name the field that was wrong."""

from __future__ import annotations

import pytest

from torrent_engine.errors import TorrentEngineError
from torrent_engine.jsonvalue import JSONFieldError, as_float_text, as_str


def test_a_number_is_read_as_float_reads_it() -> None:
    assert [as_float_text(v, "ratio") for v in (2, 1.5, "0.25", True)] == [2.0, 1.5, 0.25, 1.0]


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, "x", ""])
def test_anything_else_is_an_error_naming_the_field(value: object) -> None:
    with pytest.raises(JSONFieldError) as caught:
        as_float_text(value, "max_ratio")
    assert caught.value.field == "max_ratio" and str(caught.value).startswith("max_ratio: expected a number")
    assert isinstance(caught.value, TorrentEngineError) and isinstance(caught.value, ValueError)


def test_a_string_or_an_error_naming_the_field() -> None:
    assert as_str("dl", "download-dir") == "dl"
    with pytest.raises(JSONFieldError, match="^download-dir: expected a string, got 5$"):
        as_str(5, "download-dir")
