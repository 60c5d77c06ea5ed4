"""MLflow tracking, optional (pip install -e '.[mlflow]'): on when MLFLOW_TRACKING_URI is set
(e.g. sqlite:///mlruns.db, or http://host:5000), off and never imported otherwise.

One MLflow run per trial (run_trials) or, for a fit outside a trial (02's seeds, 05's stages),
per notebook and seed, named by the trial's id (<notebook>_s<seed>[_2] outside trials) and tagged
with it: its parameters are the config, seed, backend and code revision; per-epoch metrics come
from mlflow.keras.MlflowCallback (autolog stays off: it would log everything twice); a trial's
final metrics are its scalar results and its record (results/trials/<id>.json) is an artifact;
once the notebook completes, its executed copy and CSV tables (the history among them) are
attached to each of its runs.
A trial done before is not rerun, so it logs nothing; one that is redone replaces the run with
its id instead of adding another. Logging only (records.py leaves it out of the code
fingerprint)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import keras

ENV = "MLFLOW_TRACKING_URI"
TAG = "cinic10.run"  # the trial id, or <notebook>_s<seed>: one MLflow run per value
FOLDER = "cinic10.folder"  # the run folder: trials of the same id in two folders are two runs
_USED: set[str] = set()  # fit runs' names used in this process


def on() -> bool:
    """Whether MLflow logging is switched on (MLFLOW_TRACKING_URI set)."""
    return bool(os.environ.get(ENV))


def _mlflow():
    try:
        import mlflow
    except ImportError as err:
        from helpers.base import StudyError

        raise StudyError(f"{ENV} is set but MLflow is not installed: pip install -e "
                         f"'.[mlflow]' (or unset {ENV})") from err
    return mlflow


def notebook() -> str:
    """The notebook running (the runner's TensorBoard folder names it), else 'interactive'."""
    from helpers.models.tblog import ENV as TB

    return Path(os.environ[TB]).name if os.environ.get(TB) else "interactive"


def _experiment(mlflow) -> None:
    """The notebook's experiment, made on first use; with a SQLite store its artifacts go
    next to the database (MLflow's default, ./mlruns, would be the kernel's cwd: notebooks/)."""
    name = f"cinic10 {notebook()}"
    uri = os.environ[ENV]
    if mlflow.get_experiment_by_name(name) is None and uri.startswith("sqlite:///"):
        where = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
        mlflow.create_experiment(name, artifact_location=where.resolve().as_uri())
    mlflow.set_experiment(name)


def folder() -> str:
    """The run folder (<run> of the runner's <run>/tensorboard/<notebook>), else ''."""
    from helpers.models.tblog import ENV as TB

    return str(Path(os.environ[TB]).parent.parent) if os.environ.get(TB) else ""


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _runs(mlflow, **tags) -> list:
    """This experiment's runs with the given tags (and this run folder's)."""
    tags = {FOLDER: folder(), **tags}
    where = " and ".join(f"tags.`{k}` = '{_quoted(v)}'" for k, v in tags.items())
    return mlflow.search_runs(filter_string=where, output_format="list")


def _existing(mlflow, name: str) -> str | None:
    runs = _runs(mlflow, **{TAG: name})
    return runs[0].info.run_id if runs else None


@contextlib.contextmanager
def run(name: str, params: dict):
    """An MLflow run named name for the block, its params logged; one from an earlier attempt
    (a trial redone: its record was stale or missing) is deleted first, so each name has one
    run and its metrics once. Nothing when MLflow is off."""
    if not on():
        yield None
        return
    mlflow = _mlflow()
    _experiment(mlflow)
    while (old := _existing(mlflow, name)) is not None:
        mlflow.delete_run(old)
    tags = {TAG: name, FOLDER: folder(), "notebook": notebook()}
    with mlflow.start_run(run_name=name, tags=tags) as active:
        mlflow.log_params(params)
        yield active


def trial_params(config: dict) -> dict:
    """A trial's MLflow parameters: its config, seed, backend and code revision."""
    from helpers import backend
    from helpers.artifacts import git_revision

    out = {f"config.{k}": str(v) for k, v in config.items()}
    return out | {"seed": config.get("seed"), "backend": backend.name(),
                  "code_revision": git_revision()}


def finish(result: dict) -> None:
    """The trial's scalar results as the active run's final metrics."""
    if not on():
        return
    mlflow = _mlflow()
    scalars = {k: float(v) for k, v in result.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    if mlflow.active_run() is not None and scalars:
        mlflow.log_metrics(scalars)


def attach(name: str, path: Path) -> None:
    """path (a trial's record) as an artifact of the run named name."""
    if not on():
        return
    mlflow = _mlflow()
    _experiment(mlflow)
    run_id = _existing(mlflow, name)
    if run_id is not None:
        mlflow.MlflowClient().log_artifact(run_id, str(path))


def attach_notebook(paths: list[Path]) -> None:
    """A finished notebook's executed copy and tables (its history CSV among them) as
    artifacts of each of its runs in this run folder (the runner calls it)."""
    if not on():
        return
    mlflow = _mlflow()
    _experiment(mlflow)
    client = mlflow.MlflowClient()
    for found in _runs(mlflow, notebook=notebook()):
        for path in paths:
            client.log_artifact(found.info.run_id, str(path), artifact_path="notebook")


def callbacks(seed: int) -> list:
    """For a fit: MlflowCallback into the trial's run, or, outside one, into a run of its own
    (<notebook>_s<seed>) that the fit opens and closes; [] when MLflow is off."""
    if not on():
        return []
    mlflow = _mlflow()
    from mlflow.keras import MlflowCallback

    if mlflow.active_run() is not None:
        return [MlflowCallback()]
    name = base = f"{notebook()}_s{seed}"
    k = 1
    while name in _USED:  # a second fit of this seed in the process (05's stages): _2
        k += 1
        name = f"{base}_{k}"
    _USED.add(name)
    return [_FitRun(name, seed), MlflowCallback()]


class _FitRun(keras.callbacks.Callback):
    """Opens the fit's own MLflow run at its start and closes it at its end."""

    def __init__(self, name: str, seed: int):
        super().__init__()
        self.name, self.seed, self._block = name, seed, None

    def on_train_begin(self, logs=None):
        self._block = run(self.name, trial_params({"seed": self.seed}))
        self._block.__enter__()

    def on_train_end(self, logs=None):
        if self._block is not None:
            self._block.__exit__(None, None, None)
            self._block = None
