"""Run the numbered notebooks with papermill, in order, into <out>/executed/, then the report."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import time
from pathlib import Path

import zmq
from nbclient.exceptions import DeadKernelError
from traitlets.config import Config

from helpers import artifacts, backend
from helpers.base import StudyError
from helpers.data import check_subset_sizes, load_dataset
from helpers.data.sources import CINIC10_URL
from helpers.experiments.protocol import origins
from helpers.experiments.raytasks import check_resources, local_resources
from helpers.models import fitlog
from helpers.run.cluster import check_cluster
from helpers.run.profiles import load_profile, parse_override, plan_sources
from helpers.run.terminal import Progress, quiet_kernel_noise


class NotebookFailed(RuntimeError):
    """A notebook raised: the message names the cell's error and the partly executed copy."""


def rerun_command(profile: str, dataset: str, run_dir: Path, stem: str, params: dict, overrides,
                  hint: str = "") -> str:
    """The command that reruns just stem: its -p overrides, and any `-p NAME=VALUE` hint says."""
    parts = ["python -m helpers run", f"--profile {shlex.quote(profile)}",
             f"--dataset {shlex.quote(dataset)}", f"--out {shlex.quote(str(run_dir))}",
             f"--only {stem[:2]}"]
    for text in overrides:
        target, key, _ = parse_override(text)
        if key in params and (target is None or stem.startswith(target)):
            parts.append(f"-p {shlex.quote(text)}")
    return " ".join(parts + sorted(set(re.findall(r"-p [A-Za-z_]+=[A-Z]+\b", hint))))


def run(profile: str = "quick", *, dataset: str | None = None, out: str | None = None,
        only: list[str] | None = None, overrides=(), report: bool = True,
        log_output: bool = False) -> Path:
    """Validate, load the data once, run the notebooks (each in run.json), then the report, also
    after a failure (NotebookFailed after it); stderr (the kernels' too) noise-filtered."""
    with quiet_kernel_noise():
        keras_backend = backend.check()  # one line before anything runs (KERAS_BACKEND=torch)
        name, steps, sources = plan_sources(profile, dataset=dataset, out=out, only=only,
                                            overrides=overrides)
        on_ray = [(nb.stem, p) for nb, p in steps if p.get("executor") == "ray"]
        if on_ray and os.environ.get("RAY_ADDRESS"):  # before any kernel: seconds
            print(f"ray cluster: {check_cluster()}", flush=True)
        elif on_ray:  # the run's own Ray: before any kernel, else Ray queues its trials forever
            for stem, p in on_ray:
                check_resources(stem, p.get("cpus_per_trial", 1), p.get("gpus_per_trial", 0),
                                local_resources())
        fitlog.check_store()  # when MLFLOW_TRACKING_URI is set: one line before any kernel
        run_dir = Path(steps[0][1]["run_dir"])
        with artifacts.one_at_a_time(run_dir):  # a second run into this folder is refused
            return _run_locked(profile, name, steps, sources, run_dir, keras_backend, overrides,
                               report=report, log_output=log_output)


