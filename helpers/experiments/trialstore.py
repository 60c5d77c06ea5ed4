"""Resumable grids of trials, here or on Ray (raytasks), each kept in <run>/results/trials/, trusted
while its code (helpers modules, the trial function), library versions and result still hold."""

from __future__ import annotations

import dis
import hashlib
import inspect
import itertools
import json
import linecache
import marshal
import math
import re
import time
import types
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nbformat
import pandas as pd

from helpers import backend
from helpers.artifacts import run_paths
from helpers.atomic import read_json, write_json
from helpers.base import StudyError, progress_bar
from helpers.experiments import EXECUTORS, TrialFailed, raytasks
from helpers.models import fitlog

METRIC = "best_val_accuracy"
TrialFn = Callable[[dict, dict], dict]
HELPERS = Path(__file__).resolve().parent.parent
# out of the code key only because no keyed module imports them (test_trial_identity.py): any
# module a trial's process imports can change a number
NOT_COMPUTING = ("plots", "run", "__main__.py")  # folders or files under helpers/
WORDS = {
    "code": "computed by other code ({} changed)",
    "versions": "computed with other library versions ({})",
    "invalid": "with impossible values, not trusted ({})",
    "unreadable": "unreadable, half-written or another trial's ({})",
}


@dataclass(frozen=True)
class Trial:
    """One run to do: id (stable), kind (what it trains), config (incl. seed), settings."""

    id: str
    kind: str
    config: dict
    settings: dict

    @classmethod
    def of(cls, kind: str, config: dict, settings: dict) -> Trial:
        return cls(trial_id(kind, config, settings), kind, config, dict(settings))


def digest(blob: bytes) -> str:
    """sha256 of blob, its first 16 hex digits: every key of a trial (its id, its code)."""
    return hashlib.sha256(blob).hexdigest()[:16]


def trial_id(kind: str, config: dict, settings: dict) -> str:
    """'<kind>-<16 hex>': the digest of the canonical JSON of kind, config and settings."""
    blob = json.dumps({"kind": kind, "config": config, "settings": settings}, sort_keys=True,
                      separators=(",", ":"))
    return f"{kind}-{digest(blob.encode())}"


def expand_grid(**axes: list) -> list[dict]:
    """Every combination of the axes' values as dicts, in order (the last axis varies fastest)."""
    for name, values in axes.items():
        if not isinstance(values, list | tuple) or len(values) == 0:
            raise ValueError(f"expand_grid: {name} must be a non-empty list, got {values!r}")
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def settings(ds, subset_seed: int, **training) -> dict:
    """What a grid's trial ids hash: the dataset's fingerprint, the subsets' seed, training's."""
    return {"fingerprint": ds.fingerprint, "subset_seed": subset_seed, **training}


def make_trials(kind: str, configs: list[dict], settings: dict, *, repeats: int = 1,
                seed: int = 0) -> list[Trial]:
    """repeats trials per config, seeds seed, seed+1 ...; off TensorFlow ids name the backend."""
    if repeats < 1:
        raise ValueError(f"make_trials: repeats must be >= 1, got {repeats}")
    if not backend.is_tensorflow():
        settings = {**settings, "backend": backend.name()}
    configs = [{**config, "seed": seed + r} for config in configs for r in range(repeats)]
    return [Trial.of(kind, c, settings) for c in configs]


def subsets(context: dict, splits: tuple[str, ...]) -> tuple:
    """(dataset, *subsets of splits) context["settings"] names, once per process; (n, 32, 32, 3)."""
    from helpers import data  # deferred: TensorFlow stays out of the runner, which imports us

    given = context["settings"]
    ds = data.shared_dataset(context["dataset"], given["fingerprint"], say=lambda *_: None)
    return (ds, *(data.stratified_subset(ds[s], given[f"{s}_per_class"], given["subset_seed"])
                  for s in splits))


