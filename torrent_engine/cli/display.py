"""What ``download`` and ``demo`` show while they run: one line per torrent, redrawn in place on
a terminal (with rich: a bar, sizes, rates, peers, ETA, state; log lines above it, never in it),
a plain line every few seconds otherwise, or one JSON object per line for scripts."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

import anyio

from ..session import SessionStatus
from ..units import human_bytes
from .units import human_eta

if TYPE_CHECKING:  # (rich is an optional dependency, imported when a RichDisplay is made)
    from rich.table import Table


def _web(st: SessionStatus) -> str:
    return f"+{st.web_seeds} web" if st.web_seeds else ""


def progress_line(label: str, st: SessionStatus) -> str:
    """The plain one-line status (logs, pipes, the demo)."""
    return (f"{label} {st.progress * 100:6.2f}%  {human_bytes(st.have_bytes)}/{human_bytes(st.total_wanted)}"
            f"  {st.state:<11} down {human_bytes(st.download_rate)}/s  up {human_bytes(st.upload_rate)}/s"
            f"  peers {st.peers}{_web(st)}  eta {human_eta(st.eta, st.download_rate)}"
            + (f"  stalled: {st.stall_message}" if st.stall_message else ""))


def status_json(label: str, st: SessionStatus) -> str:
    """One JSON object (``--json``): every status field, the label and a timestamp."""
    fields: dict[str, object] = {"event": "progress", "time": round(time.time(), 3), "label": label}
    fields.update({name: getattr(st, name) for name in st.__dataclass_fields__})
    if st.eta is not None and human_eta(st.eta, st.download_rate) == "--:--":
        fields["eta"] = None
    return json.dumps(fields, separators=(",", ":"))


class ProgressDisplay:
    """Plain lines: redrawn in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, out: TextIO = sys.stderr, *, interval: float = 1.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.interval = interval if self.tty else max(interval, 5.0)
        self._lines = 0

    def show(self, lines: Sequence[str]) -> None:
        """Write ``lines``: in place of the previous ones on a terminal, appended otherwise."""
        if self.tty:
            if self._lines:
                self.out.write(f"\x1b[{self._lines}F")
            for line in lines:
                self.out.write("\x1b[2K" + line + "\n")
            self._lines = len(lines)
        else:
            for line in lines:
                self.out.write(line + "\n")
        self.out.flush()

    async def run(self, source: Callable[[], Sequence[str]]) -> None:
        """Show what ``source()`` returns every ``interval`` seconds until cancelled."""
        while True:
            self.show(source())
            await anyio.sleep(self.interval)


class RichDisplay:
    """A live table on a terminal: one row per torrent with a bar; it fits the terminal's width
    at every redraw (so a resize is followed) and log records print above it."""

    def __init__(self, rows: Callable[[], Sequence[tuple[str, SessionStatus, str]]], *,
                 interval: float = 0.5) -> None:
        from rich.console import Console
        from rich.live import Live

        self.rows = rows
        self.interval = interval
        self.console = Console(stderr=True)
        self.live = Live(console=self.console, auto_refresh=False, transient=False,
                         redirect_stderr=False, redirect_stdout=False)

    def log_handler(self) -> logging.Handler:
        """A logging handler that prints above the live display."""
        from rich.logging import RichHandler

        return RichHandler(console=self.console, show_path=False, show_time=False)

    def _table(self) -> Table:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        width = self.console.size.width
        narrow = width < 100
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(ratio=3, no_wrap=True, overflow="ellipsis")  # name
        table.add_column(ratio=2, min_width=8)  # bar
        table.add_column(no_wrap=True)  # numbers
        for label, st, note in self.rows():
            bar = ProgressBar(total=1.0, completed=st.progress, width=None)
            numbers = f"{st.progress * 100:5.1f}% {human_bytes(st.have_bytes)}/{human_bytes(st.total_wanted)}"
            numbers += f" ↓{human_bytes(st.download_rate)}/s"
            if not narrow:
                numbers += f" ↑{human_bytes(st.upload_rate)}/s peers {st.peers}{_web(st)}"
            numbers += f" {human_eta(st.eta, st.download_rate)} {st.state}"
            table.add_row(label, bar, numbers)
            if note:
                table.add_row(f"  [dim]{note}[/dim]", "", "")
        return table

    def show(self) -> None:
        """Redraw the table now."""
        self.live.update(self._table(), refresh=True)

    async def run(self) -> None:
        """Keep the live display on screen, redrawn every ``interval`` seconds, until cancelled."""
        with self.live:
            while True:
                self.show()
                await anyio.sleep(self.interval)
