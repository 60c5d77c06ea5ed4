"""What makes a trial record current: the code (keyed helpers modules, a notebook's trial
function: function_key) and library versions that computed it, and a result that can be true.
plots/, run/ and __main__.py stay out of the key only because no keyed module imports them
(test_trial_identity.py): any module a trial's process imports can change a number."""

from __future__ import annotations

import dis
import hashlib
import inspect
import json
import marshal
import math
import types
from functools import lru_cache
from pathlib import Path

from helpers import backend
from helpers.base import StudyError

HELPERS = Path(__file__).resolve().parent.parent
NOT_COMPUTING = ("plots", "run", "__main__.py")  # folders or files under helpers/
WORDS = {
    "code": "computed by other code ({} changed)",
    "versions": "computed with other library versions ({})",
    "invalid": "with impossible values, not trusted ({})",
    "unreadable": "unreadable, half-written or another trial's ({})",
}


def digest(blob: bytes) -> str:
    """sha256 of blob, its first 16 hex digits: every key of a trial (its id, its code)."""
    return hashlib.sha256(blob).hexdigest()[:16]


def keyed_modules() -> list[Path]:
    """Every helpers/**/*.py but plots/, run/ and __main__.py, sorted."""
    skip = [HELPERS / rel for rel in NOT_COMPUTING]
    return [f for f in sorted(HELPERS.rglob("*.py"))
            if not any(f == s or s in f.parents for s in skip)]


@lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, str]:
    """{'helpers/models/nets.py': digest, ...}, read once per process (restart after edits)."""
    return {f"helpers/{f.relative_to(HELPERS).as_posix()}": digest(f.read_bytes())
            for f in keyed_modules()}


def function_key(fn) -> tuple[dict[str, str], dict]:
    """(code, reads) of a trial function defined outside helpers: code {"f in the notebook":
    digest of its source} for it and each function and class of its own module it uses; reads
    {name: value} the plain values they read from its globals (any other value is refused:
    no id could hold it). Modules and other modules' objects are keyed elsewhere (helpers as
    files, libraries by version). A helpers function: ({}, {})."""
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
                todo += [v for v in vars(value).values() if inspect.isfunction(v)]
                shape = [b.__qualname__ for b in value.__bases__] + sorted(vars(value))
                code[f"{value.__qualname__} in {where}"] = digest(json.dumps(shape).encode())
            elif _plain(value):
                reads[name] = value
            else:
                raise StudyError(
                    f"trial function {fn.__qualname__} reads {name} (a {type(value).__name__}) "
                    f"from {f.__module__}: pass it in the trial's config or context instead, or "
                    "as a plain value (number, string, list, dict) that its trial ids can hold")
    return code, reads


def _global_names(code: types.CodeType) -> set[str]:
    """Globals a code object and those nested in it read (LOAD_GLOBAL's, not attributes)."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _source_hash(f) -> str:
    """digest of f's source (a notebook cell's too: IPython keeps it), else of its bytecode."""
    try:
        return digest(inspect.getsource(f).encode())
    except (OSError, TypeError):
        return digest(marshal.dumps(f.__code__))


def _plain(value) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _plain(v)
                                           for k, v in value.items())


def identity() -> dict:
    """What a record must match to be current: {"code": {...}, "versions": {keras, backend's}}."""
    return {"code": code_fingerprint(), "versions": backend.versions("keras")}


def invalid(result, metric: str) -> str:
    """Why a result cannot be true ('' when it can): no mapping, empty, no metric, or an
    '*accuracy' value (lists too) not a finite number in [0, 1]."""
    if not isinstance(result, dict):
        return f"the result is a {type(result).__name__}, not a mapping"
    if not result:
        return "the result is empty"
    if metric not in result:
        return f"the result has no {metric}"
    for key, value in result.items():
        bad = [v for v in (value if isinstance(value, list) else [value])
               if isinstance(v, bool) or not isinstance(v, int | float)
               or not (math.isfinite(v) and 0 <= v <= 1)]
        if key.endswith("accuracy") and bad:
            return f"{key} {bad[0]!r} is not an accuracy in [0, 1]"
    return ""


def stale(record: dict, current: dict) -> tuple[str, list[str]]:
    """('code', modules changed), ('versions', ['keras 3.10.0 -> 3.11.0']) or ('', [])."""
    if not isinstance(record.get("code"), dict):
        return "code", ["no record of its code (written before trials recorded it)"]
    ours, theirs = current["code"], record["code"]
    changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if changed:
        return "code", changed
    ours, theirs = current["versions"], record.get("versions")
    theirs = theirs if isinstance(theirs, dict) else {}
    return ("versions", [f"{k} {theirs.get(k, '?')} -> {ours.get(k, '?')}"
                         for k in sorted(ours.keys() | theirs.keys())
                         if ours.get(k) != theirs.get(k)]) if theirs != ours else ("", [])


def explain(desc: str, causes: dict[str, list[list[str]]]) -> list[str]:
    """One line per cause of redone trials ({cause: [what differs, per trial]}), e.g. '03 grid:
    12 trial(s) computed by other code (helpers/models/nets.py changed) are redone'."""
    lines = []
    for cause, per_trial in ((c, causes[c]) for c in WORDS if causes.get(c)):
        items = sorted({item for items in per_trial for item in items})
        what = "; ".join(items[:4]) + ("; ..." if len(items) > 4 else "")
        lines.append(f"{desc}: {len(per_trial)} trial(s) {WORDS[cause].format(what)} are redone")
    return lines
