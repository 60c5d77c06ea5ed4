"""What makes a trial record current: the code and library versions that computed it, and a
result whose values can be true. Every record carries `code` (sha256 of each keyed helpers
module, and of a notebook-defined trial function: function_key) and `versions` (Keras and the
backend's packages); a record from other code or versions, or with impossible values, is
redone, and the run says why in one line per cause.

Keyed: every helpers module but plots/ and run/, which only draw and report finished results.
Any module a trial's process imports can change a number (a callback holds the optimiser), so
plots/ and run/ stay out only because no keyed module imports them (test_trial_identity.py)."""

from __future__ import annotations

import dis
import hashlib
import importlib.metadata as md
import inspect
import json
import marshal
import math
import types
from functools import lru_cache
from pathlib import Path

from helpers.base import StudyError

HELPERS = Path(__file__).resolve().parent.parent
NOT_COMPUTING = ("plots", "run", "__main__.py")  # folders or files under helpers/


def keyed_modules() -> list[Path]:
    """Every helpers/**/*.py but plots/, run/ and __main__.py, sorted."""
    skip = [HELPERS / rel for rel in NOT_COMPUTING]
    return [f for f in sorted(HELPERS.rglob("*.py"))
            if not any(f == s or s in f.parents for s in skip)]


@lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, str]:
    """{'helpers/models/nets.py': 16-hex sha256, ...}, read once per process (the runner starts
    a fresh kernel per notebook; restart your own after editing helpers)."""
    return {f"helpers/{f.relative_to(HELPERS).as_posix()}": _digest(f.read_bytes())
            for f in keyed_modules()}


def function_key(fn) -> tuple[dict[str, str], dict]:
    """(code, reads) of a trial function defined outside helpers (a notebook's cell, a script):
    code {"resnet_trial in the notebook": 16-hex sha256 of its source} for it and each function
    and class of its own module it uses; reads {name: value}: the plain values those read from
    their module's globals. Modules and other modules' functions and classes (helpers: keyed as
    a whole; libraries: by version) are not read; any other value is refused (no id could hold
    it). A helpers function: ({}, {})."""
    if fn.__module__.split(".")[0] == "helpers":
        return {}, {}
    code, reads, todo = {}, {}, [fn]
    while todo:
        f = todo.pop()
        where = "the notebook" if f.__module__ == "__main__" else f.__module__
        label = f"{f.__qualname__} in {where}"
        if label in code:
            continue
        code[label] = _source_hash(f)
        for name in sorted(_global_names(f.__code__) & set(f.__globals__)):
            value = f.__globals__[name]
            if isinstance(value, types.ModuleType) or (
                (inspect.isfunction(value) or inspect.isclass(value))
                and value.__module__ != f.__module__
            ):
                continue
            if inspect.isfunction(value):
                todo.append(value)
            elif inspect.isclass(value):  # a class of its own (a custom layer): its methods
                methods = [v for v in vars(value).values() if inspect.isfunction(v)]
                todo += methods
                shape = [b.__qualname__ for b in value.__bases__] + sorted(vars(value))
                code[f"{value.__qualname__} in {where}"] = _digest(json.dumps(shape).encode())
            elif _plain(value):
                reads[name] = value
            else:
                raise StudyError(
                    f"trial function {fn.__qualname__} reads {name} (a {type(value).__name__}) "
                    f"from {f.__module__}: pass it in the trial's config or context instead, or "
                    "as a plain value (number, string, list, dict) that its trial ids can hold")
    return code, reads


def _global_names(code: types.CodeType) -> set[str]:
    """Global names a code object (and the functions, lambdas, comprehensions inside it) reads:
    LOAD_GLOBAL's, not attributes (`training.setup` reads `training`, not a global `setup`)."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _source_hash(f) -> str:
    """sha256 (16 hex) of f's source (a notebook cell's too: IPython keeps it), else its code."""
    try:
        return _digest(inspect.getsource(f).encode())
    except (OSError, TypeError):
        return _digest(marshal.dumps(f.__code__))


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


def _plain(value) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def identity() -> dict:
    """What a record must match to be current: {"code": {...}, "versions": {keras, backend's}}."""
    from helpers import backend

    return {"code": code_fingerprint(), "versions": {"keras": md.version("keras"),
                                                     **backend.versions()}}


def invalid(result, metric: str) -> str:
    """Why a trial's result cannot be true ('' when it can): not a mapping, empty, without its
    metric, or an accuracy (a key ending in 'accuracy', lists too) not a finite number in [0, 1]."""
    if not isinstance(result, dict):
        return f"the result is a {type(result).__name__}, not a mapping"
    if not result:
        return "the result is empty"
    if metric not in result:
        return f"the result has no {metric}"
    for key, value in result.items():
        if key.endswith("accuracy"):
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, bool) or not isinstance(v, int | float) or not (
                    math.isfinite(v) and 0 <= v <= 1
                ):
                    return f"{key} {v!r} is not an accuracy in [0, 1]"
    return ""


def stale(record: dict, current: dict) -> tuple[str, list[str]]:
    """('code', modules changed) or ('versions', ['keras 3.10.0 -> 3.11.0']) when record was
    computed otherwise than current (identity()); ('', []) when it is current."""
    theirs = record.get("code")
    if not isinstance(theirs, dict):
        return "code", ["no record of its code (written before trials recorded it)"]
    ours = current["code"]
    changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if changed:
        return "code", changed
    theirs = record.get("versions")
    ours = current["versions"]
    if theirs != ours:
        theirs = theirs if isinstance(theirs, dict) else {}
        return "versions", [f"{k} {theirs.get(k, '?')} -> {ours.get(k, '?')}"
                            for k in sorted(ours.keys() | theirs.keys())
                            if ours.get(k) != theirs.get(k)]
    return "", []


WORDS = {
    "code": "computed by other code ({} changed)",
    "versions": "computed with other library versions ({})",
    "invalid": "with impossible values, not trusted ({})",
    "unreadable": "unreadable, half-written or another trial's ({})",
}


def explain(desc: str, causes: dict[str, list[list[str]]]) -> list[str]:
    """One line per cause of redone trials ({cause: [what differs, per trial]}), e.g. '03 grid:
    12 trial(s) computed by other code (helpers/models/nets.py changed) are redone'."""
    lines = []
    for cause, per_trial in causes.items():
        if per_trial:
            items = sorted({item for items in per_trial for item in items})
            what = "; ".join(items[:4]) + ("; ..." if len(items) > 4 else "")
            lines.append(f"{desc}: {len(per_trial)} trial(s) {WORDS[cause].format(what)} "
                         "are redone")
    return lines
