"""Progress of long CLI operations, on stderr: a live display on a terminal, lines in CI.

A sync of 5,000 objects used to be silent for 30 s. The stages report phases (observe,
each apply wave, prune, wait) with counts, and notes (a retried request); how that
shows depends on where stderr goes:

- a terminal: a rich progress bar per phase, notes printed above it, gone at the end;
- anything else (CI logs, a file): plain lines, never wrapped or truncated: one every
  10 s while a phase runs ($SPECC_PROGRESS_EVERY), one when a phase of 1 s or more
  ends, one per note (retries);
- ``SPECC_PROGRESS=off``: nothing. ``SPECC_PROGRESS=tty`` / ``plain`` force a style.

Progress never writes to stdout, so ``-o json`` output stays a single document.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

#: Seconds between the plain lines of a running phase.
EVERY = 10.0


class Progress:
    """What a stage reports; this base reports nothing (the agent, library callers)."""

    def phase(self, name: str, total: int | None = None) -> None:
        """Start phase ``name`` (ending the previous one) of ``total`` items, if counted."""

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items of the current phase done."""

    def update(self, done: int, detail: str = "") -> None:
        """Set the current phase's count (and what it is waiting for) outright."""

    def note(self, text: str) -> None:
        """Report one event worth a line of its own (a retried request)."""

    def close(self) -> None:
        """End the last phase."""


NULL = Progress()


class LineProgress(Progress):
    """Plain lines: every ``every`` seconds while a phase runs (from a ticker thread, so a
    phase that counts nothing still shows it is alive), then its end, with its count and
    duration. A phase shorter than ``quiet`` seconds says nothing: a quick command's log
    stays as it was. Notes always print."""

    def __init__(
        self,
        prefix: str,
        stream: IO[str] | None = None,
        every: float = EVERY,
        quiet: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.quiet = min(quiet, every)
        self.clock = clock
        self._lock = threading.Lock()
        self._name = ""
        self._total: int | None = None
        self._done = 0
        self._detail = ""
        self._started = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _line(self, text: str) -> None:
        self.stream.write(f"{self.prefix}: {text}\n")
        self.stream.flush()

    def _state(self) -> str:
        text = self._name
        if self._total is not None:
            text += f": {self._done}/{self._total}"
        elif self._done:
            text += f": {self._done}"
        if self._detail:
            text += f" ({self._detail})"
        return text

    def _end(self) -> None:
        if self._name:
            elapsed = self.clock() - self._started
            if elapsed >= self.quiet:
                self._line(f"{self._state()}, done in {elapsed:.1f} s")
        self._name = ""

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                if self._name:
                    self._line(f"{self._state()}, {self.clock() - self._started:.0f} s")

    def phase(self, name: str, total: int | None = None) -> None:
        with self._lock:
            self._end()
            self._name, self._total, self._done, self._detail = name, total, 0, ""
            self._started = self.clock()
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n

    def update(self, done: int, detail: str = "") -> None:
        with self._lock:
            self._done, self._detail = done, detail

    def note(self, text: str) -> None:
        with self._lock:
            self._line(text)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self._stop.clear()
        with self._lock:
            self._end()


class RichProgress(Progress):
    """A rich progress display on the terminal; notes printed above it."""

    def __init__(self, prefix: str, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bars

        # Forced: SPECC_PROGRESS=tty means the live display even where rich would not guess it.
        self.console = console or Console(stderr=True, highlight=False, force_terminal=True)
        self.prefix = prefix
        self._bars = Bars(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=self.console,
            transient=True,
        )
        self._task: Any = None
        self._lock = threading.Lock()
        self._running = False

    def phase(self, name: str, total: int | None = None) -> None:
        with self._lock:
            if not self._running:  # first phase, or a phase after close()
                self._bars.start()
                self._running = True
            if self._task is not None:
                self._bars.remove_task(self._task)
            self._task = self._bars.add_task(f"{self.prefix}: {name}", total=total, detail="")

    def advance(self, n: int = 1) -> None:
        with self._lock:
            if self._task is not None:
                self._bars.advance(self._task, n)

    def update(self, done: int, detail: str = "") -> None:
        with self._lock:
            if self._task is not None:
                self._bars.update(self._task, completed=done, detail=detail)

    def note(self, text: str) -> None:
        from rich.markup import escape

        self._bars.console.print(
            f"[yellow]{escape(self.prefix)}:[/] {escape(text)}", highlight=False
        )

    def close(self) -> None:
        with self._lock:
            if self._running:
                self._bars.stop()
                self._running = False


def style(stream: IO[str] | None = None) -> str:
    """Return "tty", "plain" or "off": $SPECC_PROGRESS, else whether stderr is a terminal."""
    chosen = os.environ.get("SPECC_PROGRESS", "auto").lower()
    if chosen in ("tty", "plain", "off"):
        return chosen
    stream = stream if stream is not None else sys.stderr
    return "tty" if stream.isatty() else "plain"


def for_stderr(prefix: str) -> Progress:
    """Return the progress reporter for this process's stderr (see the module docstring)."""
    chosen = style()
    if chosen == "off":
        return Progress()
    if chosen == "tty":
        return RichProgress(prefix)
    try:
        every = float(os.environ.get("SPECC_PROGRESS_EVERY") or EVERY)
    except ValueError:
        every = EVERY
    return LineProgress(prefix, every=max(every, 0.01))
