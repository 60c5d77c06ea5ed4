"""MLflow tracking, optional (pip install -e '.[mlflow]'): on when MLFLOW_TRACKING_URI is set
(sqlite:///mlruns.db, http://host:5000 ...), off and never imported otherwise; the runner
checks the store once before any notebook runs (check_store).

One MLflow run per trial (named and tagged by its id) or, for a fit outside a trial (02's
seeds, 05's stages), per notebook and seed (<notebook>_s<seed>[_2]): params are the config,
seed, backend and code revision; per-epoch metrics come from mlflow.keras.MlflowCallback
(autolog would log everything twice); a trial's scalar results are its final metrics and its
record an artifact; the executed notebook and its CSV tables are attached to each of its runs.
A trial redone replaces the run with its id instead of adding another."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from helpers.base import StudyError, resolve

ENV = "MLFLOW_TRACKING_URI"
# the runner's <run>/tensorboard/<notebook> (tblog logs there): it names the notebook and the
# run folder for MLflow too
TENSORBOARD = "CINIC10_TENSORBOARD"
# MLflow's own defaults wait up to 120 s per HTTP request and retry 7 times with backoff (about
# 4 minutes on a closed port, more on a server that never answers): these bound every request,
# the check's and the kernels', to about half a minute; a value the user set is kept.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "15", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
TAG = "cinic10.run"  # the trial id, or <notebook>_s<seed>: one MLflow run per value
FOLDER = "cinic10.folder"  # the run folder: trials of the same id in two folders are two runs
_USED: set[str] = set()  # fit runs' names used in this process


def on() -> bool:
    """Whether MLflow logging is switched on (MLFLOW_TRACKING_URI set)."""
    return bool(os.environ.get(ENV))


def _mlflow():
    """mlflow, with MLFLOW_TRACKING_URI made absolute and the HTTP bounds set (as the runner
    sets both for its kernels; here for a notebook run by hand)."""
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
    """uri with a relative path made absolute against the project root (sqlite:///mlflow.db ->
    sqlite:////<root>/mlflow.db; mlruns or file:mlruns -> file:///<root>/mlruns): the runner,
    the kernels (cwd notebooks/) and Ray workers then log into one store. Others as given."""
    scheme = urlparse(uri).scheme
    if scheme == "sqlite" and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path, sep, query = uri.removeprefix("sqlite:///").partition("?")
        return f"sqlite:///{resolve(path)}{sep}{query}"
    if scheme == "file" and not uri.startswith("file://"):  # file:mlruns, file:./mlruns
        return resolve(uri.removeprefix("file:")).as_uri()
    if scheme == "":  # a plain path: MLflow's file store
        return resolve(uri).as_uri()
    return uri


def check_store(say=print) -> str:
    """The store tried once before any notebook runs: one that cannot be used (unknown scheme,
    nothing listening, no answer, a read-only SQLite folder) is one line. The URI ('' if off)."""
    if not on():
        return ""
    mlflow = _mlflow()
    uri = os.environ[ENV]
    if _sqlite(uri):
        _check_sqlite(_sqlite(uri))
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


def _sqlite(uri: str) -> Path | None:
    """A SQLite store's database file, else None."""
    return Path(uri.removeprefix("sqlite:///").partition("?")[0]) if uri.startswith(
        "sqlite:///") else None


def _check_sqlite(db: Path) -> None:
    """A SQLite store's folder and file writable (else MLflow retries for minutes): a
    temporary file beside db, then a write lock on db itself (made empty if absent)."""
    folder = db.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as con:
            con.execute("BEGIN IMMEDIATE")
            con.rollback()
    except (OSError, sqlite3.Error) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise StudyError(f"{ENV}=sqlite:///{db}: cannot write the MLflow store in {folder} "
                         f"({why}); point it at a writable folder, or unset {ENV}") from None


def notebook() -> str:
    """The notebook running (the runner's TensorBoard folder names it), else 'interactive'."""
    tb = os.environ.get(TENSORBOARD)
    return Path(tb).name if tb else "interactive"


def _experiment(mlflow) -> None:
    """The notebook's experiment, made on first use; with a SQLite store its artifacts go
    next to the database (MLflow's default, ./mlruns, would be the kernel's cwd: notebooks/)."""
    name = f"cinic10 {notebook()}"
    db = _sqlite(os.environ[ENV])
    if mlflow.get_experiment_by_name(name) is None and db:
        mlflow.create_experiment(name, artifact_location=(db.parent / "mlartifacts").resolve()
                                 .as_uri())
    mlflow.set_experiment(name)


def folder() -> str:
    """The run folder (<run> of the runner's <run>/tensorboard/<notebook>), else ''."""
    tb = os.environ.get(TENSORBOARD)
    return str(Path(tb).parent.parent) if tb else ""


def _runs(mlflow, **tags) -> list:
    """This experiment's runs with the given tags (letters, digits, - and _) in this run folder,
    compared here: a folder's name may hold quotes, which MLflow's filter cannot escape."""
    where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    return [r for r in mlflow.search_runs(filter_string=where, output_format="list")
            if r.data.tags.get(FOLDER) == folder()]


def _existing(mlflow, name: str) -> str | None:
    runs = _runs(mlflow, **{TAG: name})
    return runs[0].info.run_id if runs else None


@contextlib.contextmanager
def run(name: str, params: dict):
    """An MLflow run named name for the block, its params logged; an earlier one of that name
    (a trial redone) is deleted first. Nothing when MLflow is off."""
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


def attach_notebook(paths: list[Path], say=print) -> None:
    """A finished notebook's executed copy and tables as artifacts of each of its runs in this
    run folder; a store failing now is said in one line (the results are on disk) and the run
    goes on."""
    if not on():
        return
    mlflow = _mlflow()
    try:
        _experiment(mlflow)
        client = mlflow.MlflowClient()
        for found in _runs(mlflow, notebook=notebook()):
            for path in paths:
                client.log_artifact(found.info.run_id, str(path), artifact_path="notebook")
    except Exception as err:  # noqa: BLE001 - whatever the store raised: said, not fatal
        say(f"mlflow: {notebook()}'s notebook and tables not attached to its runs in "
            f"{os.environ[ENV]} ({_reason(err, os.environ[ENV])})")


def callbacks(seed: int) -> list:
    """For a fit: MlflowCallback into the trial's run, or, outside one, into a run of its own
    (<notebook>_s<seed>) that the fit opens and closes; [] when MLflow is off."""
    if not on():
        return []
    mlflow = _mlflow()
    from mlflow.keras import MlflowCallback

    if mlflow.active_run() is not None:
        return [MlflowCallback()]
    return [_fit_run(fresh(f"{notebook()}_s{seed}", _USED), seed), MlflowCallback()]


def fresh(base: str, used: set[str]) -> str:
    """base, else base_2, base_3 ...: the first name not in used (a second fit of a seed in one
    process, 05's stages), now added to it."""
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def _fit_run(name: str, seed: int):
    """A callback holding the fit's own MLflow run open from its start to its end. (Keras is
    imported here: the runner imports this module and must not load TensorFlow so early.)"""
    import keras

    class FitRun(keras.callbacks.Callback):
        block = contextlib.ExitStack()

        def on_train_begin(self, logs=None):
            self.block.enter_context(run(name, trial_params({"seed": seed})))

        def on_train_end(self, logs=None):
            self.block.close()

    return FitRun()
