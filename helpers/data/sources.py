"""Where images come from: CINIC-10 (downloaded or local), any folder/archive in its layout,
or the generated `synthetic` set. Everything ends as a folder `<root>/<split>/<class>/*.png|jpg`."""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np

from helpers.atomic import atomic_dir, build_once, write_atomic
from helpers.base import StudyError, data_dir, resolve

CINIC10_URL = "https://datashare.is.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz"
CINIC10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CINIC10_PER_SPLIT_CLASS = 9000
SPLITS = ("train", "valid", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# A 32x32 image file is a few KB (CINIC-10's PNGs: about 2.5 KB); anything past this is no
# such image, and refused before it is read (a 6 GB file hashed whole was a MemoryError).
MAX_IMAGE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Source:
    """A dataset in CINIC-10's layout: a folder, or a .tar/.tar.gz read in place.
    kind: cinic10 | synthetic | folder; prefix: the path to train/ inside location."""

    kind: str
    name: str
    location: Path
    prefix: str = ""
    note: str = ""
    # a folder's file list, once taken (from_path lists it to recognise CINIC-10; the cache
    # build reuses it instead of walking a 270,000-file tree again)
    listing: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def is_archive(self) -> bool:
        return self.location.is_file()

    def files(self) -> list[tuple[str, str]]:
        """(path relative to the layout root, sha256 of its bytes) of every image, sorted: the
        content, so that a file replaced by another of the same size changes the fingerprint.
        A folder's symlinks are followed (a loop or a dangling link is an error naming it).
        Hidden files and folders (a name starting with '.': .thumbs/, .DS_Store, macOS's ._x.png)
        are not the dataset's and are skipped, as `ls` skips them."""
        if self.is_archive:
            members, digests = _read_archive(self.location)
            names = (member_name(m) for m in members if m.isfile())
            return sorted((n[len(self.prefix):], digests[n]) for n in names
                          if n.startswith(self.prefix) and is_image(n[len(self.prefix):]))
        if self.listing is not None:
            return list(self.listing)
        return _walk_images(self.location / self.prefix)


def is_image(rel: str) -> bool:
    """Whether a path relative to the layout root names an image: an image suffix, and no
    hidden (dot-named) folder or file on the way."""
    parts = PurePosixPath(rel).parts
    return PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES and not any(
        p.startswith(".") for p in parts)


def _walk_images(root: Path) -> list[tuple[str, str]]:
    """(relative path, content digest) of every image below root, following symlinks, hidden
    folders and files skipped; a symlink loop, a dangling link, an unreadable folder or an
    image that is no regular file or too large is a StudyError naming it."""

    def unreadable(err: OSError):
        raise StudyError(f"{err.filename}: cannot read this folder ({err.strerror})")

    out, chains = [], {}
    for dirpath, dirnames, names in os.walk(root, followlinks=True, onerror=unreadable):
        # the folders this one sits in, by identity: a link back to one of them is a loop
        chain = chains.pop(dirpath, frozenset()) | {_identity(Path(dirpath))}
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # not walked at all
        for d in dirnames:
            if _identity(Path(dirpath, d)) in chain:
                raise StudyError(
                    f"{Path(dirpath, d)}: a symlink loop (it leads back to a folder above it); "
                    "remove the link"
                )
            chains[os.path.join(dirpath, d)] = chain
        rel = Path(dirpath).relative_to(root).as_posix()
        for n in (n for n in names if not n.startswith(".")):
            path = Path(dirpath, n)
            if path.is_symlink() and not path.exists():
                raise StudyError(
                    f"{path}: a dangling symlink (to {os.readlink(path)}, which does not exist, "
                    "or a loop); remove it or fix its target"
                )
            if is_image(n):
                out.append((f"{rel}/{n}", _digest(path)))
    return sorted(out)


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _digest(path: Path) -> str:
    """sha256 of a file's bytes (hex, 128 bits: plenty to tell images apart), read in chunks.
    Opened without blocking and checked before a byte is read: a FIFO, a device or a socket
    (reading would wait for a writer, or forever) and a file over MAX_IMAGE_BYTES are refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # (a FIFO's open waits for a writer)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StudyError(f"{path}: {_file_type(st.st_mode)}, not a regular file; "
                                 "remove it or put the image file there")
            _check_size(path, st.st_size)
            return hashlib.file_digest(f, "sha256").hexdigest()[:32]
    except OSError as err:
        raise StudyError(f"{path}: cannot read this image ({err.strerror})") from None


def _check_size(where: str | Path, size: int) -> None:
    if size > MAX_IMAGE_BYTES:
        raise StudyError(f"{where}: {size / 2**20:,.0f} MiB, too large for a 32x32 image (at "
                         f"most {MAX_IMAGE_BYTES // 2**20} MiB); remove it or replace it")


def _file_type(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket",
             stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    return next((text for test, text in kinds.items() if test(mode)), "something else")


def resolve_source(spec: str = "auto", *, download: bool = True, say=print) -> Source:
    """Turn --dataset (auto | cinic10 | synthetic | PATH) into a Source, fetching or generating
    it on first use. `auto` falls back to synthetic, saying why, when CINIC-10 can't be had."""
    spec = str(spec)
    if spec == "synthetic":
        return make_synthetic(say=say)
    if spec in ("cinic10", "auto"):
        try:
            source = _cinic10(download=download, say=say)
        except StudyError as err:
            if spec == "cinic10":
                raise
            note = (
                f"CINIC-10 is not available ({err}); using the generated `synthetic` "
                "dataset instead. Its numbers are NOT CINIC-10's."
            )
            say(f"dataset auto: {note}")
            return replace(make_synthetic(say=say), note=note)
    else:
        source = from_path(resolve(spec))
    if source.note:
        say(f"{source.location}: {source.note}")
    return source


def from_path(path: Path) -> Source:
    """A folder or archive in CINIC-10's layout (train/ one or two levels down is found)."""
    if not path.exists():
        raise StudyError(f"{path}: no such file or folder (give a dataset folder, .tar or .tar.gz)")
    if path.is_file():
        dirs = {
            str(PurePosixPath(member_name(m)).parent) + "/"
            for m in check_archive(path)
            if m.isfile()
        }
        tops = sorted(
            {d[: d.index("train/")] for d in dirs if d.startswith("train/") or "/train/" in d},
            key=len,
        )
        if not tops:
            raise StudyError(
                f"{path}: no train/ folder in the archive (expected "
                f"<split>/<class>/*.png|jpg, splits {', '.join(SPLITS)})"
            )
        prefix = tops[0]
    else:
        prefix = find_layout_root(path).relative_to(path).as_posix() + "/"
        prefix = "" if prefix == "./" else prefix
    name = PurePosixPath(prefix).name or path.name.removesuffix(".gz").removesuffix(".tar")
    source = Source("folder", name, path, prefix)
    if not source.is_archive:  # (archive listings are cached per process already)
        source = replace(source, listing=tuple(source.files()))
    # images not at <split>/<class>/<file> (a nested folder, a stray file in a split, a folder
    # that is no split) are left out, never without a word: the note travels with the dataset
    skipped = [rel for rel, _ in source.files() if not _in_layout(rel)]
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        source = replace(source, note=f"{len(skipped)} image(s) outside <split>/<class>/ "
                         f"(splits {', '.join(SPLITS)}) left out: {shown}")
    if is_full_cinic10(source):  # CINIC-10 given by path is CINIC-10 too
        return replace(source, kind="cinic10", name="cinic10")
    return source


def _in_layout(rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) == 3 and parts[0] in SPLITS


def layout_tree(source: Source) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """split -> class -> [(relative path, content digest)] of every image at
    <split>/<class>/<file>."""
    tree: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for rel, digest in source.files():
        if _in_layout(rel):
            split, cls, _ = rel.split("/")
            tree.setdefault(split, {}).setdefault(cls, []).append((rel, digest))
    return tree


def cinic10_shortfalls(tree: dict) -> list[str]:
    """'split/class: n' for every CINIC-10 cell of layout_tree without its 9,000 images."""
    return [
        f"{s}/{c}: {len(tree.get(s, {}).get(c, []))}"
        for s in SPLITS
        for c in CINIC10_CLASSES
        if len(tree.get(s, {}).get(c, [])) != CINIC10_PER_SPLIT_CLASS
    ]


def is_full_cinic10(source: Source) -> bool:
    """CINIC-10's classes, cifar10-… file names and 9,000 images per split and class."""
    tree = layout_tree(source)
    classes_ok = all(set(tree.get(s, {})) == set(CINIC10_CLASSES) for s in SPLITS)
    cifar = any(
        PurePosixPath(rel).name.startswith("cifar10-")
        for cls in tree.get("train", {}).values()
        for rel, _ in cls
    )
    return classes_ok and cifar and not cinic10_shortfalls(tree)


def find_layout_root(folder: Path) -> Path:
    """The folder holding train/: folder itself, or one level or two below it."""
    for candidate in [folder, *sorted(folder.glob("*")), *sorted(folder.glob("*/*"))]:
        if (candidate / "train").is_dir():
            return candidate
    raise StudyError(
        f"{folder}: no train/ folder found (expected <split>/<class>/*.png|jpg, "
        f"splits {', '.join(SPLITS)})"
    )


# --- CINIC-10 ---------------------------------------------------------------------------------


def _cinic10(*, download: bool, say) -> Source:
    """CINIC10_DIR (folder or archive), else data/raw/CINIC-10[.tar.gz], else the download."""
    env = os.environ.get("CINIC10_DIR")
    raw = data_dir() / "raw"
    if env:
        path = resolve(env)
    elif (raw / "CINIC-10").is_dir():
        path = raw / "CINIC-10"
    else:
        path = raw / "CINIC-10.tar.gz"
        if not path.exists():
            if not download:
                raise StudyError(f"{path}: not downloaded yet")
            download_cinic10(path, say=say)
    return replace(from_path(path), kind="cinic10", name="cinic10")


def download_cinic10(target: Path, say=print) -> Path:
    """Download the official archive (~690 MB) with a progress bar to target. The bytes go to
    a temporary .part file first and only a complete, readable gzip+tar is renamed into place, so a killed
    download is never mistaken for a whole one. CINIC10_URL overrides the address (mirrors, tests)."""
    url = os.environ.get("CINIC10_URL", CINIC10_URL)
    if os.environ.get("CINIC10_OFFLINE"):
        raise StudyError("CINIC10_OFFLINE is set, not downloading")
    try:  # a quick probe, so an offline machine fails in seconds rather than hanging
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15).close()
    except urllib.error.HTTPError:
        pass  # the server answered (some refuse HEAD); the download itself will say if it fails
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise StudyError(f"cannot reach {url}: {getattr(err, 'reason', err)}") from err
    import keras  # only here: the download is the one place the data layer needs it

    def fetch(part: Path) -> None:  # part: an empty temporary file beside target
        keras.utils.get_file(  # cache_dir: else Keras silently uses /tmp/.keras
            fname=part.name, origin=url, cache_dir=str(part.parent), cache_subdir=".",
            force_download=True,  # part exists (empty): download into it all the same
        )
        check_archive(part)

    for stale in target.parent.glob(f".{target.name}.*.part"):  # a killed download's bytes
        stale.unlink(missing_ok=True)
    say(f"downloading CINIC-10 from {url} to {target} (about 690 MB, once)")
    return write_atomic(target, fetch)


