"""Resumable grids of trials (one configuration, one seed), run here or as Ray tasks: same ids,
same records, <run>/results/trials/<trial_id>.json, each with the code and versions that
computed it (records.py); a rerun redoes only missing, broken, impossible or stale ones, saying
why. The deferred imports keep TensorFlow out of the runner, which imports this module."""

from __future__ import annotations

import itertools
import json
import linecache
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd

from helpers import backend
from helpers.artifacts import run_paths
from helpers.atomic import read_json, write_json
from helpers.base import ROOT, StudyError, data_dir, progress_bar
from helpers.experiments import EXECUTORS, records

METRIC = "best_val_accuracy"
TrialFn = Callable[[dict, dict], dict]


class TrialFailed(RuntimeError):
    """A trial function raised: the message names the trial and its config."""


@dataclass(frozen=True)
class Trial:
    """One run to do: id (stable), kind (what it trains), config (incl. seed), settings."""

    id: str
    kind: str
    config: dict
    settings: dict

    @classmethod
    def of(cls, kind: str, config: dict, settings: dict) -> Trial:
        """The trial of kind with config and settings, its id computed (trial_id)."""
        return cls(trial_id(kind, config, settings), kind, config, dict(settings))


def expand_grid(**axes: list) -> list[dict]:
    """Every combination of the axes' values as dicts, in order (the last axis varies fastest)."""
    for name, values in axes.items():
        if not isinstance(values, list | tuple) or len(values) == 0:
            raise ValueError(f"expand_grid: {name} must be a non-empty list, got {values!r}")
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def trial_id(kind: str, config: dict, settings: dict) -> str:
    """'<kind>-<16 hex>': the digest of the canonical JSON of kind, config and settings."""
    blob = json.dumps({"kind": kind, "config": config, "settings": settings}, sort_keys=True,
                      separators=(",", ":"))
    return f"{kind}-{records.digest(blob.encode())}"


def settings(ds, subset_seed: int, **training) -> dict:
    """What every trial id of a grid hashes: the dataset's fingerprint, the subsets' seed and the
    training settings given (subset sizes, epochs ...)."""
    return {"fingerprint": ds.fingerprint, "subset_seed": subset_seed, **training}


def make_trials(kind: str, configs: list[dict], settings: dict, *, repeats: int = 1,
                seed: int = 0) -> list[Trial]:
    """repeats trials per config (seeds seed, seed+1, ...); off TensorFlow the backend joins the
    settings, so the id (TensorFlow's ids stay as they were)."""
    if repeats < 1:
        raise ValueError(f"make_trials: repeats must be >= 1, got {repeats}")
    if not backend.is_tensorflow():
        settings = {**settings, "backend": backend.name()}
    configs = [{**config, "seed": seed + r} for config in configs for r in range(repeats)]
    return [Trial.of(kind, c, settings) for c in configs]


def subsets(context: dict, splits: tuple[str, ...]) -> tuple:
    """(dataset, *the subsets of splits) context["settings"] names, loaded once per process (a
    Ray worker's too), checked against its fingerprint; (n, 32, 32, 3) uint8."""
    from helpers import data

    given = context["settings"]
    ds = data.shared_dataset(context["dataset"], given["fingerprint"], say=lambda *_: None)
    return (ds, *(data.stratified_subset(ds[s], given[f"{s}_per_class"], given["subset_seed"])
                  for s in splits))


def function_name(fn: TrialFn) -> str:
    """'module:qualname' of a trial function; refuses lambdas and nested functions."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in fn.__qualname__ or "." in fn.__qualname__:
        raise ValueError(f"trial function {name}: must be a plain top-level function")
    return name


def from_notebook(notebook, name: str, **parameters):
    """The function `name` as its notebook cell defines it, after the parameters cell with these
    overrides (as papermill runs them), its source kept for inspect as IPython keeps a cell's."""
    cells = nbformat.read(notebook, as_version=4).cells
    params = [c.source for c in cells if "parameters" in c.metadata.get("tags", [])]
    defining = [c.source for c in cells if c.cell_type == "code" and f"def {name}(" in c.source]
    if len(defining) != 1:
        raise StudyError(f"{notebook}: {len(defining)} cells define {name}, not one")
    namespace = {"__name__": f"notebook_{Path(notebook).stem}"}
    exec("\n".join(params), namespace)
    namespace.update(parameters)
    filename = f"<{Path(notebook).name}: {name}>"
    linecache.cache[filename] = (len(defining[0]), None, defining[0].splitlines(True), filename)
    exec(compile(defining[0], filename, "exec"), namespace)
    return namespace[name]


