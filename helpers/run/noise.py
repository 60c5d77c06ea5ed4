"""Keep TensorFlow's and the kernels' start-up chatter out of a run's terminal output. Users read
`E0000 ... failed call to cuInit` (a CPU-only machine) and ipykernel's `KeyboardInterrupt caught
in kernel` (logged while the runner shuts a finished kernel down) as failures; neither is one.

At the source: TF_CPP_MIN_LOG_LEVEL=1 (unless set) drops TensorFlow's C++ INFO lines in this
process and in every kernel it starts. What has no switch short of hiding real errors (the cuInit
ERROR line and absl's pre-init banner, one per process; ipykernel's log line) is filtered from
stderr, line by line, while the runner works: every other line passes through unchanged."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|^[IWE]\d{4} [\d:.]+\s+\d+ (cuda_platform|cuda_executor|cudart_stub|port|cuda_diagnostics)"
    r"\.cc:\d+\]"
    r"|\[IPKernelApp\] ERROR \| KeyboardInterrupt caught in kernel"
)


def is_noise(line: str) -> bool:
    """Whether a stderr line is known harmless chatter (see the module's docstring)."""
    return bool(NOISE.search(line))


def _pump(read_fd: int, write_fd: int) -> None:
    """Copy read_fd to write_fd until EOF, dropping noise lines; text without a newline yet is
    passed on at each carriage return (progress bars) so nothing waits for a line end."""
    pending = b""
    with os.fdopen(read_fd, "rb", buffering=0) as src:
        while chunk := src.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(
                line + b"\n" for line in lines if not is_noise(line.decode("utf-8", "replace"))
            )
            cut = pending.rfind(b"\r") + 1
            out, pending = out + pending[:cut], pending[cut:]
            if out:
                os.write(write_fd, out)
        if pending and not is_noise(pending.decode("utf-8", "replace")):
            os.write(write_fd, pending)


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
