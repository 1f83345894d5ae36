"""A progress bar for long benchmark runs."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """A one-line bar on a terminal; one line per step otherwise (logs stay readable)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        filled = self.width * self.done // max(1, self.total)
        elapsed = time.perf_counter() - self.start
        left = elapsed / self.done * (self.total - self.done)
        text = (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                f"{elapsed:.0f} s, ~{left:.0f} s left: {label}")
        if self.tty:
            self.stream.write("\r" + text[: 118].ljust(118))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