class TrialStore:
    """<run>/results/trials/<trial_id>.json, one record per finished trial. code: the trial
    function's (records.function_key); without it only the helpers modules' code is compared."""

    def __init__(self, run_dir, code: dict[str, str] | None = None):
        self.folder = run_paths(run_dir)["results"] / "trials"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.code = code
        current = records.identity()
        self.identity = {**current, "code": {**current["code"], **(code or {})}}

    def path(self, trial: Trial) -> Path:
        return self.folder / f"{trial.id}.json"

    def load(self, trial: Trial, metric: str = METRIC) -> dict | None:
        """The trial's record if it is whole, this trial's, possible and current; else None."""
        return self.check(trial, metric)[0]

    def check(self, trial: Trial, metric: str = METRIC) -> tuple[dict | None, str, list[str]]:
        """(record, '', []) to trust; else (None, 'missing' or a cause of records.WORDS, what)."""
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
        why = records.invalid(rec.get("result"), metric)
        if why:
            return None, "invalid", [f"{path.name}: {why}"]
        if self.code is None and isinstance(rec.get("code"), dict):
            rec = {**rec, "code": {k: v for k, v in rec["code"].items() if k.startswith("helpers/")}}
        cause, what = records.stale(rec, self.identity)
        return (None, cause, what) if cause else (rec, "", [])

    def save(self, trial: Trial, result: dict, metric: str = METRIC, **extra) -> dict:
        """Write the trial's record atomically and return it; an impossible result is refused."""
        why = records.invalid(result, metric)
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
    """Run every trial without a valid record as trial_fn(config, context), saving each result
    as it arrives; one row per trial, in order (trials_table)."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    ids = [t.id for t in trials]
    if len(set(ids)) != len(ids):
        raise ValueError("run_trials: duplicate trial ids (the same config twice in the grid?)")
    from helpers.models import fitlog

    fn_name = function_name(trial_fn)
    code, reads = records.function_key(trial_fn)
    if reads:  # the plain values the function reads join its trials' settings, so their ids
        trials = [Trial.of(t.kind, t.config, {**t.settings, "reads": reads}) for t in trials]
    store = TrialStore(run_dir, code)
    found, causes = {}, defaultdict(list)
    for t in trials:
        found[t.id], cause, what = store.check(t, metric)
        if cause in records.WORDS:
            causes[cause].append(what)
    pending = [t for t in trials if found[t.id] is None]
    print(f"{desc}: {len(trials)} trials, {len(trials) - len(pending)} already done, "
          f"{len(pending)} to run ({executor})", *records.explain(desc, causes), sep="\n",
          flush=True)
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
            _run_ray(pending, trial_fn, context, finished, cpus_per_trial, gpus_per_trial)
    finally:
        bar.close()
    return trials_table([found[t.id] for t in trials])


def _timed(trial_fn: TrialFn, trial: Trial, context: dict) -> tuple[dict, float]:
    """(trial_fn(config, context), wall seconds), quietly (a grid's progress is its bar),
    logged to TensorBoard and MLflow (when set up); errors name the trial."""
    from helpers.models import fitlog, training

    t0 = time.perf_counter()
    try:
        with fitlog.trial(trial.id, trial.config), training.quiet():
            result = trial_fn(dict(trial.config), dict(context))
            fitlog.finish(result)
    except Exception as err:
        raise TrialFailed(f"trial {trial.id} ({_label(trial.config)}) failed: "
                          f"{type(err).__name__}: {err}") from err
    return result, time.perf_counter() - t0


def _ray_task(trial_fn: TrialFn, trial: Trial, context: dict) -> tuple[dict, float]:
    return _timed(trial_fn, trial, context)  # its name names Ray's worker process (ray::_ray_task)


# Ray's head proxy, when the client server it starts for us dies (grpc#43055, docs/trials.md),
# or dies between its looks (psutil.ZombieProcess), or has no channel: a new attempt starts anew
CLIENT_START_FAILED = ("Starting Ray client server failed", "in start_specific_server",
                       "Proxy failed to Connect to backend")


def connect_retrying(connect: Callable[[], object], attempts: int = 3, wait: float = 10.0):
    """connect() (ray.init or ray.util.connect to ray://), tried up to attempts times while the
    head's client server fails to start for us; other errors at once."""
    for attempt in range(1, attempts):
        try:
            return connect()
        except ConnectionAbortedError as err:
            if not any(m in str(err) for m in CLIENT_START_FAILED):
                raise
            print(f"ray: the head's client server did not start for this client (attempt "
                  f"{attempt}/{attempts}); trying again in {wait:.0f} s", file=sys.stderr,
                  flush=True)
            time.sleep(wait)
    return connect()  # the last attempt: its error, if any, is the caller's


def _start_ray(ray) -> None:
    """Connect to RAY_ADDRESS's cluster (shipping this code) or start a local Ray whose workers
    see the same data dir and import this checkout's helpers."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": backend.name()}  # workers train alike
    if os.environ.get("RAY_ADDRESS"):
        if "CINIC10_DATA" in os.environ:  # a disk the cluster shares; else workers build caches
            env["CINIC10_DATA"] = os.environ["CINIC10_DATA"]
        excludes = [".venv", ".git", "data", "reports", "*.ipynb", "**/__pycache__"]
        runtime_env = {"env_vars": env, "working_dir": str(ROOT), "excludes": excludes}
        address = os.environ["RAY_ADDRESS"]
        connect_retrying(lambda: ray.init(address=address, runtime_env=runtime_env))
        return
    env |= {"CINIC10_DATA": str(data_dir()), "PYTHONPATH": str(ROOT)}
    for key in ("CINIC10_TENSORBOARD", "MLFLOW_TRACKING_URI"):  # workers log as the driver
        if os.environ.get(key):
            env[key] = os.environ[key]
    ray.init(  # "local": a Ray of its own, even where `ray start` left a cluster running
        address="local", num_cpus=int(local_resources()["CPU"]), runtime_env={"env_vars": env},
        include_dashboard=False, log_to_driver=False)


def local_resources() -> dict[str, float]:
    """{"CPU": cores, "GPU": NVIDIA GPUs} a local Ray here gets, counted as Ray counts them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = len([d for d in visible.split(",") if d.strip() and d.strip() != "NoDevFiles"])
    else:
        gpus = len([p for p in Path("/dev").glob("nvidia*") if p.name[6:].isdigit()])
    return {"CPU": float(cores or 1), "GPU": float(gpus)}


def check_resources(where: str, cpus: float, gpus: float, have: dict[str, float]) -> None:
    """Refuse trials asking for more cores or GPUs than the Ray they run on has (Ray would queue
    them forever)."""
    for kind, need, param in (("CPU", cpus, "cpus_per_trial"), ("GPU", gpus, "gpus_per_trial")):
        got = have.get(kind, 0.0)
        if need > got:
            raise StudyError(
                f"{where}: {param}={need:g} with executor=ray, but this machine's Ray has {got:g} "
                f"{'core' if kind == 'CPU' else 'GPU'}(s): no trial could ever start; set "
                f"-p {param}={got:g}, or RAY_ADDRESS to a cluster that has them")


def _run_ray(pending, trial_fn, context, finished, cpus: float, gpus: float) -> None:
    """Pending trials as Ray tasks (Ray stays up: a second grid reuses its workers and their
    dataset); the driver writes every record."""
    try:
        import ray
    except ImportError as err:
        raise StudyError("executor='ray' needs Ray, an optional extra: pip install -e '.[ray]' "
                         "(or set executor='local')") from err
    if not ray.is_initialized():
        _start_ray(ray)
    if not os.environ.get("RAY_ADDRESS"):  # its own Ray: what it has now is all it will have
        check_resources("trials", cpus, gpus, ray.cluster_resources())
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_ray_task)
    context = {**context, "threads": max(1, int(cpus))}
    refs = {task.remote(trial_fn, t, context): t for t in pending}
    try:
        while refs:
            (ref,), _ = ray.wait(list(refs), num_returns=1)
            trial = refs.pop(ref)
            try:
                result, seconds = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                raise TrialFailed(f"trial {trial.id} failed in a Ray worker: {err}") from None
            finished(trial, result, seconds)
    finally:  # an error or an interrupt: stop what is still queued or running
        for ref in refs:
            ray.cancel(ref, force=True)


def trials_table(records: list[dict]) -> pd.DataFrame:
    """Trial records -> one row each: trial_id, config, scalar results, wall seconds."""
    return pd.DataFrame([
        {"trial_id": rec["trial_id"], **rec["config"],
         **{k: v for k, v in rec["result"].items() if not isinstance(v, list | dict)},
         "wall_seconds": rec.get("seconds"), "executor": rec.get("executor")} for rec in records])
