"""TensorBoard logs of every fit, without TensorFlow: epoch metrics and the learning rate as
scalars in TensorBoard's event files (<logdir>/train/ and <logdir>/validation/, the layout and
tags keras.callbacks.TensorBoard writes: epoch_loss, epoch_accuracy, epoch_learning_rate), so
the same files come from the TensorFlow and the JAX backend. No histograms (they cost time).

Where: CINIC10_TENSORBOARD names a notebook's folder (the runner sets it to
<run>/tensorboard/<notebook>); each fit logs to <that>/<arm>_s<seed>/, the arm being the
trial's id inside run_trials (arm()) and the notebook's short name otherwise; a second fit of
the same arm and seed in one process (05's two stages) gets _2. Without the variable nothing
is written. Logging only: it reads the logs Keras hands every callback and changes no number
(records.py leaves this module out of the code fingerprint)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import struct
import time
from pathlib import Path

import keras

ENV = "CINIC10_TENSORBOARD"
_ARM: list[str] = []
_USED: set[Path] = set()  # the folders this process has logged to


@contextlib.contextmanager
def arm(name: str):
    """Fits inside the block log under name (a trial's id)."""
    _ARM.append(name)
    try:
        yield
    finally:
        _ARM.pop()


def arm_name(trial_id: str, config: dict) -> str:
    """A trial's folder name: its config but the seed, then its id's first 8 hex (unique),
    e.g. 'augmentation=flip-03f8ab52' or 'n_blocks=1,kernel_size=2-52a5505c'."""
    words = ",".join(f"{k}={v}" for k, v in config.items() if k != "seed")
    words = re.sub(r"[^A-Za-z0-9.,=+-]+", "_", words)[:60]
    short = trial_id.rsplit("-", 1)[-1][:8]
    return f"{words}-{short}" if words else trial_id


def folder(seed: int) -> Path | None:
    """This fit's log folder (None when logging is off), emptied of an earlier process's logs."""
    root = os.environ.get(ENV)
    if not root:
        return None
    root = Path(root)
    name = _ARM[-1] if _ARM else root.name.split("_", 1)[-1]
    base = root / f"{name}_s{seed}"
    path, k = base, 1
    while path in _USED:
        k += 1
        path = base.with_name(f"{base.name}_{k}")
    _USED.add(path)
    shutil.rmtree(path, ignore_errors=True)  # a rerun's logs replace the last run's
    return path


# --- event files: TFRecord framing of Event protos, written by hand -----------------------------

def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
    c = crc32c(data)
    return struct.pack("<I", ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # a length-delimited protobuf field
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def event(step: int, *, scalars: dict[str, float] | None = None, version: str | None = None,
          wall_time: float | None = None) -> bytes:
    """An Event proto: wall_time (1, double), step (2, int64), file_version (3) or a Summary
    (5) of simple_value scalars (Value: tag 1, simple_value 2, float)."""
    out = b"\x09" + struct.pack("<d", time.time() if wall_time is None else wall_time)
    out += b"\x10" + _varint(step)
    if version is not None:
        out += _field(3, version.encode())
    if scalars:
        values = b"".join(_field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", v))
                          for tag, v in scalars.items())
        out += _field(5, values)
    return out


class EventWriter:
    """One events.out.tfevents.* file in folder, a record per event, flushed as written."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.v2"
        self.path = folder / name
        self._f = open(self.path, "wb")
        self.write(event(0, version="brain.Event:2"))

    def write(self, record: bytes) -> None:
        length = struct.pack("<Q", len(record))
        self._f.write(length + _masked(length) + record + _masked(record))
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class EpochLog(keras.callbacks.Callback):
    """Each epoch's logs (train/ and validation/) and learning rate as TensorBoard scalars."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self._writers: dict[str, EventWriter] = {}

    def _writer(self, split: str) -> EventWriter:
        if split not in self._writers:
            self._writers[split] = EventWriter(self.path / split)
        return self._writers[split]

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if "learning_rate" not in logs:
            lr = self.model.optimizer.learning_rate  # a Keras variable (.numpy(): no warning)
            logs["learning_rate"] = lr.numpy() if hasattr(lr, "numpy") else lr
        train = {f"epoch_{k}": float(v) for k, v in logs.items() if not k.startswith("val_")}
        valid = {f"epoch_{k[4:]}": float(v) for k, v in logs.items() if k.startswith("val_")}
        for split, scalars in (("train", train), ("validation", valid)):
            if scalars:
                self._writer(split).write(event(epoch, scalars=scalars))

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers.clear()


def callbacks(seed: int) -> list:
    """[EpochLog] for this fit when CINIC10_TENSORBOARD is set, else []."""
    path = folder(seed)
    return [] if path is None else [EpochLog(path)]
