"""A dataset folder as users have them: symlinked folders followed, images outside the layout
named (never dropped without a word), links that go nowhere or in circles and damaged caches
one line each, and a cache keyed to every image's content."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest
from conftest import make_tar, one_line_error, write_layout
from PIL import Image

from helpers.base import StudyError
from helpers.data import load_dataset

QUIET = {"say": lambda *_: None}


_one_line_error = one_line_error


def test_images_outside_the_layout_are_named_in_one_line(tiny):
    shutil.copy(tiny / "train/cat/train-0-0.png", tiny / "train/stray.png")
    (tiny / "train/cat/more").mkdir()
    shutil.copy(tiny / "train/cat/train-0-1.png", tiny / "train/cat/more/nested.png")
    said = []
    ds = load_dataset(str(tiny), say=said.append)
    lines = [s for s in said if "outside <split>/<class>/" in s]
    assert len(lines) == 1 and "\n" not in lines[0], said
    assert "2 image(s)" in lines[0] and "train/stray.png" in lines[0]
    assert "train/cat/more/nested.png" in lines[0]
    assert "train/stray.png" in ds.note  # travels with the dataset (01 and the report show it)
    assert len(ds["train"]) == 12


@pytest.mark.parametrize("linked", ["class", "split"])
def test_symlinked_class_and_split_folders_are_followed(tmp_path, linked):
    root = write_layout(tmp_path / "ds", splits=("train", "valid", "test"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if linked == "class":  # every split's dog folder lives elsewhere
        for split in ("train", "valid", "test"):
            (root / split / "dog").rename(elsewhere / f"{split}-dog")
            (root / split / "dog").symlink_to(elsewhere / f"{split}-dog")
    else:
        (root / "train").rename(elsewhere / "train")
        (root / "train").symlink_to(elsewhere / "train")
    ds = load_dataset(str(root), **QUIET)
    assert ds.classes == ["cat", "dog", "frog"]
    assert np.bincount(ds["train"].y).tolist() == [4, 4, 4]


def test_a_dangling_symlink_in_a_split_is_one_line(tiny, capsys):
    (tiny / "train/cat/gone.png").symlink_to(tiny / "nowhere.png")
    err = _one_line_error(capsys, ["data", "--dataset", str(tiny)])
    assert "train/cat/gone.png: a dangling symlink" in err


@pytest.mark.parametrize("loop", ["folder", "self"])
def test_a_symlink_loop_in_a_split_is_one_line(tiny, capsys, loop):
    if loop == "folder":  # a link back to the split it sits in
        (tiny / "train/cat/back").symlink_to(tiny / "train")
    else:
        (tiny / "train/cat/self.png").symlink_to(tiny / "train/cat/self.png")
    err = _one_line_error(capsys, ["data", "--dataset", str(tiny)])
    assert "loop" in err and "train/cat/" in err


def test_an_image_replaced_by_another_of_the_same_size_is_decoded_anew(tmp_path):
    root = write_layout(tmp_path / "ds", splits=("train", "valid", "test"))
    first = load_dataset(str(root), **QUIET)
    target = root / "train/cat/train-0-0.png"
    size = target.stat().st_size
    # another image (flat grey 200; the cats are about 40), padded after its end to the same size
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(buf, format="PNG")
    target.write_bytes(buf.getvalue().ljust(size, b"\0"))  # same name and byte count
    assert target.stat().st_size == size
    second = load_dataset(str(root), **QUIET)
    assert second.fingerprint != first.fingerprint and second.cache != first.cache
    row = list(second["train"].names).index("train-0-0.png")
    assert abs(second["train"].x[row].mean() - first["train"].x[row].mean()) > 30  # its pixels


def test_the_same_images_as_a_folder_or_an_archive_share_one_cache(tiny, tmp_path):
    folder = load_dataset(str(tiny), **QUIET)
    archive = load_dataset(str(make_tar(tiny, tmp_path / "t.tar.gz")), **QUIET)
    assert archive.fingerprint == folder.fingerprint


def test_a_truncated_cache_file_is_one_line(tiny, capsys):
    ds = load_dataset(str(tiny), **QUIET)
    npz = ds.cache / "train.npz"
    npz.write_bytes(npz.read_bytes()[:200])
    capsys.readouterr()  # (the first build's progress bar)
    err = _one_line_error(capsys, ["data", "--dataset", str(tiny)])
    assert "train.npz: damaged cache file" in err and str(ds.cache) in err


@pytest.mark.parametrize("content", [b"hello, not an archive\n", b""])
def test_a_file_that_is_no_archive_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "data.tar.gz"
    path.write_bytes(content)
    err = _one_line_error(capsys, ["data", "--dataset", str(path)])
    assert "data.tar.gz: truncated or corrupt archive, or not a .tar/.tar.gz" in err


def test_cinic10_data_that_is_a_file_is_one_line(tiny, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("CINIC10_DATA", str(tmp_path / "a-file"))
    err = _one_line_error(capsys, ["data", "--dataset", str(tiny)])
    assert "CINIC10_DATA=" in err and "is a file" in err


def test_damaged_layouts_raise_study_errors_not_os_errors(tiny):
    (tiny / "valid/cat/gone.png").symlink_to(tiny / "nowhere.png")
    with pytest.raises(StudyError, match="dangling symlink"):
        load_dataset(str(tiny), **QUIET)
    os.unlink(tiny / "valid/cat/gone.png")
    assert len(load_dataset(str(tiny), **QUIET)["valid"]) == 12
