"""The logs of every fit: TensorBoard (CINIC10_TENSORBOARD set) and MLflow (MLFLOW_TRACKING_URI)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from helpers import backend
from helpers.artifacts import git_revision
from helpers.base import StudyError, resolve

MLFLOW = "MLFLOW_TRACKING_URI"
TENSORBOARD = "CINIC10_TENSORBOARD"  # the runner's <run>/tensorboard/<notebook>: names both
# MLflow's defaults wait 120 s a request and retry 7 times (minutes on a dead server): these
# bound the check's and the kernels' requests to about half a minute; a value set is kept
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "15", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
TAG = "cinic10.run"  # the trial id, or <notebook>_s<seed>: one MLflow run per value
FOLDER = "cinic10.folder"  # the run folder: trials of the same id in two folders are two runs
_ARM: list[str] = []  # the trial whose fits are logging (TensorBoard's folder name)
_USED: set[str] = set()  # TensorBoard folders and MLflow fit runs named in this process


@contextlib.contextmanager
def trial(trial_id: str, config: dict):
    """The block's fits log as the trial's: TensorBoard under arm_name(), MLflow into its run."""
    _ARM.append(arm_name(trial_id, config))
    try:
        with _run(trial_id, config):
            yield
    finally:
        _ARM.pop()


def arm_name(trial_id: str, config: dict) -> str:
    """A trial's folder name: its config but the seed, its id's first 8 hex: 'n_blocks=1-52a5505c'."""
    words = ",".join(f"{k}={v}" for k, v in config.items() if k != "seed")
    words = re.sub(r"[^A-Za-z0-9.,=+-]+", "_", words)[:60]
    short = trial_id.rsplit("-", 1)[-1][:8]
    return f"{words}-{short}" if words else trial_id


def callbacks(seed: int) -> list:
    """A fit's log callbacks (after ReduceLROnPlateau: they log the learning rate it adds to the
    logs): TensorBoard in <CINIC10_TENSORBOARD>/<arm or notebook>_s<seed>[_2], MLflow."""
    import keras  # here, not at the top: the runner imports this module and must not load TF

    out = []
    if root := os.environ.get(TENSORBOARD):
        name = _ARM[-1] if _ARM else Path(root).name.split("_", 1)[-1]
        path = Path(_fresh(str(Path(root) / f"{name}_s{seed}")))
        shutil.rmtree(path, ignore_errors=True)  # a rerun's logs replace the last run's
        out.append(_tensorboard(path))
    if os.environ.get(MLFLOW):
        mlflow = _mlflow()
        from mlflow.keras import MlflowCallback  # (not autolog: it would log everything twice)

        if mlflow.active_run() is None:
            name, block = _fresh(f"{_where()[0]}_s{seed}"), contextlib.ExitStack()
            out.append(keras.callbacks.LambdaCallback(
                on_train_begin=lambda logs: block.enter_context(_run(name, {"seed": seed})),
                on_train_end=lambda logs: block.close()))
        out.append(MlflowCallback())
    return out


def _tensorboard(path: Path):
    """Epoch scalars in keras.callbacks.TensorBoard's layout and tags, by tensorboardX on every
    backend: Keras' callback needs TensorFlow (kept out of JAX) and writes tensors."""
    import keras
    from tensorboardX import SummaryWriter

    closes = contextlib.ExitStack()  # at the end of the fit
    writers = {s: closes.enter_context(SummaryWriter(str(path / s))) for s in ("train", "validation")}

    def epoch_end(epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            writers[split].add_scalar(f"epoch_{tag}", float(value), epoch)
        for writer in writers.values():
            writer.flush()  # each epoch on disk as it ends (a killed run's too)

    return keras.callbacks.LambdaCallback(on_epoch_end=epoch_end,
                                          on_train_end=lambda logs: closes.close())


def _fresh(base: str) -> str:
    """base, else base_2, base_3 ...: the first name this process has not used, now used."""
    name, k = base, 1
    while name in _USED:
        k += 1
        name = f"{base}_{k}"
    _USED.add(name)
    return name


def _mlflow():
    """mlflow, the URI made absolute and the HTTP bounds set (also for a notebook run by hand)."""
    os.environ[MLFLOW] = absolute(os.environ[MLFLOW])
    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError as err:
        raise StudyError(f"{MLFLOW} is set but MLflow is not installed: pip install -e "
                         f"'.[mlflow]' (or unset {MLFLOW})") from err
    return mlflow


def absolute(uri: str) -> str:
    """uri with a relative path from the project root: the runner, kernels and workers share it."""
    if uri.startswith("sqlite:///"):  # (an absolute path stays as it is)
        path, sep, query = uri[10:].partition("?")
        return f"sqlite:///{resolve(path)}{sep}{query}"
    if urlparse(uri).scheme in ("", "file") and not uri.startswith("file://"):  # a plain path
        return resolve(uri.removeprefix("file:")).as_uri()
    return uri


def _sqlite(uri: str) -> Path | None:
    """A SQLite store's database file, else None."""
    return Path(uri[10:].partition("?")[0]) if uri.startswith("sqlite:///") else None


def check_store(say=print) -> None:
    """The store tried before any notebook runs (when on); one it cannot use: one line."""
    if not os.environ.get(MLFLOW):
        return
    mlflow, uri = _mlflow(), os.environ[MLFLOW]  # (_mlflow first: it makes the URI absolute)
    if db := _sqlite(uri):  # writable folder and file (else MLflow retries for minutes)
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=db.parent).close()
            with contextlib.closing(sqlite3.connect(db, timeout=10)) as con:
                con.execute("BEGIN IMMEDIATE")
                con.rollback()
        except (OSError, sqlite3.Error) as err:
            why = getattr(err, "strerror", None) or str(err)
            raise StudyError(f"{MLFLOW}=sqlite:///{db}: cannot write the MLflow store in "
                             f"{db.parent} ({why}); point it at a writable folder, or unset "
                             f"{MLFLOW}") from None
    try:  # (a SQLite store is created here, with its tables, before any kernel starts)
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - whatever the store raised, it cannot be used
        raise StudyError(f"{MLFLOW}={uri}: cannot use this MLflow store ({_reason(err, uri)}); "
                         f"start the server or fix the URI, or unset {MLFLOW}") from None
    say(f"mlflow: logging to {uri}")


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
    """This run folder's runs with these tags in the notebook's experiment, made on first use."""
    mlflow, (notebook, folder) = _mlflow(), _where()
    db = _sqlite(os.environ[MLFLOW])
    if mlflow.get_experiment_by_name(f"cinic10 {notebook}") is None and db:
        mlflow.create_experiment(f"cinic10 {notebook}",  # SQLite: artifacts beside it
                                 artifact_location=(db.parent / "mlartifacts").resolve().as_uri())
    mlflow.set_experiment(f"cinic10 {notebook}")
    where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    return [r for r in mlflow.search_runs(filter_string=where, output_format="list")
            if r.data.tags.get(FOLDER) == folder]  # compared here: MLflow can't escape quotes


