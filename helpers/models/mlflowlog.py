"""MLflow tracking, optional (pip install -e '.[mlflow]'), on when MLFLOW_TRACKING_URI is set:
one run per trial (named by its id; redone: replaced) or per fit outside one (<notebook>_s<seed>
[_2]), in its notebook's experiment, tagged with the run folder; params the config, seed,
backend and code revision; epochs through MlflowCallback (autolog would log everything twice);
a trial's scalar results and record, and the executed notebook and tables, attached."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from helpers import backend
from helpers.artifacts import git_revision
from helpers.base import StudyError, resolve

ENV = "MLFLOW_TRACKING_URI"
TENSORBOARD = "CINIC10_TENSORBOARD"  # the runner's <run>/tensorboard/<notebook>: names both
# MLflow's defaults wait 120 s a request and retry 7 times (minutes on a dead server): these
# bound the check's and the kernels' requests to about half a minute; a value set is kept
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "15", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
TAG = "cinic10.run"  # the trial id, or <notebook>_s<seed>: one MLflow run per value
FOLDER = "cinic10.folder"  # the run folder: trials of the same id in two folders are two runs
_USED: set[str] = set()  # fit runs' names used in this process


def on() -> bool:
    """Whether MLflow logging is switched on (MLFLOW_TRACKING_URI set)."""
    return bool(os.environ.get(ENV))


def _mlflow():
    """mlflow, the URI made absolute and the HTTP bounds set (also for a notebook run by hand)."""
    os.environ[ENV] = absolute(os.environ[ENV])
    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError as err:
        raise StudyError(f"{ENV} is set but MLflow is not installed: pip install -e "
                         f"'.[mlflow]' (or unset {ENV})") from err
    return mlflow


def absolute(uri: str) -> str:
    """uri with a relative path (sqlite:///mlflow.db, mlruns, file:mlruns) taken from the project
    root: the runner, the kernels (cwd notebooks/) and Ray workers log into one store."""
    scheme = urlparse(uri).scheme
    if _sqlite(uri) and not uri.startswith("sqlite:////"):
        path, sep, query = uri.removeprefix("sqlite:///").partition("?")
        return f"sqlite:///{resolve(path)}{sep}{query}"
    if scheme == "" or (scheme == "file" and not uri.startswith("file://")):  # a plain path
        return resolve(uri.removeprefix("file:")).as_uri()
    return uri


def _sqlite(uri: str) -> Path | None:
    """A SQLite store's database file, else None."""
    return Path(uri.removeprefix("sqlite:///").partition("?")[0]) if uri.startswith(
        "sqlite:///") else None


def check_store(say=print) -> str:
    """The store tried once before any notebook runs (the URI, '' if off); one that cannot be
    used (unknown scheme, nothing listening, no answer, a read-only SQLite folder): one line."""
    if not on():
        return ""
    mlflow = _mlflow()
    uri = os.environ[ENV]
    if db := _sqlite(uri):  # writable folder and file (else MLflow retries for minutes)
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=db.parent).close()
            with contextlib.closing(sqlite3.connect(db, timeout=10)) as con:
                con.execute("BEGIN IMMEDIATE")
                con.rollback()
        except (OSError, sqlite3.Error) as err:
            why = getattr(err, "strerror", None) or str(err)
            raise StudyError(f"{ENV}=sqlite:///{db}: cannot write the MLflow store in "
                             f"{db.parent} ({why}); point it at a writable folder, or unset "
                             f"{ENV}") from None
    try:  # (a SQLite store is created here, with its tables, before any kernel starts)
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - whatever the store raised, it cannot be used
        raise StudyError(f"{ENV}={uri}: cannot use this MLflow store ({_reason(err, uri)}); "
                         f"start the server or fix the URI, or unset {ENV}") from None
    say(f"mlflow: logging to {uri}")
    return uri


