"""Where this process's time goes: seconds per phase (acquiring a model, tracing, training steps,
validation, evaluation), summed over every model built, fitted and evaluated in it. Each
notebook's result file carries its kernel's totals (artifacts.save_metrics), so the budget
benchmark can split a notebook's wall time without re-running it. Imports nothing heavy."""

from __future__ import annotations

import contextlib
import time

# build: a model made ready (built or reset) and compiled; trace: the first training step and
# the first validation batch beyond a typical one (tf.function tracing, XLA/jax compilation);
# steps: the training steps after that; validation: fit's per-epoch validation after its first
# batch; evaluation: predictions on held-out splits after training.
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
