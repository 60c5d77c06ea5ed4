"""Trials as Ray tasks (trialstore.run_trials' executor "ray"): on RAY_ADDRESS's cluster or a
local Ray of its own, refusing trials no worker could ever take."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from helpers import backend
from helpers.base import ROOT, StudyError, data_dir
from helpers.experiments import TrialFailed

# Ray's head proxy, when the client server it starts for us dies (grpc#43055, docs/trials.md),
# or dies between its looks (psutil.ZombieProcess), or has no channel: a new attempt starts anew
CLIENT_START_FAILED = ("Starting Ray client server failed", "in start_specific_server",
                       "Proxy failed to Connect to backend")


def connect_retrying(connect: Callable[[], object], attempts: int = 3, wait: float = 10.0):
    """connect() (ray.init, ray.util.connect), retried while the head's client server fails to
    start for us; other errors at once."""
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
    """Refuse trials asking more cores or GPUs than their Ray has (it would queue them forever)."""
    for kind, need, param in (("CPU", cpus, "cpus_per_trial"), ("GPU", gpus, "gpus_per_trial")):
        got = have.get(kind, 0.0)
        if need > got:
            raise StudyError(
                f"{where}: {param}={need:g} with executor=ray, but this machine's Ray has {got:g} "
                f"{'core' if kind == 'CPU' else 'GPU'}(s): no trial could ever start; set "
                f"-p {param}={got:g}, or RAY_ADDRESS to a cluster that has them")


def _start(ray) -> None:
    """Join RAY_ADDRESS's cluster, shipping this code, or start a local Ray that imports it."""
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


def _ray_task(timed: Callable, trial_fn: Callable, trial, context: dict) -> tuple[dict, float]:
    return timed(trial_fn, trial, context)  # its name names Ray's worker process (ray::_ray_task)


def run(pending: list, timed: Callable, trial_fn: Callable, context: dict, finished: Callable,
        cpus: float, gpus: float) -> None:
    """finished(trial, *timed(trial_fn, trial, context)) for every pending trial, each a Ray task
    (Ray stays up: a second grid reuses its workers and their dataset)."""
    try:
        import ray
    except ImportError as err:
        raise StudyError("executor='ray' needs Ray, an optional extra: pip install -e '.[ray]' "
                         "(or set executor='local')") from err
    if not ray.is_initialized():
        _start(ray)
    if not os.environ.get("RAY_ADDRESS"):  # its own Ray: what it has now is all it will have
        check_resources("trials", cpus, gpus, ray.cluster_resources())
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_ray_task)
    context = {**context, "threads": max(1, int(cpus))}
    refs = {task.remote(timed, trial_fn, t, context): t for t in pending}
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
