"""What a run's terminal shows: without -v, a status line at least every 30 s read from the
kernel's output (Progress); always, stderr without the kernels' noise (quiet_kernel_noise)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time

EPOCH = re.compile(r"^epoch (\d+)/(\d+)\b")
# tqdm's plain-text bar: "desc:  40%|####      | 2/5 [00:12<00:18, ...]"
BAR = re.compile(r"^(?P<desc>[^\r\n]*?):\s+\d+%\|[^|]*\|\s*(?P<k>\d+)/(?P<n>\d+)\s+"
                 r"\[(?P<spent>[\d:]+)<(?P<left>[\d:?]+)")


class Progress:
    """A file for a notebook's output (.stdout, .stderr too), printing a status line every `every`
    seconds, and when a loop (its tqdm bar) advances, at most every `least` seconds."""

    def __init__(self, stem: str, every: float = 30.0, least: float = 10.0, out=None):
        self.stem, self.every, self.least, self.out = stem, every, least, out or sys.stdout
        self.bar: dict | None = None
        self.epoch: str | None = None
        self.stdout = self.stderr = self
        self._lock, self._stop, self._changed = threading.Lock(), threading.Event(), False

    def write(self, text: str) -> int:
        """Read what the kernel printed: its bars' last state and the last epoch line."""
        with self._lock:
            for piece in re.split(r"[\r\n]+", text):
                if m := EPOCH.match(piece.strip()):
                    self.epoch = f"epoch {m[1]}/{m[2]}"
                elif m := BAR.match(piece.strip()):
                    old, self.bar = self.bar or {}, {**m.groupdict(), "desc": m["desc"].strip()}
                    self._changed |= (old.get("desc"), old.get("k")) != (self.bar["desc"], m["k"])
                    if old.get("desc") != self.bar["desc"]:
                        self.epoch = None  # a new loop: the last fit's epoch is history
        return len(text)

    def flush(self) -> None:
        pass

    def line(self, seconds: float) -> str:
        """'  02_resnet 0:01:10: 02 seeds 1/2, about 01:02 left in it; epoch 7/20'."""
        with self._lock:
            parts = [self.epoch] if self.epoch else []
            if b := self.bar:
                left = "" if "?" in b["left"] else f", about {b['left']} left in it"
                parts.insert(0, f"{b['desc']} {b['k']}/{b['n']}{left}")
            self._changed = False
        s = int(seconds)
        return f"  {self.stem} {s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}: " + (
            "; ".join(parts) or "running")

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

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


# TensorFlow's cuInit error and absl's banner on a CPU-only machine, ipykernel's chatter
NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|^[IWE]\d{4} [\d:.]+\s+\d+ (cuda_platform|cuda_executor|cudart_stub|port|cuda_diagnostics)"
    r"\.cc:\d+\]"
    r"|\[IPKernelApp\] ERROR \| KeyboardInterrupt caught in kernel"
    r"|^Kernel died while waiting for execute reply\.$"  # nbclient's; the runner's error says it
)
# A kernel shut down mid-cell (Ctrl-C in the runner) logs a traceback that ends in ZMQError:
# its reply meets the socket the shutdown closed. Only that traceback is dropped, whole.
SHUTDOWN_START = "[IPKernelApp] ERROR | Exception in message handler:"
SHUTDOWN_END = re.compile(r"^zmq\.error\.ZMQError\b")
# Ray's dump for a SIGTERM we sent: a header, then "PC: @ 0x..." and "    @ 0x..." frames, each
# twice (raw, then via Ray's logging.cc). A dump for another signal (a real crash) passes.
_LOGGED = r"^(\[[^\]]*\] logging\.cc:\d+: )?"
TERM_DUMP_START = re.compile(_LOGGED + r"\*\*\* SIGTERM received at time=\d+")
TERM_DUMP_LINE = re.compile(_LOGGED + r"(PC: )?\s*@\s+0x[0-9a-fA-F]+")


def shown(lines):
    """The lines of stderr worth showing: noise dropped; a kernel's shutdown traceback held
    until its last line says whether it is the harmless ZMQError (dropped) or not (shown)."""
    held, in_dump = None, False
    for line in lines:
        in_dump = bool(TERM_DUMP_START.match(line) or in_dump and TERM_DUMP_LINE.match(line))
        if in_dump:
            continue
        if held is None:
            if SHUTDOWN_START in line:
                held = [line]
            elif not NOISE.search(line):
                yield line
            continue
        held.append(line)
        inside = line.startswith((" ", "\t", "Traceback", "^")) or not line.strip()
        if not inside or len(held) >= 200:
            if not SHUTDOWN_END.match(line):
                yield from held
            held = None
    yield from held or []


def _pump(read_fd: int, write_fd: int) -> None:
    """read_fd through shown() to write_fd; lines end at \\n or \\r: a bar's redraws pass."""
    with (open(read_fd, encoding="utf-8", errors="replace", newline="") as src,
          open(write_fd, "w", encoding="utf-8", newline="", closefd=False) as dst):
        for line in shown(src):
            dst.write(line)
            dst.flush()


@contextlib.contextmanager
def quiet_kernel_noise():
    """While the block runs, fd 2 (which its kernels inherit) goes through shown()."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to filter
        yield
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, saved), daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer here closes: the pump sees EOF
        pump.join(timeout=5)  # a kernel still holding the pipe must not hang the runner
        os.close(saved)
