"""What every layer uses and nothing else: the one input-error type, where things live, whether
the code runs under the runner, progress bars, and escape() for names from data. Imports
neither TensorFlow nor any other helpers module."""

from __future__ import annotations

import errno
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CONFIGS = ROOT / "configs"
# the team's shared, read-only files for the real-data tests and the benchmarks: defined here
# once, since both (and CINIC10_SHARED) name them; no study code reads them
SHARED = Path(os.environ.get("CINIC10_SHARED", ROOT.parent / "shared"))
CIFAR10_JPEG = SHARED / "datasets" / "cifar10-jpeg.tar.gz"


class StudyError(ValueError):
    """Bad input (path, layout, image, parameter): the message names what and where; the CLI
    prints it as one line."""


def data_dir() -> Path:
    """data/ (downloads and caches); CINIC10_DATA overrides it, e.g. for a shared scratch disk."""
    env = os.environ.get("CINIC10_DATA")
    folder = resolve(env).resolve() if env else ROOT / "data"  # relative: from the root
    if folder.exists() and not folder.is_dir():
        where = f"CINIC10_DATA={env}: {folder}" if env else str(folder)
        raise StudyError(f"{where} is a file; give a folder for downloads and caches")
    return folder


# errors that mean "this folder cannot be written", whatever the call that met them
_WRITE_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM,
                 errno.ENOTDIR, errno.EEXIST}


@contextmanager
def writing(folder: Path, what: str):
    """For a block that writes what (e.g. "the cache") under folder: a full disk, a read-only
    or foreign folder becomes one StudyError naming the folder and what to do, not a traceback."""
    try:
        yield
    except OSError as err:
        if err.errno not in _WRITE_ERRORS:
            raise
        hint = ("; set CINIC10_DATA to a writable folder" if "CINIC10_DATA" in os.environ
                and Path(folder).is_relative_to(data_dir()) else "")
        raise StudyError(
            f"{folder}: cannot write {what} there ({err.strerror or err}){hint}"
        ) from None


def resolve(path: str | os.PathLike) -> Path:
    """A user path: absolute as given, relative ones against the project root (not the cwd),
    so the notebooks (cwd notebooks/) and the CLI (cwd anywhere) agree."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p).resolve()


def under_runner() -> bool:
    """True when the runner (papermill) executes the code: one compact line per epoch and plain
    text progress instead of widgets. Read without importing TensorFlow."""
    return os.environ.get("CINIC10_BATCH") == "1"


def progress_bar(**kwargs):
    """A tqdm bar: tqdm.auto interactively, plain tqdm to stderr under the runner, so executed
    notebooks and the report carry no widget debris."""
    if under_runner():
        from tqdm import tqdm

        return tqdm(file=sys.stderr, **kwargs)
    with warnings.catch_warnings():  # tqdm.auto warns if ipywidgets is missing (an old .venv)
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(**kwargs)


def escape(text) -> str:
    """str(text) made safe to put in Markdown or HTML the report renders (a folder named
    `<img onerror=...>` must stay text): every character but letters, digits and spaces as a
    numeric character reference (`<` -> `&#60;`). Those read back as the same characters in
    HTML and in Markdown alike, and neither starts a tag nor Markdown syntax (`*`, `_`, `|`,
    `[`, `` ` ``). Not for code spans or DataFrames (pandas escapes its own HTML)."""
    return "".join(c if c.isalnum() or c == " " else f"&#{ord(c)};" for c in str(text))
