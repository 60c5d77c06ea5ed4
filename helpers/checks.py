"""Type checks for a file read back from disk (a run record, findings, a result): each failure is
one StudyError naming the file, the field and what was expected, never a KeyError from deep
inside whatever reads it. Imports nothing but base."""

from __future__ import annotations

import math
from pathlib import Path

from helpers.base import StudyError

NUMBER = (int, float)
TEXT = (str,)
OPTIONAL_TEXT = (str, type(None))
OPTIONAL_NUMBER = (int, float, type(None))


def short(value) -> str:
    """repr(value), cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Checker:
    """Type checks for one file, each failure a StudyError naming the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str):
        raise StudyError(
            f"{self.path}: {where} {what}; this file is damaged or from another version: delete "
            "it and rerun the notebooks (`python -m helpers run ... --out` this folder)"
        )

    def need(self, value, types: tuple, where: str):
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            self.fail(where, f"is {type(value).__name__} {short(value)}, expected {names}")
        return value

    def fields(self, obj: dict, where: str, required: dict, optional: dict | None = None):
        """Each required key present with its types; each optional key, if present, too."""
        for key, types in required.items():
            if key not in obj:
                self.fail(f"{where}{key}", "is missing")
            self.need(obj[key], types, f"{where}{key}")
        for key, types in (optional or {}).items():
            if key in obj:
                self.need(obj[key], types, f"{where}{key}")

