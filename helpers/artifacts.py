"""The run folder's layout and the files each notebook leaves there, all with provenance:
<run>/figures/, <run>/results/NN_name.json (+ CSVs), <run>/models/NN_name.keras."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from .atomic import read_json, write_atomic, write_json
from .paths import resolve
from .provenance import provenance


def run_paths(run_dir: str | os.PathLike) -> dict[str, Path]:
    """The run folder's sub-folders, created on first use."""
    root = resolve(run_dir)
    out = {"root": root}
    for sub in ("figures", "results", "models", "executed"):
        out[sub] = root / sub
        out[sub].mkdir(parents=True, exist_ok=True)
    return out


def save_metrics(run_dir, name: str, metrics: dict, **context) -> Path:
    """results/<name>.json: the metrics plus provenance (profile, dataset, seed … in context)."""
    return write_json(
        run_paths(run_dir)["results"] / f"{name}.json",
        {**metrics, "provenance": provenance(**context)},
    )


def load_metrics(run_dir, name: str) -> dict:
    """A notebook's results/<name>.json (for later notebooks and the report)."""
    return read_json(run_paths(run_dir)["results"] / f"{name}.json")


def save_table(run_dir, name: str, table: pd.DataFrame) -> Path:
    """results/<name>.csv, atomically."""
    return write_atomic(
        run_paths(run_dir)["results"] / f"{name}.csv", lambda p: table.to_csv(p, index=False)
    )


def save_model(run_dir, name: str, model) -> Path:
    """models/<name>.keras, atomically (Keras insists on the .keras suffix, so the temporary
    name keeps it)."""
    folder = run_paths(run_dir)["models"]
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, folder / f"{name}.keras")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / f"{name}.keras"
