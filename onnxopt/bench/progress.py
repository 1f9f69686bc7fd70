"""A minimal progress bar on stderr: drawn only on a TTY (or when forced), never when quiet."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

WIDTH = 24
REDRAW_S = 0.1


class ProgressBar:
    """``label [#####-----] done/total``, redrawn in place at most every 0.1 s; ``enabled=None``: on a TTY."""

    def __init__(self, label: str, total: int, enabled: Optional[bool] = None, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._drawn_at = -REDRAW_S

    def update(self, done: int) -> None:
        """Show ``done`` of ``total`` steps."""
        self.done = min(done, self.total)
        now = time.monotonic()
        if self.enabled and (self.done == self.total or now - self._drawn_at >= REDRAW_S):
            self._drawn_at = now
            filled = WIDTH * self.done // self.total
            self.stream.write(f"\r{self.label} [{'#' * filled}{'-' * (WIDTH - filled)}] {self.done}/{self.total}")
            self.stream.flush()

    def close(self) -> None:
        """Draw the finished bar and end its line."""
        if self.enabled:
            if self.done < self.total:
                self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()
