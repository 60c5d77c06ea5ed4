"""Shared fixtures: a private data/ folder per test, tiny generated datasets, the shared data."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.base import CIFAR10_JPEG, ROOT, SHARED
from helpers.run.profiles import notebook_parameters, plan_sources

MOBILENET = SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5"

needs_shared = pytest.mark.skipif(
    not CIFAR10_JPEG.exists(), reason=f"real data not found at {CIFAR10_JPEG} (set CINIC10_SHARED)"
)


NOTEBOOK_04 = ROOT / "notebooks" / "04_augmentation.ipynb"


def notebook_code(stem: str, name: str, **parameters):
    """A function or class as a notebook's cell defines it (02-05's analysis cells: tables,
    claims, conclusions, figures), after its parameters cell, as the runner's kernel runs it."""
    from helpers.experiments.trialstore import from_notebook

    return from_notebook(ROOT / "notebooks" / f"{stem}.ipynb", name, **parameters)


def _augmentations_cell() -> str:
    """The source of 04's cell that builds its augmentations dict (name -> Keras layer)."""
    import nbformat

    cells = nbformat.read(NOTEBOOK_04, as_version=4).cells
    return next(c.source for c in cells if "augmentations = {" in c.source)


# the names of 04's augmentations, read from its dict's keys (without building a layer)
AUGMENTATION_NAMES = [k.value for node in ast.walk(ast.parse(_augmentations_cell()))
                      if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                      for k in node.value.keys]


def augmentation_layers(**parameters) -> dict:
    """04's augmentations dict as its cell builds it from its parameters cell (with overrides)."""
    namespace = {**notebook_parameters(NOTEBOOK_04), **parameters}
    exec("import keras\n" + _augmentations_cell(), namespace)
    return namespace["augmentations"]


def initial_weights(run_dir, seeds) -> dict[str, str]:
    """{str(seed): models/04_initial_s<seed>.weights.h5}: the simple CNN built under each seed,
    saved as 04's model cell saves it (the start of every run of that seed)."""
    from helpers import artifacts, backend
    from helpers.models import nets

    paths = {}
    for seed in seeds:
        backend.set_random_seed(seed)
        path = artifacts.run_paths(run_dir)["models"] / f"04_initial_s{seed}.weights.h5"
        nets.create_simple_cnn().save_weights(path)
        paths[str(seed)] = str(path)
    return paths


def plan(profile: str, **kwargs) -> tuple[str, list]:
    """(profile name, [(notebook, parameters)]): the run the runner would make, validated."""
    return plan_sources(profile, **kwargs)[:2]


def pytest_configure(config):
    """pytest-xdist's workers start with SIGINT ignored, and an ignored signal stays ignored in
    every process started from them: the tests that press Ctrl-C need what a terminal gives."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Every test gets its own data/ (CINIC10_DATA) and never touches the network."""
    home = tmp_path / "data"
    monkeypatch.setenv("CINIC10_DATA", str(home))
    monkeypatch.setenv("CINIC10_OFFLINE", "1")
    return home


def write_layout(
    root: Path,
    splits=("train", "test"),
    classes=("cat", "dog", "frog"),
    per_class: int = 4,
    size=(32, 32),
    mode: str = "RGB",
    suffix: str = ".png",
    seed: int = 0,
) -> Path:
    """A tiny dataset in CINIC-10's layout: each class a distinct mean colour plus noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in splits:
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                base = np.full((*size[::-1], 3), 40 + 60 * c, np.float64)
                img = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
                im = Image.fromarray(img)
                if mode != "RGB":
                    im = im.convert(mode)
                im.save(root / split / cls / f"{split}-{c}-{i}{suffix}")
    return root


def make_tar(folder: Path, archive: Path, arcname: str | None = None) -> Path:
    """folder packed as archive (.tar or .tar.gz by suffix)."""
    with tarfile.open(archive, "w:gz" if archive.name.endswith("gz") else "w") as tar:
        tar.add(folder, arcname=arcname or folder.name)
    return archive


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A 3-class dataset with train/valid/test, 4 images each per class."""
    return write_layout(tmp_path / "tiny", splits=("train", "valid", "test"))


