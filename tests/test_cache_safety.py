"""The cache under hostile conditions: Ctrl-C mid-build, duplicated archive members, builders
racing for one cache, stale partial folders, shared (group) readers."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tar, wait_until, write_layout

from helpers.base import ROOT, StudyError
from helpers.data import cache as cache_mod
from helpers.data import load_dataset

# A CLI `data` run whose decoding is slowed (2 images a chunk, 0.2 s each chunk) and which
# writes a marker per decoded chunk, so a test can act mid-build and count decodes.
SLOW_CLI = """
import os, sys, time
from pathlib import Path
import helpers.data.cache as c
marks = Path(sys.argv[1])
c.CHUNK = 2
real = c.decode_chunk
def slow(chunk):
    (marks / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    time.sleep(float(os.environ.get("SLOW_S", "0.2")))
    return real(chunk)
c.decode_chunk = slow
from helpers.run.cli import main
sys.exit(main(["data", "--dataset", sys.argv[2]]))
"""


def _slow_cli(marks: Path, dataset: Path, data_home: Path, **env) -> subprocess.Popen:
    marks.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, str(marks), str(dataset)],
        cwd=ROOT,
        env={**os.environ, "CINIC10_DATA": str(data_home), "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C would reach
    )



@pytest.mark.parametrize("archive", [False, True])
def test_ctrl_c_during_the_first_build_stops_within_seconds(tmp_path, data_home, archive):
    root = write_layout(tmp_path / "ds", splits=("train", "valid", "test"), per_class=20)
    dataset = make_tar(root, tmp_path / "ds.tar") if archive else root
    proc = _slow_cli(tmp_path / "marks", dataset, data_home)
    try:
        wait_until(lambda: len(list((tmp_path / "marks").iterdir())) >= 2, 60, 0.05)  # decoding now
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=15)
        assert time.monotonic() - t0 < 10, "Ctrl-C took too long"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and err.strip().endswith("\ninterrupted"), err[-2000:]
    assert "Traceback" not in err
    assert not list(data_home.glob("cache/*/meta.json"))  # nothing a later run could trust
    assert not list(data_home.glob("cache/.*partial"))
    time.sleep(0.5)  # the workers were killed with the build: none is still decoding
    n = len(list((tmp_path / "marks").iterdir()))
    time.sleep(1.0)
    assert len(list((tmp_path / "marks").iterdir())) == n


def test_a_duplicated_archive_member_is_refused(tmp_path):
    root = write_layout(tmp_path / "mini", per_class=12)
    archive = make_tar(root, tmp_path / "dup.tar")
    with tarfile.open(archive, "a") as tar:  # what `tar -rf dup.tar mini/train/cat/...` does
        tar.add(root / "train/cat/train-0-0.png", arcname="mini/train/cat/train-0-0.png")
    with pytest.raises(StudyError, match=r"train-0-0.png' appears more than once") as err:
        load_dataset(str(archive), say=lambda *_: None)
    assert "\n" not in str(err.value)


def test_a_row_never_decoded_is_an_error_not_a_black_image(tiny, monkeypatch):
    real = cache_mod.chunks

    def lose_one(source, rels):  # as if an image slipped through the reader
        for idx, items in real(source, rels):
            yield (idx[1:], items[1:]) if 0 in idx else (idx, items)

    monkeypatch.setattr(cache_mod, "chunks", lose_one)
    with pytest.raises(StudyError, match="1 listed images were never read"):
        load_dataset(str(tiny), say=lambda *_: None)


def test_a_zip_is_named_as_unsupported(tiny, tmp_path):
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in tiny.rglob("*.png"):
            z.write(f, f.relative_to(tiny.parent))
    with pytest.raises(StudyError, match=r"zip is not supported; use .tar/.tar.gz or a folder"):
        load_dataset(str(archive), say=lambda *_: None)


def test_two_concurrent_builders_decode_once_and_share_one_cache(tmp_path, data_home):
    root = write_layout(tmp_path / "ds", splits=("train", "valid", "test"), per_class=4)
    marks = tmp_path / "marks"
    first = _slow_cli(marks, root, data_home, SLOW_S="1.0")  # about 9 s of decoding
    wait_until(lambda: any(marks.iterdir()), 60, 0.05)  # the first is decoding: the second is late
    procs = [first, _slow_cli(marks, root, data_home, SLOW_S="1.0")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    # 36 images in chunks of 2: one builder decodes 18 chunks, the other adopts its cache
    assert len(list(marks.iterdir())) == 18
    assert any("another process is building this cache" in out for out, _ in outs)
    caches = list(data_home.glob("cache/*/meta.json"))
    assert len(caches) == 1 and not list(data_home.glob("cache/.*partial"))


def test_a_finished_cache_is_never_replaced(tiny, data_home, monkeypatch):
    first = load_dataset(str(tiny), say=lambda *_: None)
    inode = (first.cache / "meta.json").stat().st_ino
    # a builder that checked before the first finished: it reaches the lock after, adopts
    real_exists = Path.exists
    calls = []

    def late(self):
        if self.name == "meta.json" and not calls:
            calls.append(self)
            return False  # the check before the lock missed the finished cache
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", late)
    monkeypatch.setattr(cache_mod, "_decode_all", lambda *a, **k: pytest.fail("decoded again"))
    again = cache_mod.build_cache(_source(tiny), say=lambda *_: None)
    assert calls and again == first.cache
    assert (again / "meta.json").stat().st_ino == inode


def _source(path: Path):
    from helpers.data.sources import from_path

    return from_path(path)


def test_stale_partials_are_cleaned_unless_a_live_builder_holds_them(tiny, data_home):
    cache_dir = data_home / "cache"
    cache_dir.mkdir(parents=True)
    dead = cache_dir / ".old-0123456789abcdef.a1b2c3d4.partial"
    live = cache_dir / ".busy-fedcba9876543210.e5f6g7h8.partial"
    for d in (dead, live):
        (d / "x").mkdir(parents=True)
    fd = os.open(cache_dir / ".busy-fedcba9876543210.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live builder (flock conflicts across open files)
    try:
        load_dataset(str(tiny), say=lambda *_: None)
    finally:
        os.close(fd)
    assert not dead.exists() and live.exists()


def test_cache_is_readable_by_the_group(tiny, data_home, monkeypatch):
    import helpers.atomic

    old = os.umask(0o002)  # a group-shared set-up; the modules read the umask once, at import
    monkeypatch.setattr(helpers.atomic, "_UMASK", 0o002)
    try:
        ds = cache_mod.build_cache(_source(tiny), say=lambda *_: None)
    finally:
        os.umask(old)
    assert ds.stat().st_mode & 0o777 == 0o775  # mkdtemp alone gives 0700
    assert all(f.stat().st_mode & 0o060 == 0o060 for f in ds.iterdir())


def test_relative_cinic10_data_is_resolved_against_the_project_root(monkeypatch):
    from helpers.base import data_dir

    monkeypatch.setenv("CINIC10_DATA", "scratch/data")
    monkeypatch.chdir(ROOT / "notebooks")  # where the notebooks run
    assert data_dir() == ROOT / "scratch" / "data"


def test_a_class_named_total_keeps_its_row_under_the_real_total(tmp_path):
    root = write_layout(tmp_path / "t", splits=("train", "valid", "test"), classes=("cat", "total"))
    counts = load_dataset(str(root), say=lambda *_: None).counts()
    assert counts.loc["total", "train"] == 8  # the sum, not the class
    assert counts.loc["'total' (class)", "train"] == 4
    assert np.array_equal(counts.index, ["cat", "'total' (class)", "total"])


def test_threaded_decoding_once_tensorflow_is_loaded_gives_the_same_arrays(
    tiny, tmp_path, monkeypatch
):
    import types

    forked = load_dataset(str(tiny), say=lambda *_: None)
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    monkeypatch.setenv("CINIC10_DATA", str(tmp_path / "other"))
    threaded = load_dataset(str(tiny), say=lambda *_: None)
    assert threaded.cache != forked.cache
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(threaded[split].x, forked[split].x)


def test_an_archive_met_before_loads_from_its_cache_without_being_read_again(tmp_path, monkeypatch):
    """Every notebook's kernel loads the dataset: an archive checked and cached before, unchanged,
    loads from the cache its memo names without reading the archive (seconds for a .tar.gz).
    A changed archive misses the memo and is checked again; a damaged memo is ignored."""
    import helpers.data as data_layer
    from helpers.base import data_dir
    from helpers.data import sources

    root = write_layout(tmp_path / "mini", splits=("train", "valid", "test"), per_class=4)
    archive = make_tar(root, tmp_path / "mini.tar.gz")
    first = load_dataset(str(archive), say=lambda *_: None)
    memos = list((data_dir() / "cache" / "archives").glob("*.json"))
    assert len(memos) == 1

    def no_reading(*_):
        raise AssertionError("the archive was read again")

    with monkeypatch.context() as m:
        m.setattr(sources, "check_archive", no_reading)
        m.setattr(data_layer, "resolve_source", no_reading)
        m.setattr(cache_mod, "build_cache", no_reading)
        again = load_dataset(str(archive), say=lambda *_: None)
    assert again.fingerprint == first.fingerprint and again.cache == first.cache
    assert (again["train"].x == first["train"].x).all() and again.note == first.note == ""
    other = load_dataset(str(archive), valid_fraction=0.2, say=lambda *_: None)  # other settings
    assert other.fingerprint == first.fingerprint  # (it has valid/: carving does not apply)

    memos[0].write_text("{half")  # a damaged memo: not trusted, rebuilt
    assert load_dataset(str(archive), say=lambda *_: None).cache == first.cache
    # the archive changed (a member added twice, as `tar -r` leaves it): checked again, refused
    with tarfile.open(archive.with_suffix(""), "w") as tar:  # mini.tar
        tar.add(root, arcname="mini")
        tar.add(root / "train" / "cat" / "train-0-0.png", arcname="mini/train/cat/train-0-0.png")
    os.replace(archive.with_suffix(""), archive)  # same name, new size and time
    with pytest.raises(StudyError, match="more than once"):
        load_dataset(str(archive), say=lambda *_: None)