def _reason(err: BaseException, uri: str) -> str:
    """Why the store failed, in a few words: MLflow wraps the socket's error in four others."""
    chain = [err]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 9:
        chain.append(cause)
    if any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in chain):
        tries = 1 + int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"))
        return f"no answer in {tries} tries of {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT')} s"
    if "unsupported URI" in str(err):
        return f"MLflow has no store for the scheme {urlparse(uri).scheme!r}"
    for e in reversed(chain):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _where() -> tuple[str, str]:
    """(notebook, run folder) from <run>/tensorboard/<notebook>, else ('interactive', '')."""
    tb = os.environ.get(TENSORBOARD)
    return (Path(tb).name, str(Path(tb).parent.parent)) if tb else ("interactive", "")


def _runs(**tags) -> list:
    """The runs with these tags in this run folder (compared here: MLflow's filter cannot escape
    quotes) of the notebook's experiment, made on first use (SQLite: artifacts beside it)."""
    mlflow, (notebook, folder) = _mlflow(), _where()
    db = _sqlite(os.environ[ENV])
    if mlflow.get_experiment_by_name(f"cinic10 {notebook}") is None and db:
        mlflow.create_experiment(f"cinic10 {notebook}",
                                 artifact_location=(db.parent / "mlartifacts").resolve().as_uri())
    mlflow.set_experiment(f"cinic10 {notebook}")
    where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    return [r for r in mlflow.search_runs(filter_string=where, output_format="list")
            if r.data.tags.get(FOLDER) == folder]


@contextlib.contextmanager
def run(name: str, params: dict):
    """An MLflow run named name for the block, its params logged, replacing an earlier one of
    that name (a trial redone). Nothing when MLflow is off."""
    if not on():
        yield None
        return
    mlflow = _mlflow()
    for old in _runs(**{TAG: name}):
        mlflow.delete_run(old.info.run_id)
    notebook, folder = _where()
    with mlflow.start_run(run_name=name, tags={TAG: name, FOLDER: folder,
                                               "notebook": notebook}) as active:
        mlflow.log_params(params)
        yield active


def trial_params(config: dict) -> dict:
    """A trial's MLflow parameters: its config, seed, backend and code revision."""
    out = {f"config.{k}": str(v) for k, v in config.items()}
    return out | {"seed": config.get("seed"), "backend": backend.name(),
                  "code_revision": git_revision()}


def finish(result: dict) -> None:
    """The trial's scalar results as the active run's final metrics."""
    scalars = {k: float(v) for k, v in result.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    if on() and scalars and (mlflow := _mlflow()).active_run() is not None:
        mlflow.log_metrics(scalars)


def attach(name: str, path: Path) -> None:
    """path (a trial's record) as an artifact of the run named name."""
    if on():
        for found in _runs(**{TAG: name}):
            _mlflow().MlflowClient().log_artifact(found.info.run_id, str(path))


def attach_notebook(paths: list[Path], say=print) -> None:
    """A finished notebook's executed copy and tables as artifacts of each of its runs in this
    run folder; a store failing now is one line (the results are on disk), not fatal."""
    if not on():
        return
    try:
        client = _mlflow().MlflowClient()
        for found in _runs(notebook=_where()[0]):
            for path in paths:
                client.log_artifact(found.info.run_id, str(path), artifact_path="notebook")
    except Exception as err:  # noqa: BLE001 - whatever the store raised: said, not fatal
        say(f"mlflow: {_where()[0]}'s notebook and tables not attached to its runs in "
            f"{os.environ[ENV]} ({_reason(err, os.environ[ENV])})")


def callbacks(seed: int) -> list:
    """For a fit: MlflowCallback into the trial's run, else into a run the fit opens and closes
    (<notebook>_s<seed>); [] when off. (Keras here: the runner must not load TensorFlow yet.)"""
    if not on():
        return []
    mlflow = _mlflow()
    import keras
    from mlflow.keras import MlflowCallback

    if mlflow.active_run() is not None:
        return [MlflowCallback()]
    name, block = fresh(f"{_where()[0]}_s{seed}", _USED), contextlib.ExitStack()
    opens = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: block.enter_context(run(name, trial_params({"seed": seed}))),
        on_train_end=lambda logs: block.close())
    return [opens, MlflowCallback()]


def fresh(base: str, used: set[str]) -> str:
    """base, else base_2, base_3 ...: the first name not in used (a second fit of a seed in one
    process, 05's stages), now added to it."""
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name