def from_notebook(notebook, name: str, **parameters):
    """The function (or class) `name` as its notebook cell defines it, after the parameters cell
    with these overrides (as papermill runs them), its source kept for inspect as IPython does."""
    cells = nbformat.read(notebook, as_version=4).cells
    params = [c.source for c in cells if "parameters" in c.metadata.get("tags", [])]
    defining = [c.source for c in cells if c.cell_type == "code"
                and re.search(rf"^(def|class) {name}\b", c.source, re.M)]
    if len(defining) != 1:
        raise StudyError(f"{notebook}: {len(defining)} cells define {name}, not one")
    namespace = {"__name__": f"notebook_{Path(notebook).stem}"}
    exec("\n".join(params), namespace)
    namespace.update(parameters)
    filename = f"<{Path(notebook).name}: {name}>"
    linecache.cache[filename] = (len(defining[0]), None, defining[0].splitlines(True), filename)
    # dont_inherit: not this module's postponed annotations; a kernel evaluates a cell's (a
    # dataclass's fields too, whose string annotations would need a module in sys.modules)
    exec(compile(defining[0], filename, "exec", dont_inherit=True), namespace)
    return namespace[name]


def keyed_modules() -> list[Path]:
    """Every helpers/**/*.py but NOT_COMPUTING, sorted."""
    skip = [HELPERS / rel for rel in NOT_COMPUTING]
    return [f for f in sorted(HELPERS.rglob("*.py"))
            if not any(f == s or s in f.parents for s in skip)]


@lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, str]:
    """{'helpers/models/nets.py': digest, ...}, read once per process (restart after edits)."""
    return {f"helpers/{f.relative_to(HELPERS).as_posix()}": digest(f.read_bytes())
            for f in keyed_modules()}


def function_key(fn) -> tuple[dict[str, str], dict]:
    """(code, reads): {"f in the notebook": source digest} of a trial function and the functions
    and classes of its module it uses; the plain globals they read (no id could hold others)."""
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
            other = inspect.isfunction(value) or inspect.isclass(value)  # another module's?
            if isinstance(value, types.ModuleType) or other and value.__module__ != f.__module__:
                continue  # keyed elsewhere: helpers as files, libraries by version
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


def invalid(result, metric: str) -> str:
    """Why a result cannot be true ('' when it can): an '*accuracy' not a finite number in 0-1."""
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
    for cause in ("code", "versions"):
        ours, theirs = current[cause], record.get(cause)
        theirs = theirs if isinstance(theirs, dict) else {}
        changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        if changed:
            return cause, changed if cause == "code" else [
                f"{k} {theirs.get(k, '?')} -> {ours.get(k, '?')}" for k in changed]
    return "", []


def explain(desc: str, causes: dict[str, list[list[str]]]) -> list[str]:
    """One line per cause of redone trials ({cause: [what differs, per trial]}), WORDS'."""
    lines = []
    for cause, per_trial in ((c, causes[c]) for c in WORDS if causes.get(c)):
        items = sorted({item for items in per_trial for item in items})
        what = "; ".join(items[:4]) + ("; ..." if len(items) > 4 else "")
        lines.append(f"{desc}: {len(per_trial)} trial(s) {WORDS[cause].format(what)} are redone")
    return lines


