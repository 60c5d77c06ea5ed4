"""Where this process's time goes: seconds per phase, summed over every model built, fitted and
evaluated in it; each notebook's result file carries its kernel's totals (artifacts.save_metrics).
Imports nothing heavy."""

from __future__ import annotations

import contextlib
import time

# build: a model made ready and compiled; trace: the first training step's and validation
# batch's excess over a typical one (tracing, compilation); steps: the other training steps;
# validation: the rest of fit's validation; evaluation: predictions after training
PHASES = ("build", "trace", "steps", "validation", "evaluation")
_SPENT: dict[str, float] = {}


def add(phase: str, seconds: float) -> None:
    """Count seconds (>= 0) against phase (one of PHASES)."""
    if phase not in PHASES:
        raise ValueError(f"timing phase {phase!r}: one of {', '.join(PHASES)}")
    _SPENT[phase] = _SPENT.get(phase, 0.0) + max(0.0, float(seconds))


@contextlib.contextmanager
def phase(name: str):
    """Count the block's wall seconds against phase name."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - t0)


def spent() -> dict[str, float]:
    """Seconds per phase so far in this process, rounded to 0.01 s (phases not met left out)."""
    return {p: round(_SPENT[p], 2) for p in PHASES if p in _SPENT}
