"""What every layer uses: StudyError, paths, progress bars, escape(); no helpers or TF imports."""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import tqdm.auto

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
    """A block writing what (e.g. "the cache") under folder: an unwritable folder is one line."""
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
    """A user path: absolute as given, relative from the project root (not the notebooks' cwd)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p).resolve()


def under_runner() -> bool:
    """True under the runner (papermill): one line per epoch, plain text progress, no widgets."""
    return os.environ.get("CINIC10_BATCH") == "1"


def progress_bar(**kwargs):
    """A tqdm bar: tqdm.auto interactively, plain tqdm to stderr under the runner (no widgets)."""
    return tqdm.tqdm(file=sys.stderr, **kwargs) if under_runner() else tqdm.auto.tqdm(**kwargs)


def escape(text) -> str:
    """str(text) as text in the report's Markdown or HTML: all but letters, digits and spaces as
    numeric references (`<` -> `&#60;`), alike in both; not for code spans or DataFrames."""
    return "".join(c if c.isalnum() or c == " " else f"&#{ord(c)};" for c in str(text))
