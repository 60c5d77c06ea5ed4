"""What a parameter's value may be, checked before anything runs: its type (the parameters
cell's default's), its choices, its bounds, and for a list (a grid) its items. A value that would
fail late, or worse run and mean nothing (a negative learning rate trains by gradient ascent),
is one line naming the parameter and where it was set."""

from __future__ import annotations

import math

from helpers.base import StudyError
from helpers.data import DOUBLED_SETS
from helpers.experiments import EXECUTORS
from helpers.models import LR_SCALING

FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")
# parameters with a closed set of values; each list lives with the code it parameterises (in
# its layer's light __init__, which imports no TensorFlow)
CHOICES = {"lr_scaling": LR_SCALING, "executor": EXECUTORS, "doubled_set": DOUBLED_SETS,
           "flip": FLIPS, "flip_mode": ("", *FLIPS)}  # "": no flip in 05


def _range(low=None, high=None, *, low_open=False, high_open=False, whole=False):
    """(test, words) for a number between low and high, each bound inclusive unless open."""
    def test(v):
        return ((low is None or (v > low if low_open else v >= low))
                and (high is None or (v < high if high_open else v <= high)))

    kind = "a whole number" if whole else "a number"
    lo, hi = (f"{b:g}" if isinstance(b, float) else b for b in (low, high))
    if high is None:
        return test, f"{kind} {'>' if low_open else '>='} {lo}"
    if low_open == high_open:
        return test, f"{kind} between {lo} and {hi}" + (" (exclusive)" if low_open else "")
    return test, f"{kind} in {'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"


WHOLE_1, WHOLE_0, BLOCKS = _range(1, whole=True), _range(0, whole=True), _range(1, 5, whole=True)
POSITIVE, SHARE = _range(0, low_open=True), _range(0, 1, high_open=True)
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are unsigned 32-bit
# parameters with bounds (nan and infinities are refused for every number)
BOUNDS = {
    **dict.fromkeys(["epochs", "batch_size", "repeats", "head_epochs", "finetune_epochs",
                     "units", "n_examples", "kernel_size", "reg_kernel_size"], WHOLE_1),
    "seed": _range(0, MAX_SEED, whole=True),
    **dict.fromkeys(["patience", "train_per_class", "valid_per_class",
                     "test_per_class"], WHOLE_0),  # per class: 0 = all
    **dict.fromkeys(["learning_rate", "head_learning_rate", "finetune_learning_rate", "alpha",
                     "cpus_per_trial"], POSITIVE),
    **dict.fromkeys(["dropout", "bn_momentum"], SHARE),
    **dict.fromkeys(["n_blocks", "reg_n_blocks"], BLOCKS),  # 32x32 pooled once per block
    "input_size": _range(32, whole=True),  # keras.applications' smallest input
    "gpus_per_trial": _range(0),
    "brightness": _range(0, 1, low_open=True),
    "rotation": _range(0, 0.25, low_open=True, high_open=True),  # under 90 degrees
    "zoom": _range(0, 1, low_open=True, high_open=True),
    "cutout": _range(0.02, 1, low_open=True),  # erased share of the area, from 2%
}
# a grid's items obey the bounds of the parameter they vary
GRIDS = {"n_blocks_grid": BLOCKS, "kernel_size_grid": WHOLE_1, "dropout_grid": SHARE,
         "alpha_grid": _range(0, 1), "lam_grid": _range(0)}  # alpha: Elastic Net's l1 share


def check_value(where: str, name: str, value, default):
    """value for parameter name (whose parameters-cell default is default), checked and with
    ints widened where the default is a float; else StudyError naming where, name and why."""
    if value is None and default is not None:
        raise StudyError(f"{where}: parameter {name} is empty; give a value like the default "
                         f"{default!r}")
    value = _typed(where, name, value, default)
    if isinstance(value, list):
        if not value:
            raise StudyError(f"{where}: parameter {name}=[] is empty; give at least one value, "
                             f"like the default {default!r}")
        if default:  # each item of the default's items' type, within the varied one's bounds
            value = [_typed(where, f"{name} item", v, default[0]) for v in value]
        if len(set(map(repr, value))) < len(value):
            raise StudyError(f"{where}: parameter {name}={value!r} names a value twice")
        for v in value:
            _check_number(where, f"{name} item", v, GRIDS.get(name))
        return value
    _check_number(where, name, value, BOUNDS.get(name))
    if name in CHOICES and value not in CHOICES[name]:
        raise StudyError(f"{where}: parameter {name}={value!r}, expected one of {CHOICES[name]}")
    return value


def _typed(where: str, name: str, value, default):
    """value, of its default's type (an int widened to a float where the default is one)."""
    widen = isinstance(default, float) and type(value) is int
    if not (type(value) is type(default) or widen or default is None
            or (isinstance(default, list) and isinstance(value, list))):
        raise StudyError(f"{where}: parameter {name}={value!r} is a {type(value).__name__}, "
                         f"expected {type(default).__name__} like the default {default!r}")
    return float(value) if widen else value


def _check_number(where: str, name: str, value, bound) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    test, words = bound or (lambda v: True, "a finite number")
    if not math.isfinite(value) or not test(value):
        raise StudyError(f"{where}: parameter {name}={value!r}, expected {words}")
