"""Keep TensorFlow's and the kernels' start-up chatter out of a run's terminal output. Users read
`E0000 ... failed call to cuInit` (a CPU-only machine) and ipykernel's `KeyboardInterrupt caught
in kernel` (logged while the runner shuts a finished kernel down) as failures; neither is one.

At the source: helpers/__init__.py sets TF_CPP_MIN_LOG_LEVEL=2 (unless set), which drops
TensorFlow's C++ INFO and WARNING lines in this process and, inherited, in every kernel it starts. What has no switch short of hiding real errors (the cuInit
ERROR line and absl's pre-init banner, one per process; ipykernel's log line; the ZMQError
traceback a kernel logs when Ctrl-C shuts it down mid-cell, the stack dump Ray's absl handler
prints when a kernel running a Ray grid is stopped with SIGTERM) is filtered from stderr, line by
line, while the runner works: every other line passes through unchanged."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

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


# A Ray driver (a kernel running a grid on Ray) that the runner stops gets SIGTERM, and Ray's
# absl handler dumps its stack for it: the header, then "PC: @ 0x..." and "    @ 0x..." frames,
# each line twice (raw, then through Ray's logging.cc). A stop we asked for, not a crash: the
# dump is dropped; a dump for any other signal (a real crash) passes.
_LOGGED = r"^(\[[^\]]*\] logging\.cc:\d+: )?"
TERM_DUMP_START = re.compile(_LOGGED + r"\*\*\* SIGTERM received at time=\d+")
TERM_DUMP_LINE = re.compile(_LOGGED + r"(PC: )?\s*@\s+0x[0-9a-fA-F]+")


def is_noise(line: str) -> bool:
    """Whether a stderr line is known harmless chatter (see the module's docstring)."""
    return bool(NOISE.search(line))


class _Filter:
    """Line by line: noise lines dropped; a kernel's shutdown traceback held until its last
    line says whether it is the harmless ZMQError (dropped) or anything else (passed on)."""

    def __init__(self):
        self.held: list[bytes] | None = None
        self.in_dump = False  # inside a SIGTERM stack dump (TERM_DUMP_START)

    def line(self, raw: bytes) -> bytes:
        text = raw.decode("utf-8", "replace")
        if TERM_DUMP_START.match(text):
            self.in_dump = True
            return b""
        if self.in_dump and TERM_DUMP_LINE.match(text):
            return b""
        self.in_dump = False
        if self.held is None:
            if SHUTDOWN_START in text:
                self.held = [raw]
                return b""
            return b"" if is_noise(text) else raw
        self.held.append(raw)
        inside = text.startswith((" ", "\t", "Traceback", "^")) or not text.strip()
        if inside and len(self.held) < 200:
            return b""
        block, self.held = self.held, None
        return b"" if SHUTDOWN_END.match(text) else b"".join(block)

    def flush(self) -> bytes:
        block, self.held = self.held or [], None
        return b"".join(block)


def _pump(read_fd: int, write_fd: int) -> None:
    """Copy read_fd to write_fd until EOF, dropping noise; text without a newline yet is
    passed on at each carriage return (progress bars) so nothing waits for a line end."""
    pending, keep = b"", _Filter()
    with os.fdopen(read_fd, "rb", buffering=0) as src:
        while chunk := src.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(keep.line(line + b"\n") for line in lines)
            if keep.held is None:
                cut = pending.rfind(b"\r") + 1
                out, pending = out + pending[:cut], pending[cut:]
            if out:
                os.write(write_fd, out)
        out = keep.flush()
        if pending and not is_noise(pending.decode("utf-8", "replace")):
            out += pending
        if out:
            os.write(write_fd, out)


@contextlib.contextmanager
def quiet_kernel_noise():
    """While the block runs, this process's stderr (fd 2, which kernels started in the block
    inherit) goes through a filter that drops noise lines."""
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
