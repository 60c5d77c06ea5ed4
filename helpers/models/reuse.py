"""Trace once per architecture. Tracing a model's training and validation steps takes seconds on
2 cores, a large share of a short trial, so a process keeps the compiled model of each recent
architecture and hands it to the next trial of that architecture in exactly the state a fresh
build would have, its traced functions kept: every variable (weights, batch-norm statistics,
dropout seed states) copied from the trial's own fresh build (cheap: tracing is what costs),
and the optimiser's variables (step, moments, learning rate) put back to their values when
new. tests/test_reuse.py compares the weights after training with a fresh build's, bitwise.
CINIC10_FRESH_BUILDS=1 builds and compiles every model anew (the benchmarks' A/B switch)."""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import keras

from helpers import artifacts, backend

KEEP = 4  # architectures kept per process: 03's and 04's trials come architecture by architecture
_KEPT: OrderedDict = OrderedDict()  # full key -> compiled model
_INITIAL: dict[int, list] = {}  # id(model) -> its optimiser's variables' values when new


def traced_once(model: keras.Model) -> keras.Model:
    """model (built and compiled under the trial's seed), or the kept compiled model of the
    same key, reset to model's state. The key is everything that shapes training: get_config()
    (but its name, and the α and λ TunableElasticNetDense holds as weights), the whole
    get_compile_config() (but the optimiser's name), trainable flags, backend and precision."""
    if os.environ.get("CINIC10_FRESH_BUILDS", "") not in ("", "0"):
        return model
    with artifacts.timed("build"):
        key = ("compiled", backend.name(), keras.mixed_precision.global_policy().name,
               _canonical({**model.get_config(), "name": None}),
               _canonical(model.get_compile_config(), optimizer=True),
               tuple(v.trainable for v in model.weights))
        kept = _KEPT.get(key)
        if kept is None:
            model.optimizer.build(model.trainable_variables)  # as fit would, before its 1st step
            _INITIAL[id(model)] = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
            _KEPT[key] = model
            while len(_KEPT) > KEEP:
                _INITIAL.pop(id(_KEPT.popitem(last=False)[1]), None)
            return model
        _KEPT.move_to_end(key)
        copy_state(model, kept)
        for variable, value in zip(kept.optimizer.variables, _INITIAL[id(kept)]):
            variable.assign(value)  # step, moments and the learning rate as new
        return kept


def _canonical(config: dict, optimizer: bool = False) -> str:
    """config as sorted JSON, without TunableElasticNetDense's α and λ or (optimizer) the
    compile config's optimiser names (labels: "adam_1" for a second Adam)."""
    def strip(value, drop: tuple = ()):
        if isinstance(value, dict):
            if value.get("class_name") == "TunableElasticNetDense":
                drop = ("alpha", "lam")
            return {k: strip(v, drop) for k, v in value.items() if k not in drop}
        return [strip(v) for v in value] if isinstance(value, list) else value

    if optimizer:
        config = {**config, "optimizer": strip(config.get("optimizer"), ("name",))}
    return json.dumps(strip(config), sort_keys=True, default=repr)


def copy_state(source: keras.Model, target: keras.Model) -> None:
    """Every variable of target (weights, statistics, seed states) assigned source's value; the
    two must be the same architecture (same variables, shapes and dtypes, in order)."""
    pairs = list(zip(target.variables, source.variables))
    if len(target.variables) != len(source.variables) or any(
        tuple(t.shape) != tuple(s.shape) or t.dtype != s.dtype for t, s in pairs
    ):
        raise RuntimeError(f"reuse: {target.name} and a fresh build differ in their variables; "
                           "the architecture key misses something that shapes the model")
    for t, s in pairs:
        t.assign(s.value)


def clear() -> None:
    """Forget every kept model (tests; a process that wants its memory back)."""
    _KEPT.clear()
    _INITIAL.clear()