# --- archives -----------------------------------------------------------------------------------


def member_name(m: tarfile.TarInfo) -> str:
    """A member's path without a leading './' (tar -C dir . writes those)."""
    return str(PurePosixPath(m.name))


def check_archive(archive: Path) -> list[tarfile.TarInfo]:
    """Every member header, read once per archive version (for gzip this checks the whole stream),
    refusing members that could land outside a target folder: links, absolute or `..` paths,
    devices. Truncated or corrupt archives are refused too."""
    return _read_archive(archive)[0]


def _read_archive(archive: Path) -> tuple[list[tarfile.TarInfo], dict[str, str]]:
    """(members, {member name: sha256 of its bytes}), cached per archive path, size and mtime."""
    st = archive.stat()
    return _members(archive.resolve(), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _members(archive: Path, size: int, mtime: int):
    digests = {}
    try:
        with tarfile.open(archive) as tar:
            for m in tar:  # one pass: headers and contents (a gzip stream is read once anyway)
                if m.isfile() and PurePosixPath(m.name).suffix.lower() in IMAGE_SUFFIXES:
                    _check_size(f"{archive}: member {m.name!r}", m.size)  # before reading it
                    digest = hashlib.file_digest(tar.extractfile(m), "sha256")  # in chunks
                    digests[member_name(m)] = digest.hexdigest()[:32]
            members = tar.getmembers()
    except StudyError:  # (a ValueError too: not to be taken for a corrupt archive)
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        if zipfile.is_zipfile(archive):  # (checked only now: a tar may end with a .zip member)
            raise StudyError(
                f"{archive}: zip is not supported; use .tar/.tar.gz or a folder"
            ) from None
        raise StudyError(
            f"{archive}: truncated or corrupt archive, or not a .tar/.tar.gz ({_why(err, size)})"
        ) from None
    seen = set()
    for m in members:
        if m.isfile():  # a name twice (e.g. `tar -r`): which copy counts is anyone's guess
            if member_name(m) in seen:
                raise StudyError(
                    f"{archive}: member {m.name!r} appears more than once (added again with "
                    "`tar -r`?); repack the archive without duplicates"
                )
            seen.add(member_name(m))
        parts = PurePosixPath(m.name).parts
        if m.issym() or m.islnk():
            raise StudyError(f"{archive}: member {m.name!r} is a link; refused")
        if PurePosixPath(m.name).is_absolute() or ".." in parts:
            raise StudyError(f"{archive}: member {m.name!r} points outside the folder; refused")
        if not (m.isfile() or m.isdir()):
            raise StudyError(f"{archive}: member {m.name!r} is not a file or folder; refused")
    return members, digests


def _why(err: Exception, size: int) -> str:
    """tarfile's reason in a few words (for an unknown format it lists every compression it
    tried, one line each)."""
    text = str(err)
    if size == 0:
        return "an empty file"
    if text.startswith("file could not be opened"):
        if "ReadError('empty file')" in text:
            return "a compressed stream with nothing in it"
        return "neither a tar archive nor a gzip, bzip2 or xz-compressed one"
    return text.splitlines()[0] if text else type(err).__name__


# --- synthetic ----------------------------------------------------------------------------------

SYNTHETIC_VERSION = 2  # bump when synthetic_image changes, so old copies are not reused
SYNTHETIC_CLASSES = (
    "disk",
    "square",
    "triangle",
    "ring",
    "h-stripes",
    "v-stripes",
    "cross",
    "diagonal",
    "checker",
    "two-dots",
)


# images per class in each split of the set that `synthetic` (and auto's fallback) names: enough
# for the default (quick) profile's largest draws, 400 / 300 / 1,000 per class (02), so the
# README's `make report` runs end to end on it when CINIC-10 cannot be had
SYNTHETIC_PER_CLASS = {"train": 600, "valid": 600, "test": 1000}


def make_synthetic(
    per_class: int | dict[str, int] = SYNTHETIC_PER_CLASS, seed: int = 0, say=print
) -> Source:
    """A generated, deterministic 10-class 32x32 RGB set (NOT CINIC-10): one noisy, randomly
    coloured, placed and scaled shape per image over a gradient, with a faint distractor shape,
    so a small CNN learns it well but not perfectly. per_class: images per class, one number
    for every split or one per split. Written once as PNGs in CINIC-10's layout; generators of
    one set take turns under a lock (the second finds the first's set)."""
    sizes = per_class if isinstance(per_class, dict) else dict.fromkeys(SPLITS, per_class)
    size = "-".join(str(sizes[s]) for s in SPLITS) if len(set(sizes.values())) > 1 else sizes["train"]
    dest = data_dir() / "synthetic" / f"synthetic-v{SYNTHETIC_VERSION}-{size}-s{seed}"
    build_once(dest, ".complete", lambda: _generate(dest, sizes, seed), "dataset", say)
    return Source("synthetic", dest.name, dest)


def _generate(dest: Path, sizes: dict[str, int], seed: int) -> None:
    from PIL import Image

    with atomic_dir(dest) as tmp:
        for s, split in enumerate(SPLITS):
            rng = np.random.default_rng([seed, s])
            for c, cls in enumerate(SYNTHETIC_CLASSES):
                (tmp / split / cls).mkdir(parents=True)
                for i in range(sizes[split]):
                    img = synthetic_image(c, rng)
                    Image.fromarray(img).save(tmp / split / cls / f"synthetic-{split}-{i:05d}.png")
        (tmp / ".complete").touch()


_YY, _XX = np.mgrid[0:32, 0:32].astype(np.float32)


def _shape_mask(c: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    cy, cx = rng.uniform(10, 22, size=2)
    r = scale * rng.uniform(5, 10)
    dy, dx = _YY - cy, _XX - cx
    inside = (np.abs(dy) < r) & (np.abs(dx) < r)
    period = rng.uniform(3.0, 6.0)
    if c == 0:
        return dy**2 + dx**2 < r**2
    if c == 1:
        return inside
    if c == 2:
        return (dy > -r) & (dy < r) & (np.abs(dx) < (dy + r) / 2)
    if c == 3:
        d = np.sqrt(dy**2 + dx**2)
        return (d < r) & (d > 0.55 * r)
    if c == 4:
        return inside & (np.sin(2 * np.pi * _YY / period) > 0)
    if c == 5:
        return inside & (np.sin(2 * np.pi * _XX / period) > 0)
    if c == 6:
        w = max(1.5, r / 3)
        return ((np.abs(dy) < w) & (np.abs(dx) < r)) | ((np.abs(dx) < w) & (np.abs(dy) < r))
    if c == 7:
        return inside & (np.sin(2 * np.pi * (_XX + _YY) / (period * 1.4)) > 0)
    if c == 8:
        p = period / 1.5
        return inside & ((np.floor(_YY / p) + np.floor(_XX / p)) % 2 == 0)
    d1 = (dy - r / 2) ** 2 + (dx - r / 2) ** 2
    d2 = (dy + r / 2) ** 2 + (dx + r / 2) ** 2
    return (d1 < (r / 3) ** 2) | (d2 < (r / 3) ** 2)


def synthetic_image(c: int, rng: np.random.Generator) -> np.ndarray:
    """One (32, 32, 3) uint8 image of synthetic class c."""
    a, b = rng.uniform(0, 255, size=(2, 3))
    t = (
        np.cos(rng.uniform(0, 2 * np.pi)) * _XX + np.sin(rng.uniform(0, 2 * np.pi)) * _YY
    ) / 44 + 0.5
    img = a * (1 - t[..., None]) + b * t[..., None]
    distractor = _shape_mask(int(rng.integers(10)), rng, 0.5)
    img[distractor] = 0.7 * img[distractor] + 0.3 * rng.uniform(0, 255, size=3)
    fg = rng.uniform(0, 255, size=3)
    contrast = rng.uniform(0.6, 1.0)
    mask = _shape_mask(c, rng, rng.uniform(0.6, 1.4))
    img[mask] = (1 - contrast) * img[mask] + contrast * fg
    img += rng.normal(0, rng.uniform(4, 16), size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
