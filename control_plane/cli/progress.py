"""A progress line for long commands: ``turnout: applying 37/120``, redrawn in place.

Drawn on standard error only when it is a terminal, so pipes and logs get the command's
results and its final summary, not a stream of counters. Lines the command prints meanwhile go
through :meth:`Progress.print`, which takes the progress line away, prints, and draws it again,
so results and the counter never share a line. Redraws are at most one per ``min_interval``
seconds, except the last, which is always drawn.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_CLEAR = "\r\x1b[K"


class Progress:
    """``label done/total`` (and a short note) on a terminal's standard error."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None,
                 min_interval: float = 0.1) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = _is_terminal(self.stream)
        self.min_interval = min_interval
        self.done = 0
        self.note = ""
        self._shown = False
        self._drawn_at = float("-inf")

    def update(self, done: int, note: str = "") -> None:
        """``done`` of ``total`` are finished; redraw when due (always at the end)."""
        self.done, self.note = done, note
        now = time.monotonic()
        if self.enabled and (done >= self.total or now - self._drawn_at >= self.min_interval):
            self._draw()
            self._drawn_at = now

    def print(self, line: str, *, stream: TextIO | None = None) -> None:
        """Print ``line`` (to standard output by default) without mixing it with the counter."""
        if self._shown:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._shown = False
        print(line, file=stream or sys.stdout, flush=True)
        if self.enabled and self.done:
            self._draw()

    def close(self) -> None:
        """Take the progress line away (the command prints its summary next)."""
        if self._shown:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _draw(self) -> None:
        text = f"turnout: {self.label} {self.done}/{self.total}"
        if self.note:
            text += f"  {self.note}"
        self.stream.write(_CLEAR + text)
        self.stream.flush()
        self._shown = True


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