@contextlib.contextmanager
def _run(name: str, config: dict):
    """An MLflow run named name (replacing an earlier one: a trial redone) with its params."""
    if not os.environ.get(MLFLOW):
        yield
        return
    mlflow = _mlflow()
    for old in _runs(**{TAG: name}):
        mlflow.delete_run(old.info.run_id)
    notebook, folder = _where()
    with mlflow.start_run(run_name=name, tags={TAG: name, FOLDER: folder, "notebook": notebook}):
        mlflow.log_params({f"config.{k}": str(v) for k, v in config.items()} | {
            "seed": config.get("seed"), "backend": backend.name(), "code_revision": git_revision()})
        yield


def finish(result: dict) -> None:
    """The trial's scalar results as the active run's final metrics."""
    scalars = {k: float(v) for k, v in result.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    if os.environ.get(MLFLOW) and scalars and (mlflow := _mlflow()).active_run() is not None:
        mlflow.log_metrics(scalars)


def attach(name: str, path: Path) -> None:
    """path (a trial's record) as an artifact of the run named name."""
    if os.environ.get(MLFLOW):
        for found in _runs(**{TAG: name}):
            _mlflow().MlflowClient().log_artifact(found.info.run_id, str(path))


def attach_notebook(paths: list[Path], say=print) -> None:
    """A finished notebook's copy and tables attached to its runs; a failure is said, not fatal."""
    if not os.environ.get(MLFLOW):
        return
    try:
        client = _mlflow().MlflowClient()
        for found in _runs(notebook=_where()[0]):
            for path in paths:
                client.log_artifact(found.info.run_id, str(path), artifact_path="notebook")
    except Exception as err:  # noqa: BLE001 - whatever the store raised: said, not fatal
        say(f"mlflow: {_where()[0]}'s notebook and tables not attached to its runs in "
            f"{os.environ[MLFLOW]} ({_reason(err, os.environ[MLFLOW])})")
