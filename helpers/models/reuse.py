"""Trace once per architecture: a kept compiled model reset to each trial's fresh build trains
bitwise the same (tests/test_reuse.py). CINIC10_FRESH_BUILDS=1 builds every model anew."""

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
    """model (built and compiled under the trial's seed), or the kept model of its key set to
    model's variables and its optimiser's as new. The key is all that shapes training: configs
    (but names, and TunableElasticNetDense's α, λ), trainable flags, backend and precision."""
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
    """Sorted JSON without TunableElasticNetDense's α, λ or the optimiser's name ("adam_1")."""
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
    """Every variable of target (weights, statistics, seed states) set to source's."""
    pairs = list(zip(target.variables, source.variables))
    if len(target.variables) != len(source.variables) or any(
        tuple(t.shape) != tuple(s.shape) or t.dtype != s.dtype for t, s in pairs
    ):
        raise RuntimeError(f"reuse: {target.name} and a fresh build differ in their variables; "
                           "the architecture key misses something that shapes the model")
    for t, s in pairs:
        t.assign(s.value)


def clear() -> None:
    """Forget every kept model."""
    _KEPT.clear()
    _INITIAL.clear()
