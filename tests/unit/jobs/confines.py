"""The save paths a module asks ``confine`` to resolve, counted: a test of work that must resolve
each save path once (a restart, a batch of adds) tells how many times it did."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


def counted_confines(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[str | None]:
    """The save paths ``module.confine`` is asked for from now on, one entry a call (the answers
    as the real one gives them)."""
    asked: list[str | None] = []
    real = module.confine

    def counted(root: Path, save_path: str | None) -> Path:
        asked.append(save_path)
        return real(root, save_path)  # type: ignore[no-any-return]

    monkeypatch.setattr(module, "confine", counted)
    return asked
