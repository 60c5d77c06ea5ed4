"""The data layer on generated data: layouts, archives, cache, errors, subsets, input."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tar, write_layout

from helpers.base import ROOT, StudyError
from helpers.data import cache as cache_mod
from helpers.data import load_dataset, sources, stratified_subset


def test_folder_loads_with_labels_names_and_sources(tiny):
    ds = load_dataset(str(tiny), say=lambda *_: None)
    assert ds.classes == ["cat", "dog", "frog"]
    for split in ("train", "valid", "test"):
        s = ds[split]
        assert s.x.shape == (12, 32, 32, 3) and s.x.dtype == np.uint8
        assert np.bincount(s.y).tolist() == [4, 4, 4]
    # class c was drawn around grey level 40 + 60c: labels and pixels line up
    means = [ds["train"].x[ds["train"].y == c].mean() for c in range(3)]
    assert means == sorted(means) and means[0] < 60 < means[1] < 120 < means[2]
    assert set(ds["train"].sources) == {"other"}


def test_a_folder_is_walked_once_per_load(tiny, monkeypatch):
    import os

    walks = []
    real_walk = os.walk
    monkeypatch.setattr(sources.os, "walk", lambda *a, **k: walks.append(a) or real_walk(*a, **k))
    load_dataset(str(tiny), say=lambda *_: None)
    assert len(walks) == 1  # recognising CINIC-10 and fingerprinting share one listing


def test_archive_gives_same_cache_as_folder_and_is_not_extracted(tiny, tmp_path, data_home):
    a = load_dataset(str(tiny), say=lambda *_: None)
    archive = make_tar(tiny, tmp_path / "tiny.tar.gz", arcname="top/tiny")
    b = load_dataset(str(archive), say=lambda *_: None)
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a["test"].x, b["test"].x)
    assert not (data_home / "raw").exists()  # streamed, not extracted


def test_cache_is_reused_without_decoding(tiny, monkeypatch):
    first = load_dataset(str(tiny), say=lambda *_: None)
    monkeypatch.setattr(cache_mod, "_decode_all", lambda *a, **k: pytest.fail("decoded twice"))
    second = load_dataset(str(tiny), say=lambda *_: None)
    assert second.cache == first.cache


def test_killed_cache_build_leaves_nothing_trusted(tiny, monkeypatch, data_home):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while writing the arrays

    monkeypatch.setattr(cache_mod.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(str(tiny), say=lambda *_: None)
    assert not list((data_home / "cache").glob("*/meta.json"))
    assert not list((data_home / "cache").glob(".*partial"))
    monkeypatch.undo()
    monkeypatch.setenv("CINIC10_DATA", str(data_home))
    assert len(load_dataset(str(tiny), say=lambda *_: None)["train"]) == 12


def test_missing_valid_is_carved_stratified(tmp_path):
    root = write_layout(tmp_path / "tv", per_class=10)
    said = []
    ds = load_dataset(str(root), valid_fraction=0.2, say=said.append)
    assert np.bincount(ds["valid"].y).tolist() == [2, 2, 2]
    assert np.bincount(ds["train"].y).tolist() == [8, 8, 8]
    assert not set(ds["train"].names) & set(ds["valid"].names)
    assert any("carved 20%" in s for s in said)
    assert ds.meta["valid_carved"]


def test_greyscale_is_widened(tmp_path):
    root = write_layout(tmp_path / "grey", splits=("train", "valid", "test"), mode="L")
    ds = load_dataset(str(root), say=lambda *_: None)
    assert ds["train"].x.shape[-1] == 3 and ds.meta["greyscale_widened"] == 36


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("missing", "no such file or folder"),
        ("no_train", "no train/ folder"),
        ("classes_differ", "class folders differ"),
        ("wrong_size", "image is 16x16 RGB, expected 32x32 RGB"),
        ("rgba", "image is 32x32 RGBA"),
        ("corrupt", "corrupt or truncated image"),
        ("truncated_png", "corrupt or truncated image"),
        ("empty_split", "split missing or empty"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, case, pattern):
    root = tmp_path / "ds"
    if case != "missing":
        write_layout(root)
    if case == "no_train":
        (root / "train").rename(root / "training")
    elif case == "classes_differ":
        (root / "test" / "frog").rename(root / "test" / "toad")
    elif case == "wrong_size":
        write_layout(root, classes=("cat",), per_class=1, size=(16, 16), seed=1)
        (root / "train/cat/train-0-0.png").unlink()
        write_layout(tmp_path / "small", classes=("cat",), per_class=1, size=(16, 16))
        (tmp_path / "small/train/cat/train-0-0.png").rename(root / "train/cat/train-0-0.png")
    elif case == "rgba":
        write_layout(tmp_path / "a", classes=("cat",), per_class=1, mode="RGBA")
        (tmp_path / "a/train/cat/train-0-0.png").replace(root / "train/cat/train-0-0.png")
    elif case == "corrupt":
        (root / "train/dog/train-1-2.png").write_bytes(b"not an image at all")
    elif case == "truncated_png":
        p = root / "test/cat/test-0-1.png"
        p.write_bytes(p.read_bytes()[:60])
    elif case == "empty_split":
        for f in (root / "test").rglob("*.png"):
            f.unlink()
    with pytest.raises(StudyError, match=pattern) as err:
        # (half of 4 images per class carved as valid: 10% of 4 is too few to carve)
        load_dataset(str(root), valid_fraction=0.5, say=lambda *_: None)
    assert "\n" not in str(err.value)
    if case in ("corrupt", "truncated_png"):
        assert ".png" in str(err.value)  # names the file


def test_truncated_archive_is_refused(tiny, tmp_path):
    archive = make_tar(tiny, tmp_path / "t.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(StudyError, match="truncated or corrupt archive"):
        load_dataset(str(archive), say=lambda *_: None)


@pytest.mark.parametrize("kind", ["symlink", "dotdot", "absolute"])
def test_unsafe_archive_members_are_refused(tiny, tmp_path, kind):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tiny, arcname="tiny")
        info = tarfile.TarInfo(
            {
                "symlink": "tiny/train/cat/link.png",
                "dotdot": "../escape.png",
                "absolute": "/tmp/escape.png",
            }[kind]
        )
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            payload = b"x"
            info.size = len(payload)
            import io

            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(StudyError, match="refused"):
        load_dataset(str(archive), say=lambda *_: None)
    assert not (tmp_path / "escape.png").exists()


def _fake_cinic(root: Path, per_class: int) -> Path:
    """CINIC-10's names and classes, per_class images each (real CINIC-10 has 9,000)."""
    write_layout(
        root,
        splits=("train", "valid", "test"),
        classes=sources.CINIC10_CLASSES,
        per_class=per_class,
    )
    for f in sorted(root.rglob("*.png")):
        i = int(f.stem.rsplit("-", 1)[1])
        f.rename(f.with_name(f"cifar10-{f.stem}.png" if i % 2 else f"n0212{i}_{f.stem}.png"))
    return root