class TrialStore:
    """<run>/results/trials/<trial_id>.json; code: function_key's, else only helpers' compared."""

    def __init__(self, run_dir, code: dict[str, str] | None = None):
        self.folder = run_paths(run_dir)["results"] / "trials"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.code = code
        self.identity = {"code": {**code_fingerprint(), **(code or {})},
                         "versions": backend.versions("keras")}

    def path(self, trial: Trial) -> Path:
        return self.folder / f"{trial.id}.json"

    def check(self, trial: Trial, metric: str = METRIC) -> tuple[dict | None, str, list[str]]:
        """(record, '', []) to trust; else (None, 'missing' or a cause of WORDS, what)."""
        path = self.path(trial)
        if not path.exists():
            return None, "missing", []
        try:
            rec = read_json(path)
        except (OSError, ValueError):  # half-written or garbled: not trusted
            rec = None
        if not (isinstance(rec, dict) and rec.get("trial_id") == trial.id
                and rec.get("config") == trial.config and rec.get("settings") == trial.settings):
            return None, "unreadable", [path.name]
        why = invalid(rec.get("result"), metric)
        if why:
            return None, "invalid", [f"{path.name}: {why}"]
        if self.code is None and isinstance(rec.get("code"), dict):
            rec = {**rec, "code": {k: v for k, v in rec["code"].items() if k.startswith("helpers/")}}
        cause, what = stale(rec, self.identity)
        return (None, cause, what) if cause else (rec, "", [])

    def save(self, trial: Trial, result: dict, metric: str = METRIC, **extra) -> dict:
        """Write the trial's record atomically and return it; an impossible result is refused."""
        why = invalid(result, metric)
        if why:
            raise TrialFailed(f"trial {trial.id} ({_label(trial.config)}) returned a result that "
                              f"cannot be true: {why}")
        rec = {"trial_id": trial.id, "kind": trial.kind, "config": trial.config,
               "settings": trial.settings, "result": result,
               "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **self.identity, **extra}
        write_json(self.path(trial), rec)
        return rec


def _label(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def run_trials(trials: list[Trial], trial_fn: TrialFn, context: dict, *, run_dir,
               executor: str = "local", cpus_per_trial: float = 1, gpus_per_trial: float = 0,
               desc: str = "trials", metric: str = METRIC) -> pd.DataFrame:
    """trial_fn(config, context) of each trial without a current record, each saved on arrival;
    one row per trial, in order (trials_table)."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    ids = [t.id for t in trials]
    if len(set(ids)) != len(ids):
        raise ValueError("run_trials: duplicate trial ids (the same config twice in the grid?)")
    fn_name = f"{trial_fn.__module__}:{trial_fn.__qualname__}"
    if "<" in trial_fn.__qualname__ or "." in trial_fn.__qualname__:
        raise ValueError(f"trial function {fn_name}: must be a plain top-level function")
    code, reads = function_key(trial_fn)
    if reads:  # the plain values the function reads join its trials' settings, so their ids
        trials = [Trial.of(t.kind, t.config, {**t.settings, "reads": reads}) for t in trials]
    store = TrialStore(run_dir, code)
    found, causes = {}, defaultdict(list)
    for t in trials:
        found[t.id], cause, what = store.check(t, metric)
        if cause in WORDS:
            causes[cause].append(what)
    pending = [t for t in trials if found[t.id] is None]
    print(f"{desc}: {len(trials)} trials, {len(trials) - len(pending)} already done, "
          f"{len(pending)} to run ({executor})", *explain(desc, causes), sep="\n", flush=True)
    scores = [r["result"][metric] for r in found.values() if r and metric in r["result"]]
    bar = progress_bar(total=len(trials), initial=len(trials) - len(pending), desc=desc,
                       unit="trial", mininterval=0.5)

    def finished(trial: Trial, result: dict, seconds: float) -> None:
        found[trial.id] = store.save(trial, result, metric, function=fn_name, executor=executor,
                                     seconds=round(seconds, 2))
        fitlog.attach(trial.id, store.path(trial))  # (MLflow off: nothing)
        if metric in result:
            scores.append(result[metric])
        best = f"{max(scores):.4f}" if scores else "-"
        bar.set_postfix_str(f"last {_label(trial.config)} | best so far {best}")
        bar.update(1)

    try:
        if executor == "local":
            for trial in pending:
                bar.set_postfix_str(f"now {_label(trial.config)}")
                finished(trial, *_timed(trial_fn, trial, context))
        elif pending:
            raytasks.run(pending, _timed, trial_fn, context, finished, cpus_per_trial,
                         gpus_per_trial)
    finally:
        bar.close()
    return trials_table([found[t.id] for t in trials])


def _timed(trial_fn: TrialFn, trial: Trial, context: dict) -> tuple[dict, float]:
    """(trial_fn(config, context), seconds), quiet (the grid's bar speaks), logged where set up."""
    from helpers.models import training  # deferred: Keras (and TensorFlow) load here

    t0 = time.perf_counter()
    try:
        with fitlog.trial(trial.id, trial.config), training.quiet():
            result = trial_fn(dict(trial.config), dict(context))
            fitlog.finish(result)
    except Exception as err:
        raise TrialFailed(f"trial {trial.id} ({_label(trial.config)}) failed: "
                          f"{type(err).__name__}: {err}") from err
    return result, time.perf_counter() - t0


def trials_table(records: list[dict]) -> pd.DataFrame:
    """Trial records -> one row each: trial_id, config, scalar results, wall seconds."""
    return pd.DataFrame([
        {"trial_id": rec["trial_id"], **rec["config"],
         **{k: v for k, v in rec["result"].items() if not isinstance(v, list | dict)},
         "wall_seconds": rec.get("seconds"), "executor": rec.get("executor")} for rec in records])