def cli(*args: str, timeout: float = 1200, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m helpers ARGS` from the project root, as a user types it; output captured."""
    return subprocess.run(
        [sys.executable, "-m", "helpers", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One smoke run of every notebook and its report (`run --profile smoke --dataset
    synthetic`), shared by every test that reads one: (run folder, completed process). Under
    pytest-xdist the first worker that needs it runs it and the others wait for it (a lock in
    the session's shared temp folder). Read it, never change it; a test that reruns into a run
    folder copies it first (copy_run)."""
    import fcntl
    import json
    import os

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker of this session shares
    out, saved = root / "smoke-run", root / "smoke-run.json"
    with open(root / "smoke-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not saved.exists():
            env = os.environ | {"CINIC10_DATA": str(root / "smoke-run-data"),
                                "CINIC10_OFFLINE": "1"}  # as data_home, which is per test
            proc = cli("run", "--profile", "smoke", "--dataset", "synthetic", "--out", str(out),
                       env=env)
            saved.write_text(json.dumps([proc.returncode, proc.stdout, proc.stderr]))
    code, stdout, stderr = json.loads(saved.read_text())
    assert code == 0, stdout[-3000:] + stderr[-3000:]
    return out, subprocess.CompletedProcess(["smoke run"], code, stdout, stderr)


@pytest.fixture(scope="session")
def cifar(tmp_path_factory):
    """The real CIFAR-10 of ../shared (cifar10-jpeg), decoded once per session into a data
    folder of its own, for every real-data test (under pytest-xdist they share a group)."""
    from helpers import data

    with pytest.MonkeyPatch.context() as patch:  # CINIC10_DATA as it was, after loading
        patch.setenv("CINIC10_DATA", str(tmp_path_factory.mktemp("cifar-data")))
        return data.load_dataset(str(CIFAR10_JPEG), say=lambda *_: None)


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of a run folder to rerun into or rebuild, leaving the shared one as it was."""
    import shutil

    shutil.copytree(run, dest, symlinks=True)
    return dest


def wait_until(predicate, seconds: float, step: float = 0.1) -> None:
    """Poll predicate every step seconds until it holds; AssertionError after `seconds`."""
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(step)


def notebook_status(out: Path, stem: str) -> str | None:
    """Notebook stem's status in run folder out's run.json; None while it cannot be read."""
    try:
        return json.loads((out / "run.json").read_text())["notebooks"][stem]["status"]
    except (OSError, ValueError, KeyError):
        return None


def kill_once_running(out: Path, stem: str, only: str) -> None:
    """A smoke rerun of `--only only` into out, killed (SIGKILL to its process group) as soon
    as run.json says notebook stem is running: a run that dies mid-notebook."""
    import os
    import signal

    rerun = subprocess.Popen(
        [sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--dataset", "synthetic",
         "--only", only, "--out", str(out), "--no-report"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and notebook_status(out, stem) != "running":
        time.sleep(0.2)
    os.killpg(rerun.pid, signal.SIGKILL)
    rerun.wait()


def one_line_error(capsys, argv: list[str]) -> str:
    """`python -m helpers ARGV` in this process: it must fail with exit 2 and one line."""
    from helpers.run.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    return err


def executed_notebook(path: Path) -> Path:
    """A tiny executed notebook as papermill leaves it: a title, one completed code cell."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem} title"),
                nbformat.v4.new_code_cell("x = 1", metadata={"papermill": {"status": "completed"}})]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def pids_naming(marker: str) -> list[int]:
    """Processes whose command line names marker (a kernel's connection file, a print's
    temporary folder)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids
