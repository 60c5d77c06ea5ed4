"""Where images come from (CINIC-10, a folder or .tar/.tar.gz in its layout, `synthetic`)."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np

from helpers.atomic import atomic_dir, build_once, write_atomic
from helpers.base import StudyError, data_dir, progress_bar, resolve

CINIC10_URL = "https://datashare.is.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz"
CINIC10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CINIC10_PER_SPLIT_CLASS = 9000
SPLITS = ("train", "valid", "test")
LAYOUT = f"expected <split>/<class>/*.png|jpg, splits {', '.join(SPLITS)}"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# a 32x32 image is a few KB (CINIC-10's: ~2.5); larger files are refused unread (6 GB: MemoryError)
MAX_IMAGE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Source:
    """A checked dataset in CINIC-10's layout (kind cinic10 | synthetic | folder); prefix: train/'s
    path in location; files: split -> [(path below prefix, class index, sha256 of its bytes)]."""

    kind: str
    name: str
    location: Path
    prefix: str = ""
    note: str = ""
    classes: list[str] = field(default_factory=list)
    files: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict, repr=False)


def is_image(rel: str) -> bool:
    """Whether a path below the layout root has an image suffix and no hidden (dot) part."""
    path = PurePosixPath(rel)
    return path.suffix.lower() in IMAGE_SUFFIXES and not any(p.startswith(".") for p in path.parts)


def _walk_images(root: Path) -> list[tuple[str, str]]:
    """(relative path, content digest) of every image below root, symlinks followed, hidden
    names skipped; a link loop, a dangling link or an unreadable folder is one line naming it."""

    def unreadable(err: OSError):
        raise StudyError(f"{err.filename}: cannot read this folder ({err.strerror})")

    out, chains = [], {}
    for dirpath, dirnames, names in os.walk(root, followlinks=True, onerror=unreadable):
        # the folders this one sits in, by identity: a link back to one of them is a loop
        chain = chains.pop(dirpath, frozenset()) | {_identity(Path(dirpath))}
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # not walked at all
        for d in dirnames:
            if _identity(Path(dirpath, d)) in chain:
                raise StudyError(f"{Path(dirpath, d)}: a symlink loop (it leads back to a folder "
                                 "above it); remove the link")
            chains[os.path.join(dirpath, d)] = chain
        rel = Path(dirpath).relative_to(root).as_posix()
        for path in (Path(dirpath, n) for n in names if not n.startswith(".")):
            if path.is_symlink() and not path.exists():
                raise StudyError(f"{path}: a dangling symlink (to {os.readlink(path)}, which does "
                                 "not exist, or a loop); remove it or fix its target")
            if is_image(path.name):
                out.append((f"{rel}/{path.name}", _digest(path)))
    return sorted(out)


def _identity(path: Path) -> tuple[int, int]:
    return path.stat().st_dev, path.stat().st_ino


def _digest(path: Path) -> str:
    """A file's sha256 (32 hex), opened without blocking (a FIFO's open waits for a writer);
    anything but a regular file, or one over MAX_IMAGE_BYTES, is refused before it is read."""
    kinds = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket",
             stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                what = next((text for test, text in kinds.items() if test(st.st_mode)),
                            "something else")
                raise StudyError(f"{path}: {what}, not a regular file; remove it or put the "
                                 "image file there")
            _check_size(path, st.st_size)
            return hashlib.file_digest(f, "sha256").hexdigest()[:32]
    except OSError as err:
        raise StudyError(f"{path}: cannot read this image ({err.strerror})") from None


def _check_size(where: str | Path, size: int) -> None:
    if size > MAX_IMAGE_BYTES:
        raise StudyError(f"{where}: {size / 2**20:,.0f} MiB, too large for a 32x32 image (at "
                         f"most {MAX_IMAGE_BYTES // 2**20} MiB); remove it or replace it")


def resolve_source(spec: str = "auto", *, say=print) -> Source:
    """--dataset (auto | cinic10 | synthetic | PATH) as a Source; auto falls back to synthetic."""
    if spec == "synthetic":
        return make_synthetic(say=say)
    if spec in ("cinic10", "auto"):
        try:  # CINIC10_DIR (folder or archive), else data/raw/CINIC-10[.tar.gz], else the download
            env, raw = os.environ.get("CINIC10_DIR"), data_dir() / "raw"
            folder, archive = raw / "CINIC-10", raw / "CINIC-10.tar.gz"
            path = resolve(env) if env else folder if folder.is_dir() else archive
            if not env and not path.exists():
                download_cinic10(path, say=say)
        except StudyError as err:  # not on disk and not downloadable: auto may fall back
            if spec == "cinic10":
                raise
            note = (f"CINIC-10 is not available ({err}); using the generated `synthetic` "
                    "dataset instead. Its numbers are NOT CINIC-10's.")
            say(f"dataset auto: {note}")
            return replace(make_synthetic(say=say), note=note)
        source = from_path(path, "cinic10")  # on disk but damaged or incomplete: refused
    else:
        source = from_path(resolve(spec))
    if source.note:
        say(f"{source.location}: {source.note}")
    return source


def _list_images(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """(train/'s path inside path: up to two levels down, sorted [(path below it, digest)])."""
    if not path.exists():
        raise StudyError(f"{path}: no such file or folder (give a dataset folder, .tar or .tar.gz)")
    if path.is_file():
        digests = check_archive(path)
        prefix = min((n[: n.index("train/")] for n in digests
                      if n.startswith("train/") or "/train/" in n), key=len, default=None)
        if prefix is None:
            raise StudyError(f"{path}: no train/ folder in the archive ({LAYOUT})")
        return prefix, sorted((n[len(prefix):], d) for n, d in digests.items()
                              if n.startswith(prefix) and is_image(n[len(prefix):]))
    root = next((c for c in [path, *sorted(path.glob("*")), *sorted(path.glob("*/*"))]
                 if (c / "train").is_dir()), None)
    if root is None:
        raise StudyError(f"{path}: no train/ folder found ({LAYOUT})")
    return "" if root == path else root.relative_to(path).as_posix() + "/", _walk_images(root)


def from_path(path: Path, kind: str = "folder") -> Source:
    """A folder or archive in CINIC-10's layout, listed once and checked (CINIC-10, by kind or its
    classes, names and counts, complete); images outside <split>/<class>/ go into the note."""
    prefix, images = _list_images(path)
    tree: dict[str, dict[str, list[tuple[str, str]]]] = {}  # split -> class -> [(path, digest)]
    skipped = []
    for rel, digest in images:
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] in SPLITS:
            tree.setdefault(parts[0], {}).setdefault(parts[1], []).append((rel, digest))
        else:
            skipped.append(rel)
    where = path / prefix
    for required in ("train", "test"):
        if required not in tree:
            raise StudyError(f"{where / required}: split missing or empty (need train/ and test/ "
                             "with <class>/*.png|jpg inside; valid/ optional)")
    classes, splits = sorted(tree["train"]), [s for s in SPLITS if s in tree]
    for split in splits:
        extra, missing = set(tree[split]) - set(classes), set(classes) - set(tree[split])
        if extra or missing:
            raise StudyError(f"{where / split}: class folders differ from train/'s (extra "
                             f"{sorted(extra)}, missing {sorted(missing)})")
    counts = {f"{s}/{c}": len(tree.get(s, {}).get(c, [])) for s in SPLITS for c in CINIC10_CLASSES}
    short = [f"{cell}: {n}" for cell, n in counts.items() if n != CINIC10_PER_SPLIT_CLASS]
    cifar = any(PurePosixPath(rel).name.startswith("cifar10-")
                for images in tree["train"].values() for rel, _ in images)
    if kind == "folder" and cifar and not short and classes == sorted(CINIC10_CLASSES):
        kind = "cinic10"  # CINIC-10 given by path is CINIC-10 too
    if kind == "cinic10" and short:
        raise StudyError(f"{where}: not a complete CINIC-10 (expected 3 splits x 10 classes x "
                         f"{CINIC10_PER_SPLIT_CLASS} images; got {', '.join(short[:3])}...)")
    note = (f"{len(skipped)} image(s) outside <split>/<class>/ (splits {', '.join(SPLITS)}) left "
            f"out: {', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''}" if skipped else "")
    name = "cinic10" if kind == "cinic10" else (
        PurePosixPath(prefix).name or path.name.removesuffix(".gz").removesuffix(".tar"))
    files = {split: [(rel, c, digest) for c, cls in enumerate(classes)
                     for rel, digest in tree[split][cls]] for split in splits}
    return Source(kind, name, path, prefix, note, classes, files)


def download_cinic10(target: Path, say=print) -> Path:
    """Download the archive (~690 MB; CINIC10_URL overrides the address) to target, through a
    .part file renamed into place once check_archive reads it whole (a killed one never is)."""
    url = os.environ.get("CINIC10_URL", CINIC10_URL)
    if os.environ.get("CINIC10_OFFLINE"):
        raise StudyError("CINIC10_OFFLINE is set, not downloading")

    def fetch(part: Path) -> None:  # part: an empty temporary file beside target
        try:  # (the timeout: an offline machine fails in seconds rather than hanging)
            with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
                size = int(response.headers.get("Content-Length") or 0) or None
                with progress_bar(total=size, unit="B", unit_scale=True, desc="CINIC-10") as bar:
                    while block := response.read(1 << 20):
                        bar.update(out.write(block))
        except (OSError, ValueError) as err:  # URLError, HTTPError, a connection cut, a bad URL
            why = getattr(err, "reason", err)
            why = f"HTTP {err.code} {why}" if hasattr(err, "code") else why
            raise StudyError(f"cannot download {url}: {why}") from None
        check_archive(part)

    for stale in target.parent.glob(f".{target.name}.*.part"):  # a killed download's bytes
        stale.unlink(missing_ok=True)
    say(f"downloading CINIC-10 from {url} to {target} (about 690 MB, once)")
    return write_atomic(target, fetch)


def member_name(m: tarfile.TarInfo) -> str:
    """A member's path without a leading './' (tar -C dir . writes those)."""
    return str(PurePosixPath(m.name))


def check_archive(archive: Path) -> dict[str, str]:
    """{member name: sha256} of every image, in one pass; refuses a corrupt archive, members that
    could land outside a folder, and a name twice."""
    digests, seen = {}, set()
    try:
        with tarfile.open(archive) as tar:
            for m in tar:  # one pass: headers and contents (a gzip stream is read once anyway)
                name, path = member_name(m), PurePosixPath(m.name)
                unsafe = {"is a link": m.issym() or m.islnk(),  # (checked before it is read)
                          "points outside the folder": path.is_absolute() or ".." in path.parts,
                          "is not a file or folder": not (m.isfile() or m.isdir())}
                why = next((why for why, bad in unsafe.items() if bad), None)
                if why:
                    raise StudyError(f"{archive}: member {m.name!r} {why}; refused")
                if m.isfile() and name in seen:  # which copy counts is anyone's guess
                    raise StudyError(f"{archive}: member {m.name!r} appears more than once (added "
                                     "again with `tar -r`?); repack the archive without duplicates")
                if m.isfile():
                    seen.add(name)
                if m.isfile() and path.suffix.lower() in IMAGE_SUFFIXES:
                    _check_size(f"{archive}: member {m.name!r}", m.size)  # before reading it
                    digests[name] = hashlib.file_digest(tar.extractfile(m), "sha256").hexdigest()[:32]
    except StudyError:  # (a ValueError too: not to be taken for a corrupt archive)
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        if zipfile.is_zipfile(archive):  # (checked only now: a tar may end with a .zip member)
            raise StudyError(f"{archive}: zip is not supported; use .tar/.tar.gz or a folder") from None
        raise StudyError(f"{archive}: truncated or corrupt archive, or not a .tar/.tar.gz "
                         f"({_why(err, archive.stat().st_size)})") from None
    return digests


def _why(err: Exception, size: int) -> str:
    """tarfile's reason in a few words (for an unknown format it lists every compression tried)."""
    text = str(err)
    if size == 0:
        return "an empty file"
    if "ReadError('empty file')" in text:
        return "a compressed stream with nothing in it"
    if text.startswith("file could not be opened"):
        return "neither a tar archive nor a gzip, bzip2 or xz-compressed one"
    return text.splitlines()[0] if text else type(err).__name__


SYNTHETIC_VERSION = 2  # bump when synthetic_image changes, so old copies are not reused
SYNTHETIC_CLASSES = ("disk", "square", "triangle", "ring", "h-stripes", "v-stripes", "cross",
                     "diagonal", "checker", "two-dots")

# per class and split: enough for the quick profile's draws (`make report` without CINIC-10)
SYNTHETIC_PER_CLASS = {"train": 600, "valid": 600, "test": 1000}


def make_synthetic(per_class: int | dict[str, int] = SYNTHETIC_PER_CLASS, seed: int = 0,
                   say=print) -> Source:
    """A generated 10-class 32x32 RGB set (NOT CINIC-10): a noisy shape over a gradient with a
    faint distractor; per_class for every split or per split; written once, under a lock."""
    sizes = per_class if isinstance(per_class, dict) else dict.fromkeys(SPLITS, per_class)
    size = "-".join(str(sizes[s]) for s in SPLITS) if len(set(sizes.values())) > 1 else sizes["train"]
    dest = data_dir() / "synthetic" / f"synthetic-v{SYNTHETIC_VERSION}-{size}-s{seed}"
    build_once(dest, ".complete", lambda: _generate(dest, sizes, seed), "dataset", say)
    return from_path(dest, "synthetic")


def _generate(dest: Path, sizes: dict[str, int], seed: int) -> None:
    from PIL import Image

    with atomic_dir(dest) as tmp:
        for s, split in enumerate(SPLITS):
            rng = np.random.default_rng([seed, s])
            for c, cls in enumerate(SYNTHETIC_CLASSES):
                (tmp / split / cls).mkdir(parents=True)
                for i in range(sizes[split]):
                    Image.fromarray(synthetic_image(c, rng)).save(
                        tmp / split / cls / f"synthetic-{split}-{i:05d}.png")
        (tmp / ".complete").touch()


_YY, _XX = np.mgrid[0:32, 0:32].astype(np.float32)


def _shape_mask(c: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """(32, 32) bool mask of SYNTHETIC_CLASSES[c]'s shape; every class draws the same 4 numbers."""
    cy, cx = rng.uniform(10, 22, size=2)
    r = scale * rng.uniform(5, 10)
    dy, dx = _YY - cy, _XX - cx
    inside = (np.abs(dy) < r) & (np.abs(dx) < r)
    period = rng.uniform(3.0, 6.0)
    d, w, p, q = np.sqrt(dy**2 + dx**2), max(1.5, r / 3), period / 1.5, (r / 3) ** 2
    return {
        "disk": lambda: dy**2 + dx**2 < r**2,
        "square": lambda: inside,
        "triangle": lambda: (dy > -r) & (dy < r) & (np.abs(dx) < (dy + r) / 2),
        "ring": lambda: (d < r) & (d > 0.55 * r),
        "h-stripes": lambda: inside & (np.sin(2 * np.pi * _YY / period) > 0),
        "v-stripes": lambda: inside & (np.sin(2 * np.pi * _XX / period) > 0),
        "cross": lambda: ((np.abs(dy) < w) & (np.abs(dx) < r)) | ((np.abs(dx) < w) & (np.abs(dy) < r)),
        "diagonal": lambda: inside & (np.sin(2 * np.pi * (_XX + _YY) / (period * 1.4)) > 0),
        "checker": lambda: inside & ((np.floor(_YY / p) + np.floor(_XX / p)) % 2 == 0),
        "two-dots": lambda: ((dy - r / 2) ** 2 + (dx - r / 2) ** 2 < q)
        | ((dy + r / 2) ** 2 + (dx + r / 2) ** 2 < q),
    }[SYNTHETIC_CLASSES[c]]()


def synthetic_image(c: int, rng: np.random.Generator) -> np.ndarray:
    """One (32, 32, 3) uint8 image of synthetic class c."""
    a, b = rng.uniform(0, 255, size=(2, 3))
    t = (np.cos(rng.uniform(0, 2 * np.pi)) * _XX + np.sin(rng.uniform(0, 2 * np.pi)) * _YY) / 44 + 0.5
    img = a * (1 - t[..., None]) + b * t[..., None]
    distractor = _shape_mask(int(rng.integers(10)), rng, 0.5)
    img[distractor] = 0.7 * img[distractor] + 0.3 * rng.uniform(0, 255, size=3)
    fg = rng.uniform(0, 255, size=3)
    contrast = rng.uniform(0.6, 1.0)
    mask = _shape_mask(c, rng, rng.uniform(0.6, 1.4))
    img[mask] = (1 - contrast) * img[mask] + contrast * fg
    img += rng.normal(0, rng.uniform(4, 16), size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