def _run_locked(profile: str, name: str, steps: list, sources: dict, run_dir: Path,
                keras_backend: str, overrides, *, report: bool, log_output: bool) -> Path:
    """run() once the folder is this command's alone."""
    import papermill as pm

    stems = [nb.stem for nb, _ in steps]
    record = artifacts.read_record(run_dir, checked=True)
    artifacts.check_compatible(record, stems, name, backend=keras_backend)
    t_run = time.perf_counter()
    print(f"run {name} -> {run_dir} ({len(steps)} notebooks)", flush=True)
    requested = steps[0][1]["dataset"]
    ds = _load(requested, name, load_profile(profile)[1])  # download/decode here, once
    for nb, params in steps:  # subsets larger than the data: refused before any notebook
        check_subset_sizes(ds, params, nb.stem)
    # what the notebooks load: the same files (a download or CINIC10_DIR resolved to its path)
    resolved = "synthetic" if ds.kind == "synthetic" else ds.meta["location"]
    dataset_record = {**ds.provenance(), "note": ds.note, "requested": requested}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    (run_dir / "executed").mkdir(parents=True, exist_ok=True)

    def begin(record: dict) -> None:
        artifacts.check_compatible(record, stems, name, ds.fingerprint, backend=keras_backend)
        record.update({"profile": name, "dataset": dataset_record, **artifacts.provenance()})

    artifacts.update_record(run_dir, begin)
    os.environ["CINIC10_BATCH"] = "1"  # compact per-epoch lines instead of progress bars
    kernels, failure = kernel_dir(run_dir), None
    try:
        for i, (nb, params) in enumerate(steps, 1):
            params = {**params, "dataset": resolved}
            target = run_dir / "executed" / nb.name
            entry = {
                "parameters": params, "origins": origins(nb.stem, params, sources[nb.stem]),
                "profile": name, "backend": keras_backend,
                "dataset": {k: dataset_record[k] for k in ("dataset", "kind", "fingerprint")},
                "executed": str(target.relative_to(run_dir)),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "status": "running",  # stays so if this process is killed: never a result
                "rerun": rerun_command(profile, requested, run_dir, nb.stem, params, overrides),
            }
            artifacts.update_record(run_dir, _entry(nb.stem, entry))
            print(f"[{i}/{len(steps)}] {nb.stem} ...", flush=True)
            # its fits' TensorBoard logs, read by the kernel it starts
            os.environ["CINIC10_TENSORBOARD"] = str(run_dir / "tensorboard" / nb.stem)
            t0 = time.perf_counter()
            # without -v: the kernel's output is read for a status line, not shown
            try:
                with contextlib.nullcontext() if log_output else Progress(nb.stem) as seen:
                    pm.execute_notebook(
                        str(nb), str(target), parameters=params, cwd=str(nb.parent),
                        kernel_name="python3", progress_bar=sys.stderr.isatty() and log_output,
                        log_output=log_output, request_save_on_cell_execute=True,
                        config=kernel_config(kernels / f"kernel-{nb.stem}-{os.getpid()}.json"),
                        **({} if seen is None else {"stdout_file": seen, "stderr_file": seen}))
            except (pm.PapermillExecutionError, DeadKernelError, OSError) as err:
                cell = isinstance(err, pm.PapermillExecutionError)
                error = (f"cell {err.exec_count}: {err.ename}: {err.evalue}" if cell
                         else "its kernel, which died: killed from outside (the out-of-memory "
                         "killer, or kill -9)" if isinstance(err, DeadKernelError)
                         else f"saving {target.name}: {err.strerror or err}")
                entry.update(status="failed", error=error,
                             seconds=round(time.perf_counter() - t0, 1),
                             rerun=rerun_command(profile, requested, run_dir, nb.stem, params,
                                                 overrides, err.evalue if cell else ""))
                unrecorded = _record_safely(run_dir, _entry(nb.stem, entry))
                left = [n.stem for n, _ in steps[i:]]
                failure = NotebookFailed(
                    f"{nb.stem} failed in {error}\n  partly executed notebook: {target}"
                    f"\n  rerun just it: {entry['rerun']}"
                    + (f"\n  not run after it: {', '.join(left)}" if left else "")
                    + (f"\n  {unrecorded}: it still shows {nb.stem} as running, which the report"
                       " reads as not completed" if unrecorded else ""))
                break
            seconds = time.perf_counter() - t0
            entry.update(status="completed", seconds=round(seconds, 1))
            artifacts.update_record(run_dir, _entry(nb.stem, entry))
            print(f"[{i}/{len(steps)}] {nb.stem} done in {seconds:.0f}s", flush=True)
            if os.environ.get("MLFLOW_TRACKING_URI"):  # its runs get the notebook and tables
                fitlog.attach_notebook(
                    [target, *sorted((run_dir / "results").glob(f"{nb.stem}*.csv"))])
    finally:  # every command's time counts, so the whole run's wall time survives reruns
        os.environ.pop("CINIC10_TENSORBOARD", None)
        command = {"started": started, "seconds": round(time.perf_counter() - t_run, 1),
                   "notebooks": stems}

        def finish(record: dict) -> None:
            record.setdefault("commands", []).append(command)
            record["seconds"] = round(sum(c["seconds"] for c in record["commands"]), 1)

        unrecorded = _record_safely(run_dir, finish)
    if unrecorded and failure is None:  # every notebook ran, but run.json does not say so
        raise StudyError(unrecorded)
    if (run_dir / "results" / "findings").is_dir():  # anew from the notebooks that stand now
        from helpers.experiments import findings  # deferred, as the report: scipy takes seconds

        with contextlib.suppress(OSError):  # a full disk: the failure's own message says so
            findings.collect(run_dir, artifacts.completed_notebooks(run_dir))
    if report:
        from helpers.run.report import build_report  # deferred: matplotlib, scipy take seconds
        try:
            build_report(run_dir)
        except StudyError as err:
            if failure is None:
                raise
            print(f"report: not built: {err}", flush=True)
    if failure is not None:
        raise failure
    return run_dir


def _entry(stem: str, entry: dict):
    return lambda record: record["notebooks"].update({stem: entry})


def _record_safely(run_dir: Path, change) -> str:
    """update_record while another error may be under way: '' if run.json was written, else why."""
    try:
        artifacts.update_record(run_dir, change)
    except OSError as err:
        return f"{run_dir / 'run.json'} could not be updated ({err.strerror or err})"
    return ""


def _load(requested: str, profile: str, prof: dict):
    """The dataset, once: with synthetic_fallback: false (full, gpu), `auto` stops at once where
    CINIC-10 is out of reach instead of training for hours on generated data."""
    if requested != "auto" or prof.get("synthetic_fallback", True):
        return load_dataset(requested)
    try:
        return load_dataset("cinic10")
    except StudyError as err:
        raise StudyError(
            f"profile {profile} runs on CINIC-10 only, and it is not within reach ({err}): "
            f"download {CINIC10_URL} to data/raw/CINIC-10.tar.gz or set CINIC10_DIR to a copy, "
            "or name a dataset explicitly (--dataset PATH or --dataset synthetic; the report "
            "then says its numbers are not CINIC-10's)") from None


def kernel_config(connection_file: Path) -> Config:
    """The kernel's connection file at our path (jupyter_client's temporary one outlives a kill),
    its sockets encrypted where pyzmq can (ipykernel >= 7.3 warns at each start otherwise)."""
    return Config({"KernelManager": {
        "transport_encryption": "auto" if zmq.has("curve") else "disabled",
        "connection_file": str(connection_file)}})


def kernel_dir(run_dir: Path) -> Path:
    """<run>/.kernels, emptied of a run killed with -9's files (ipykernel dies with its parent)."""
    folder = run_dir / ".kernels"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("kernel-*.json"):
        stale.unlink(missing_ok=True)
    return folder

