"""Trace once per architecture. Tracing a model's training and validation steps takes seconds on
2 cores, a large share of a short trial, so a process keeps the compiled model of each recent
architecture and hands it to the next trial of that architecture reset to exactly the state a
fresh build would have, its traced functions kept:

- every variable (weights, batch-norm statistics, the dropout layers' seed states) is copied from
  a fresh build made under the trial's seed (building is cheap; tracing is what costs), so
  the initial weights and the random streams are the fresh build's, bit for bit;
- the optimiser's variables (step count, moments, learning rate) go back to their values when
  it was new, and the learning rate is set to the trial's.

A trial then computes what a fresh build computes (tests/test_reuse.py compares the weights
after training, bitwise). Public Keras APIs only: Model.variables, Variable.assign,
Optimizer.build/variables/learning_rate. Set CINIC10_FRESH_BUILDS=1 to build and compile every model anew
(the benchmarks' A/B switch)."""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import keras

from helpers import backend, timing

KEEP = 4  # architectures kept per process: 03's and 04's trials come architecture by architecture
_KEPT: OrderedDict = OrderedDict()  # full key -> compiled model
_INITIAL: dict[int, list] = {}  # id(model) -> its optimiser's variables' values when new


def enabled() -> bool:
    """Whether models are reused (unless CINIC10_FRESH_BUILDS=1)."""
    return os.environ.get("CINIC10_FRESH_BUILDS", "") in ("", "0")


def traced_once(model: keras.Model) -> keras.Model:
    """model (built and compiled where the caller seeds a fresh one), or the kept compiled model
    of the same architecture, compile settings and trainable flags, reset to model's state: its
    variables copied in, its optimiser's put back to their values when new. The key is
    everything that shapes training: model.get_config() (without its name, and the α and λ
    that TunableElasticNetDense holds as weights, which are copied), the whole get_compile_config()
    (the optimiser's class and get_config() but its name, the loss, the metrics), backend and
    precision."""
    if not enabled():
        return model
    with timing.phase("build"):
        key = ("compiled", backend.name(), keras.mixed_precision.global_policy().name,
               _canonical(_architecture({**model.get_config(), "name": None})),  # (a label)
               _canonical(_unnamed_optimizer(model.get_compile_config())),
               tuple(v.trainable for v in model.weights))
        kept = _KEPT.get(key)
        if kept is None:
            model.optimizer.build(model.trainable_variables)  # as fit would, before its 1st step
            _INITIAL[id(model)] = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
            _keep(key, model)
            return model
        _KEPT.move_to_end(key)
        copy_state(model, kept)
        for variable, value in zip(kept.optimizer.variables, _INITIAL[id(kept)]):
            variable.assign(value)  # step, moments and the learning rate as new
        return kept


def _architecture(config):
    """A model's config without the values TunableElasticNetDense holds as weights (α, λ)."""
    if isinstance(config, dict):
        if config.get("class_name") == "TunableElasticNetDense":
            inner = {k: v for k, v in config["config"].items() if k not in ("alpha", "lam")}
            return {**config, "config": inner}
        return {k: _architecture(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_architecture(v) for v in config]
    return config


def _unnamed_optimizer(config: dict) -> dict:
    """A compile config without its optimiser's names (a label, "adam_1" for a second Adam)."""
    def unnamed(value):
        if isinstance(value, dict):
            return {k: unnamed(v) for k, v in value.items() if k != "name"}
        return value

    return {**config, "optimizer": unnamed(config.get("optimizer"))}


def _canonical(config) -> str:
    return json.dumps(config, sort_keys=True, default=repr)


def _keep(key: tuple, model: keras.Model) -> None:
    _KEPT[key] = model
    while len(_KEPT) > KEEP:
        _INITIAL.pop(id(_KEPT.popitem(last=False)[1]), None)


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
