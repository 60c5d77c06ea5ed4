"""The runner's terminal without -v: what a notebook's kernel prints (its stdout and stderr,
which papermill hands to stdout_file/stderr_file) is read, not shown; a line every `every`
seconds at most and at least says which notebook runs, the loop it is in (its progress bar's
description, k/n and the time the bar estimates for the rest of the loop), the epoch of the
fit now running, and the notebook's time so far, so the terminal is never silent for long.

    [2/5] 02_resnet ...
      02_resnet 0:01:10: 02 seeds 1/2, about 0:01:02 left in it; epoch 7/20
"""

from __future__ import annotations

import re
import sys
import threading
import time

EPOCH = re.compile(r"^epoch (\d+)/(\d+)\b")
# tqdm's plain-text bar: "desc:  40%|####      | 2/5 [00:12<00:18, ...]"
BAR = re.compile(r"^(?P<desc>[^\r\n]*?):\s+\d+%\|[^|]*\|\s*(?P<k>\d+)/(?P<n>\d+)\s+"
                 r"\[(?P<spent>[\d:]+)<(?P<left>[\d:?]+)")


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Stream:
    """A file-like object papermill writes a kernel's stream into."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def write(self, text: str) -> int:
        self.progress.feed(text)
        return len(text)

    def flush(self) -> None:
        pass


class Progress:
    """Watches one notebook's output; a context manager that prints a status line at least
    every `every` seconds (and when a loop advances, at most every `least` seconds)."""

    def __init__(self, stem: str, every: float = 30.0, least: float = 10.0, out=None):
        self.stem, self.every, self.least = stem, every, least
        self.out = out or sys.stdout
        self.bar: dict | None = None
        self.epoch: tuple[int, int] | None = None
        self.stdout, self.stderr = _Stream(self), _Stream(self)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._changed = False

    def feed(self, text: str) -> None:
        """Read what the kernel printed: its bars' last state and the last epoch line."""
        with self._lock:
            for piece in re.split(r"[\r\n]+", text):
                piece = piece.strip()
                if m := EPOCH.match(piece):
                    self.epoch = (int(m[1]), int(m[2]))
                elif m := BAR.match(piece):
                    bar = {"desc": m["desc"].strip(), "k": int(m["k"]), "n": int(m["n"]),
                           "left": m["left"]}
                    if self.bar is None or (bar["desc"], bar["k"]) != (self.bar["desc"],
                                                                       self.bar["k"]):
                        self._changed = True
                        if self.bar is None or bar["desc"] != self.bar["desc"]:
                            self.epoch = None  # a new loop: the last fit's epoch is history
                    self.bar = bar

    def line(self, seconds: float) -> str:
        """'  02_resnet 0:01:10: 02 seeds 1/2, about 0:01:02 left in it; epoch 7/20'."""
        with self._lock:
            parts = []
            if self.bar:
                b = self.bar
                left = "" if "?" in b["left"] else f", about {b['left']} left in it"
                parts.append(f"{b['desc']} {b['k']}/{b['n']}{left}")
            if self.epoch:
                parts.append(f"epoch {self.epoch[0]}/{self.epoch[1]}")
            self._changed = False
        return f"  {self.stem} {_clock(seconds)}: " + ("; ".join(parts) or "running")

    def _watch(self) -> None:
        t0 = last = time.monotonic()
        while not self._stop.wait(min(1.0, self.every / 4)):
            now = time.monotonic()
            if now - last >= self.every or (self._changed and now - last >= self.least):
                print(self.line(now - t0), file=self.out, flush=True)
                last = now

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
