"""Names a package offers but loads only on first use (PEP 562), so importing one sans-I/O core
does not load the shells, anyio or the session layer beside it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

Hooks = tuple[Callable[[str], Any], Callable[[], list[str]]]  # Any: PEP 562's __getattr__, as typeshed has it


def lazy_names(package: str, where: Mapping[str, str]) -> Hooks:
    """``__getattr__`` and ``__dir__`` for ``package``: ``where`` maps a public name to
    ``"module"`` (the same name there) or ``"module:attribute"``."""
    namespace = importlib.import_module(package).__dict__

    def getattr_(name: str) -> Any:  # Any: the name's value is whatever its module defines
        target = where.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(f".{module}", package), attribute or name)
        namespace[name] = value  # the next look-up is an ordinary attribute
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(where))

    return getattr_, dir_
