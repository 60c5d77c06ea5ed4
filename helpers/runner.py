"""Run the numbered notebooks with papermill, in order, into <out>/executed/, then the report."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import zmq
from traitlets.config import Config

from .atomic import read_json, write_json
from .data import load_dataset
from .errors import StudyError
from .profiles import plan
from .provenance import provenance

# Encrypt the kernel's local sockets (CurveZMQ) where pyzmq and the kernel can: ipykernel >= 7.3
# warns at every start that plain TCP is readable by other processes on the machine.
KERNEL_CONFIG = Config(
    {"KernelManager": {"transport_encryption": "auto" if zmq.has("curve") else "disabled"}}
)


class NotebookFailed(RuntimeError):
    """A notebook raised: the message names the cell's error and the partly executed copy."""


def run(
    profile: str = "quick",
    *,
    dataset: str | None = None,
    out: str | None = None,
    only: list[str] | None = None,
    overrides=(),
    report: bool = True,
    log_output: bool = False,
) -> Path:
    """Validate, prepare the dataset once, execute the notebooks, write run.json and the report."""
    import papermill as pm

    out = out or f"reports/{profile if '/' not in profile else Path(profile).stem}"
    name, steps = plan(profile, dataset=dataset, out=out, only=only, overrides=overrides)
    if os.environ.get("RAY_ADDRESS") and any(p.get("executor") == "ray" for _, p in steps):
        from .cluster import check_cluster  # before any kernel starts: one line, in seconds

        print(f"ray cluster: {check_cluster()}", flush=True)
    run_dir = Path(steps[0][1]["run_dir"])
    (run_dir / "executed").mkdir(parents=True, exist_ok=True)
    t_run = time.perf_counter()
    print(f"run {name} -> {run_dir} ({len(steps)} notebooks)", flush=True)

    ds = load_dataset(steps[0][1]["dataset"])  # download/decode here, with progress, once
    # what the notebooks load: the same files (a download or CINIC10_DIR resolved to its path)
    resolved = "synthetic" if ds.kind == "synthetic" else ds.meta["location"]
    record_path = run_dir / "run.json"
    old = read_json(record_path) if record_path.exists() else {}
    record = {
        "profile": name,
        "dataset": {**ds.provenance(), "note": ds.note, "requested": steps[0][1]["dataset"]},
        "notebooks": old.get("notebooks", {}),
        **provenance(),
    }
    os.environ["CINIC10_BATCH"] = "1"  # compact per-epoch lines instead of progress bars
    for i, (nb, params) in enumerate(steps, 1):
        params = {**params, "dataset": resolved}
        target = run_dir / "executed" / nb.name
        print(f"[{i}/{len(steps)}] {nb.stem} ...", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb),
                str(target),
                parameters=params,
                cwd=str(nb.parent),
                kernel_name="python3",
                progress_bar=sys.stderr.isatty(),
                log_output=log_output,
                request_save_on_cell_execute=True,
                config=KERNEL_CONFIG,
            )
        except pm.PapermillExecutionError as err:
            raise NotebookFailed(
                f"{nb.stem} failed in cell {err.exec_count}: {err.ename}: "
                f"{err.evalue}\n  partly executed notebook: {target}"
            ) from None
        seconds = time.perf_counter() - t0
        record["notebooks"][nb.stem] = {
            "parameters": params,
            "seconds": round(seconds, 1),
            "executed": str(target.relative_to(run_dir)),
        }
        write_json(record_path, record)
        print(f"[{i}/{len(steps)}] {nb.stem} done in {seconds:.0f}s", flush=True)
    record["seconds"] = round(time.perf_counter() - t_run, 1)
    write_json(record_path, record)
    if report:
        from .report import build_report

        build_report(run_dir)
    return run_dir


def check_run_dir(run_dir: Path) -> Path:
    """A run folder made by `run` (it has run.json)."""
    if not (run_dir / "run.json").exists():
        raise StudyError(
            f"{run_dir}: not a run folder (no run.json); run `python -m helpers run` first"
        )
    return run_dir