def test_cinic10_download_verify_and_sources(tmp_path, monkeypatch, data_home):
    monkeypatch.setattr(sources, "CINIC10_PER_SPLIT_CLASS", 2)
    archive = make_tar(
        _fake_cinic(tmp_path / "cinic", 2), tmp_path / "CINIC-10.tar.gz", arcname="."
    )
    monkeypatch.delenv("CINIC10_OFFLINE")
    monkeypatch.setenv("CINIC10_URL", archive.as_uri())  # a real urllib download, from file://
    ds = load_dataset("cinic10", say=lambda *_: None)
    assert ds.kind == "cinic10" and ds.is_cinic10
    assert (data_home / "raw" / "CINIC-10.tar.gz").exists()
    assert not list((data_home / "raw").glob("*.part"))
    assert sorted(set(ds["test"].sources)) == ["cifar10", "imagenet"]


def test_cinic10_given_by_path_is_recognised(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CINIC10_PER_SPLIT_CLASS", 2)
    root = _fake_cinic(tmp_path / "cinic", 2)
    assert load_dataset(str(root), say=lambda *_: None).kind == "cinic10"
    (root / "test" / "cat" / next((root / "test" / "cat").iterdir()).name).unlink()
    assert load_dataset(str(root), say=lambda *_: None).kind == "folder"  # a subset: any layout


def test_cinic10_with_wrong_counts_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CINIC10_DIR", str(_fake_cinic(tmp_path / "cinic", 2)))
    with pytest.raises(StudyError, match="not a complete CINIC-10"):
        load_dataset("cinic10", say=lambda *_: None)
    with pytest.raises(StudyError, match="not a complete CINIC-10"):  # auto: no silent fallback
        load_dataset("auto", say=lambda *_: None)


def test_broken_download_leaves_no_archive(tmp_path, monkeypatch, data_home):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b" + b"\0" * 100)  # a gzip header, then garbage
    monkeypatch.delenv("CINIC10_OFFLINE")
    monkeypatch.setenv("CINIC10_URL", bad.as_uri())
    with pytest.raises(StudyError, match="truncated or corrupt"):
        load_dataset("cinic10", say=lambda *_: None)
    assert not list((data_home / "raw").glob("CINIC-10.tar.gz*"))


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on localhost serving tmp_path/served/ (SimpleHTTPRequestHandler)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *_: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def test_cinic10_download_over_http_and_a_missing_file_is_one_line(
    tmp_path, monkeypatch, data_home, http_folder
):
    served, url = http_folder
    monkeypatch.setattr(sources, "CINIC10_PER_SPLIT_CLASS", 2)
    make_tar(_fake_cinic(tmp_path / "cinic", 2), served / "CINIC-10.tar.gz", arcname=".")
    monkeypatch.delenv("CINIC10_OFFLINE")
    monkeypatch.setenv("CINIC10_URL", f"{url}/nowhere.tar.gz")  # a mirror without the file
    with pytest.raises(StudyError, match=r"cannot download http://127\.0\.0\.1:\d+/nowhere.tar.gz: "
                       "HTTP 404 File not found") as err:  # (before: Keras' multi-line "URL fetch failure")
        load_dataset("cinic10", say=lambda *_: None)
    assert "\n" not in str(err.value) and not list((data_home / "raw").glob("*CINIC-10*"))
    monkeypatch.setenv("CINIC10_URL", f"{url}/CINIC-10.tar.gz")
    ds = load_dataset("cinic10", say=lambda *_: None)
    assert ds.is_cinic10 and len(ds["test"]) == 20
    assert (data_home / "raw" / "CINIC-10.tar.gz").read_bytes() == (served / "CINIC-10.tar.gz").read_bytes()


def test_auto_falls_back_to_synthetic_and_says_why(monkeypatch):
    monkeypatch.setattr(
        sources, "make_synthetic", lambda **_: sources.Source("synthetic", "syn", ROOT, "")
    )
    said = []
    src = sources.resolve_source("auto", say=said.append)
    assert src.kind == "synthetic" and "NOT CINIC-10" in src.note and said


def test_synthetic_is_deterministic_and_distinct_per_class():
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    a = [sources.synthetic_image(c, rng1) for c in range(10)]
    b = [sources.synthetic_image(c, rng2) for c in range(10)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (32, 32, 3) and a[0].dtype == np.uint8
    # distinct classes: over many draws, each class's mean image differs from every other's
    rng = np.random.default_rng(0)
    means = np.stack([
        np.mean([sources.synthetic_image(c, rng) for _ in range(40)], axis=0) for c in range(10)
    ]).reshape(10, -1)
    gaps = np.abs(means[:, None] - means[None]).mean(axis=2)  # (10, 10) mean pixel difference
    assert gaps[~np.eye(10, dtype=bool)].min() > 1.0, gaps.round(1)


def test_synthetic_dataset_layout():
    src = sources.make_synthetic(per_class=3, seed=1)
    assert src.kind == "synthetic"
    assert len(list((src.location / "valid").rglob("*.png"))) == 30


def test_image_source_from_cinic_names():
    assert cache_mod.image_source("cifar10-train-123.png") == "cifar10"
    assert cache_mod.image_source("n02121808_6789.png") == "imagenet"
    assert cache_mod.image_source("0001.jpg") == "other"


def test_stratified_subset(tiny):
    ds = load_dataset(str(tiny), say=lambda *_: None)
    sub = stratified_subset(ds["train"], 2, seed=0)
    assert np.bincount(sub.y).tolist() == [2, 2, 2]
    assert stratified_subset(ds["train"], 0.5, seed=0).y.size == 6
    assert stratified_subset(ds["train"], 0) is ds["train"]
    again = stratified_subset(ds["train"], 2, seed=0)
    assert list(again.names) == list(sub.names)


def test_input_pipeline_scaled_shuffled_per_epoch_and_seeded(tiny):
    from helpers.data.pipeline import make_input

    split = load_dataset(str(tiny), say=lambda *_: None)["train"]
    ds = make_input(split, batch_size=5, seed=1)
    epochs = [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(2)]
    x0 = np.concatenate([b[0] for b in epochs[0]])
    assert x0.dtype == np.float32 and 0.0 <= x0.min() and x0.max() <= 1.0
    assert [len(b[1]) for b in epochs[0]] == [5, 5, 2]
    y0 = np.concatenate([b[1] for b in epochs[0]])
    assert sorted(y0.tolist()) == sorted(split.y.tolist())  # every image once per epoch
    order = [np.concatenate([b[0] for b in e]).reshape(12, -1).sum(1) for e in epochs]
    assert not np.array_equal(order[0], order[1])  # reshuffled each epoch
    again = np.concatenate([x.numpy() for x, _ in make_input(split, batch_size=5, seed=1)])
    np.testing.assert_array_equal(again, x0)  # same seed, same order


def test_input_pipeline_autotuning_is_off_and_changes_no_batch(tiny, monkeypatch):
    """tf.data tunes nothing unless CINIC10_TF_AUTOTUNE=1 (docs/speed.md: on 2 cores tuning
    costs training time); on or off, every epoch's batches are the same."""
    from helpers.data.pipeline import make_input

    split = load_dataset(str(tiny), say=lambda *_: None)["train"]
    runs = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("CINIC10_TF_AUTOTUNE", flag)
        ds = make_input(split, batch_size=5, seed=2)
        assert ds.options().autotune.enabled is (flag == "1")
        runs[flag] = [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(3)]
    for tuned, fixed in zip(runs["1"], runs["0"]):
        np.testing.assert_array_equal(tuned, fixed)
    monkeypatch.delenv("CINIC10_TF_AUTOTUNE")
    assert make_input(split, batch_size=5).options().autotune.enabled is False  # the default


def test_cli_data_summary_and_one_line_errors(tiny, tmp_path):
    env_run = [sys.executable, "-m", "helpers", "data", "--dataset"]
    ok = subprocess.run([*env_run, str(tiny)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "fingerprint" in ok.stdout and "total" in ok.stdout
    bad = subprocess.run(
        [*env_run, str(tmp_path / "nope")], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "nope: no such file or folder" in bad.stderr


def _data_cli(path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m helpers data --dataset PATH` as a user types it, in at most 4 GiB of address
    space (a file read whole fails here as it did on the machine that found it)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    return subprocess.run([sys.executable, "-m", "helpers", "data", "--dataset", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          preexec_fn=limit)


def test_hidden_folders_and_files_are_not_classes_or_images(tmp_path):
    """A file manager's .thumbs/ in train/ and test/, a .DS_Store and macOS's ._ copies: no
    eleventh class, no image, the same fingerprint as without them, in a folder or an archive."""
    plain = write_layout(tmp_path / "plain", splits=("train", "valid", "test"))
    messy = write_layout(tmp_path / "messy", splits=("train", "valid", "test"))
    write_layout(messy, splits=("train", "valid", "test"), classes=(".thumbs",))  # .thumbs/*.png
    for split in ("train", "test"):
        (messy / split / ".DS_Store").write_bytes(b"\0\1junk")
        (messy / split / "cat" / "._train-0-0.png").write_bytes(b"\0\5\26\7 AppleDouble")
    fingerprints = []
    for dataset in (plain, messy, make_tar(messy, tmp_path / "messy.tar")):
        proc = _data_cli(dataset)
        assert proc.returncode == 0, proc.stderr
        assert ".thumbs" not in proc.stdout and "note" not in proc.stdout, proc.stdout
        fingerprints.append(proc.stdout.split("fingerprint")[1].split()[0])
    assert fingerprints[0] == fingerprints[1], fingerprints  # (an archive has a kind of its own)


def test_a_fifo_named_like_an_image_is_one_line_not_a_hang(tmp_path):
    dataset = write_layout(tmp_path / "ds")
    os.mkfifo(dataset / "train" / "cat" / "pipe.jpg")
    proc = _data_cli(dataset, timeout=60)  # (before: blocked for good, waiting for a writer)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"{dataset / 'train' / 'cat' / 'pipe.jpg'}: a FIFO (named pipe), not a regular file" in proc.stderr


def test_a_huge_file_named_like_an_image_is_one_line_not_read(tmp_path):
    dataset = write_layout(tmp_path / "ds")
    big = dataset / "train" / "cat" / "big.jpg"
    with open(big, "wb") as f:
        f.truncate(6 * 2**30)  # 6 GiB, sparse: takes no disk
    proc = _data_cli(dataset, timeout=60)  # (before: read whole to hash it, a MemoryError)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"{big}: 6,144 MiB, too large for a 32x32 image" in proc.stderr, proc.stderr


def test_a_huge_archive_member_is_refused_before_it_is_read(tmp_path, monkeypatch):
    dataset = write_layout(tmp_path / "ds")
    archive = make_tar(dataset, tmp_path / "ds.tar")
    monkeypatch.setattr(sources, "MAX_IMAGE_BYTES", 100)  # (a real 6 GB member: 6 GB of disk)
    with pytest.raises(StudyError, match=r"ds.tar: member 'ds/.*\.png': .*too "
                       r"large for a 32x32 image"):
        sources.from_path(archive)
