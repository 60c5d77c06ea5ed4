"""Write-then-rename for files and folders kept (a killed writer leaves nothing trusted); locks."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from helpers.base import writing

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], Any], *,
                 suffix: str = ".part") -> Path:
    """writer(tmp) on an empty file .NAME.XXXXXXXX<suffix> beside path, fsynced, renamed onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder .NAME.XXXXXXXX.partial beside dest to fill in the block: renamed onto
    dest (replacing one there) when the block ends, removed when it raises (Ctrl-C included)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; a shared cache is for the group
        yield tmp
        if dest.exists():  # callers replace only what is not whole (checked by them)
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """JSON, atomically, pretty and with sorted keys so diffs between runs read well."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    return write_atomic(path, lambda p: p.write_text(text))


def read_json(path: str | os.PathLike) -> Any:
    """JSON from a file written by write_json."""
    return json.loads(Path(path).read_text())


def hold_lock(path: str | os.PathLike, what: str, say=print):
    """A file lock on path for a `with` block; "another process is building <what>" if held."""
    lock = FileLock(path)
    try:
        return lock.acquire(timeout=0)
    except Timeout:
        say(f"{Path(path).parent}: another process is building {what}; waiting for it")
        return lock.acquire()


def build_once(dest: Path, done: str, build: Callable[[], Any], what: str, say=print) -> Path:
    """dest, built by build() (through atomic_dir) unless dest/done exists, builders taking turns
    under .NAME.lock beside it; a full or read-only disk is one StudyError naming the folder."""
    if not (dest / done).exists():
        with writing(dest.parent, f"the {what}"):  # (filelock makes dest.parent)
            with hold_lock(dest.parent / f".{dest.name}.lock", f"this {what}", say):
                if not (dest / done).exists():  # else built while we waited
                    # a killed builder's .partial folders (we hold the lock: none is live)
                    for part in dest.parent.glob(f".{dest.name}.*.partial"):
                        shutil.rmtree(part, ignore_errors=True)
                    build()
    return dest
