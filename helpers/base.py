"""What every layer uses: StudyError, where things live, under_runner(), progress bars and
escape(); imports no other helpers module and no TensorFlow."""

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
# the team's read-only files for the real-data tests and the benchmarks (no study code reads them)
SHARED = Path(os.environ.get("CINIC10_SHARED", ROOT.parent / "shared"))
CIFAR10_JPEG = SHARED / "datasets" / "cifar10-jpeg.tar.gz"


class StudyError(ValueError):
    """Bad input (path, layout, image, parameter): one line naming what and where (CLI: exit 2)."""


def data_dir() -> Path:
    """data/ (downloads and caches), or CINIC10_DATA (e.g. a shared scratch disk)."""
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
    """A block writing what (e.g. "the cache") under folder: a full disk, a read-only or foreign
    folder is one StudyError naming the folder and what to do."""
    try:
        yield
    except OSError as err:
        if err.errno not in _WRITE_ERRORS:
            raise
        hint = ("; set CINIC10_DATA to a writable folder" if "CINIC10_DATA" in os.environ
                and Path(folder).is_relative_to(data_dir()) else "")
        why = err.strerror or err
        raise StudyError(f"{folder}: cannot write {what} there ({why}){hint}") from None


def resolve(path: str | os.PathLike) -> Path:
    """A user path: absolute as given, relative ones against the project root (not the cwd: the
    notebooks' is notebooks/)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p).resolve()


def under_runner() -> bool:
    """True under the runner (papermill): one line per epoch, plain text progress, no widgets."""
    return os.environ.get("CINIC10_BATCH") == "1"


def progress_bar(**kwargs):
    """A tqdm bar: tqdm.auto interactively, plain tqdm to stderr under the runner (no widgets)."""
    if under_runner():
        from tqdm import tqdm

        return tqdm(file=sys.stderr, **kwargs)
    with warnings.catch_warnings():  # tqdm.auto warns if ipywidgets is missing (an old .venv)
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(**kwargs)


def escape(text) -> str:
    """str(text) safe in the report's Markdown or HTML (a folder named `<img onerror=...>` stays
    text): all but letters, digits and spaces as numeric references (`<` -> `&#60;`), which read
    back alike in both and start no tag or Markdown syntax. Not for code spans or DataFrames."""
    return "".join(c if c.isalnum() or c == " " else f"&#{ord(c)};" for c in str(text))
