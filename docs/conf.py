"""Sphinx configuration of the documentation site: the pages of docs/ (MyST markdown) and an API
reference built by autodoc from the package's own signatures and docstrings.

Built by tools/test.sh with warnings as errors, offline (no intersphinx):
``python -m sphinx -E -W --keep-going -n -b html docs build/docs``. Besides Sphinx's own checks
(nitpicky: every cross-reference must resolve), this file makes these warnings:
- a documented object (class, function, method, property) without a docstring;
- a name of ``torrent_engine.__all__`` (or of the ``__all__`` of a module the reference documents
  whole) that the reference does not show;
- a cross-reference to a name that does not exist (one that exists but is not part of the
  reference, such as an internal type in a signature, is shown as plain text).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import io
import pkgutil
import sys
import tokenize
from pathlib import Path
from types import ModuleType
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torrent_engine  # noqa: E402

project = "torrent_engine"
author = "the torrent_engine authors"
copyright = "the torrent_engine authors"
release = version = torrent_engine.__version__

extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "furo"
html_title = f"torrent_engine {version}"
html_static_path: list[str] = []

nitpicky = True  # every cross-reference must resolve (see _resolve below for the rule)
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "separated"  # the constructor's signature apart from the class's
autodoc_default_options = {"undoc-members": True}  # then an undocumented member is seen (and refused)
add_module_names = False
myst_heading_anchors = 4  # links such as jobs.md#persistence
myst_enable_extensions = ["colon_fence"]
# Code shown with "…" for what is left out does not lex as JSON or shell: shown unhighlighted.
suppress_warnings = ["misc.highlighting_failure"]

log = logging.getLogger("torrent_engine.docs")

# Modules whose whole ``__all__`` the reference documents (``automodule`` with ``:members:``).
WHOLE_MODULES = ("torrent_engine.events", "torrent_engine.errors")

# id(object) -> the name the reference shows it under (from the Python domain, once read).
_documented: dict[int, str] = {}
_DESCRIBED = {"class", "exception", "function", "method", "property", "module"}


def _collect(env: Any) -> None:
    """Map every object the reference describes to its entry; warn for one without a docstring."""
    if _documented:
        return
    for name, entry in sorted(env.get_domain("py").objects.items()):
        if entry.aliased:
            continue
        found, obj = _find(name, None)
        if not found:
            continue
        _documented.setdefault(id(obj), name)
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        dunder = name.rsplit(".", 1)[-1].startswith("__")  # described by its class
        if entry.objtype in _DESCRIBED and not inspect.getdoc(obj) and not dunder:
            log.warning("%s %s has no docstring", entry.objtype, name, type="torrent_engine",
                        subtype="docstring", location=(entry.docname, None))


def _skip_member(app: Sphinx, what: str, name: str, obj: object, skip: bool, options: Any) -> bool | None:
    if name.startswith("_"):
        return True
    if what in ("class", "exception") and not (callable(obj) or isinstance(obj, property)):
        # dataclass fields, slots and class constants: described by the class's docstring
        # (event fields in docs/events.md, Config's fields by the table of config.rst)
        return True
    return None


def _find(target: str, module: str | None) -> tuple[bool, object]:
    """Whether ``target`` (dotted, or a bare name seen from ``module``) names something real."""
    candidates = [target]
    if module:
        candidates.append(f"{module}.{target}")
    for candidate in candidates:
        parts = candidate.split(".")
        try:
            obj: object = importlib.import_module(parts[0])
        except ImportError:
            continue
        for depth, part in enumerate(parts[1:], 2):
            if hasattr(obj, part):  # an attribute first: te.bencode is a function, not the module
                obj = getattr(obj, part)
                continue
            try:
                obj = importlib.import_module(".".join(parts[:depth]))
            except ImportError:
                break
        else:
            return True, obj
    if "." not in target:
        import builtins
        if hasattr(builtins, target):
            return True, getattr(builtins, target)
        # an annotation written as a bare name (``Torrent``): the engine's modules that define it
        for loaded in _engine_modules():
            if hasattr(loaded, target):
                return True, getattr(loaded, target)
    return False, None


_modules: list[ModuleType] = []


def _engine_modules() -> list[ModuleType]:
    """Every module of the package (imported once, on the first bare name to look up)."""
    if not _modules:
        for info in pkgutil.walk_packages(torrent_engine.__path__, "torrent_engine."):
            if not info.name.endswith("__main__"):
                _modules.append(importlib.import_module(info.name))
    return _modules


def _resolve(app: Sphinx, env: Any, node: Any, contnode: nodes.Element) -> nodes.Element | None:
    """A reference Sphinx could not resolve: to the reference's entry when the object is
    documented under another name (``torrent_engine.session.core.Session`` is shown as
    ``torrent_engine.Session``); plain text when it exists outside the reference (the standard
    library, anyio, an internal type); a warning (by returning None) when it names nothing."""
    if node.get("refdomain") != "py":
        return None
    _collect(env)
    target = node["reftarget"]
    found, obj = _find(target, node.get("py:module"))
    if not found and node.get("py:class"):
        found, obj = _find(f"{node['py:class']}.{target}", node.get("py:module"))
    if not found:
        return None
    shown = _documented.get(id(obj))
    if shown is not None and shown != target:
        domain = env.get_domain("py")
        ref = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], shown, node, contnode)
        if ref is None:
            ref = domain.resolve_any_xref(env, node["refdoc"], app.builder, shown, node, contnode)
            ref = ref[0][1] if ref else None
        if ref is not None:
            return ref
    return contnode


def _check_complete(app: Sphinx, env: Any) -> None:
    """Every object the reference shows has a docstring; every public name is in the reference."""
    _collect(env)
    wanted: dict[str, object] = {}
    for name in torrent_engine.__all__:
        if name != "__version__":
            wanted[f"torrent_engine.{name}"] = getattr(torrent_engine, name)
    for module_name in WHOLE_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) or callable(value):
                wanted[f"{module_name}.{name}"] = value
    for name, obj in wanted.items():
        if id(obj) not in _documented:
            log.warning("%s is public (in __all__) but not in the API reference", name,
                        type="torrent_engine", subtype="missing")


class ConfigFields(Directive):
    """``.. config-fields::`` — a table of ``Config``'s fields: name, type, default, unit and the
    comment written above the field (a field without a comment of its own shares the one above it)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """The table, as nodes."""
        from torrent_engine import config

        source = Path(config.__file__).read_text()
        comments: dict[int, str] = {}
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string.lstrip("#").strip()
        tree = ast.parse(source)
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
        lines = source.splitlines()
        rows = []
        group = ""
        fields = {f.name: f for f in dataclasses.fields(config.Config)}
        for statement in cls.body:
            if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
                continue
            name = statement.target.id
            above = []
            line = statement.lineno - 1
            while line >= 1 and lines[line - 1].strip().startswith("#"):
                above.insert(0, comments.get(line, ""))
                line -= 1
            if above:
                group = " ".join(above)
            trailing = comments.get(statement.lineno, "")
            text = " ".join(filter(None, [group if above or not trailing else "", trailing])) or group
            if not text:
                self.state.document.reporter.warning(f"Config.{name} has no comment saying what it is")
            f = fields[name]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append((name, ast.unparse(statement.annotation), repr(default), _unit(name, default), text))
        table = [".. list-table::", "   :header-rows: 1", "   :widths: 18 16 14 8 44", "",
                 "   * - field", "     - type", "     - default", "     - unit", "     - meaning"]
        for name, kind, default, unit, text in rows:
            table += [f"   * - ``{name}``", f"     - ``{kind}``", f"     - ``{default}``", f"     - {unit}",
                      f"     - {_escape(text)}"]
        container = nodes.container()
        self.state.nested_parse(StringList(table), self.content_offset, container)
        return container.children


def _unit(name: str, default: object) -> str:
    if isinstance(default, float):
        return "seconds"  # every float setting is a duration
    if name.endswith("_rate_limit"):
        return "bytes/s"
    if name.endswith("_bytes"):
        return "bytes"
    return ""


def _escape(text: str) -> str:
    for char in "*`|_\\":
        text = text.replace(char, "\\" + char)
    return text


# Pages outside docs/ that the pages link to, and the page of the site that includes each.
INCLUDED = {"../bench/RESULTS.md": "benchmarks.md"}


def _links_to_included(app: Sphinx, docname: str, source: list[str]) -> None:
    for outside, page in INCLUDED.items():
        source[0] = source[0].replace(f"]({outside})", f"]({page})")


def setup(app: Sphinx) -> dict[str, Any]:
    """Sphinx's hook for this file's checks."""
    app.connect("source-read", _links_to_included)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("missing-reference", _resolve)
    app.connect("env-check-consistency", _check_complete)
    app.add_directive("config-fields", ConfigFields)
    return {"parallel_read_safe": False}
