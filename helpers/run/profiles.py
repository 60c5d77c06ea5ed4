"""Profiles over the notebooks' parameters cells (`all_notebooks:`, then `notebooks: {NN_name:}`),
-p over both; an unknown name or a bad value is one line naming where, before anything runs."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import tempfile
from pathlib import Path

import yaml

from helpers.base import CONFIGS, NOTEBOOKS, StudyError, resolve
from helpers.data import DOUBLED_SETS
from helpers.experiments import EXECUTORS
from helpers.experiments.protocol import origins
from helpers.models import LR_SCALING

COMMON = ("run_dir", "dataset", "seed", "profile")  # every notebook's parameters cell has these
# the runner's own parameters: set by its options, which check them, never by -p or a profile
RUN_OPTIONS = {"run_dir": "--out", "profile": "--profile", "dataset": "--dataset"}
TOP_KEYS = {"description", "extends", "dataset", "seed", "all_notebooks", "notebooks",
            "synthetic_fallback"}  # false: `auto` never falls back to generated data (full, gpu)
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")
# closed sets of values, each from the light __init__ (no TensorFlow) of the code it parameterises
CHOICES = {"lr_scaling": LR_SCALING, "executor": EXECUTORS, "doubled_set": DOUBLED_SETS,
           "flip": FLIPS, "flip_mode": ("", *FLIPS)}  # "": no flip in 05


# (test, words) of a number's bounds
WHOLE_1 = (lambda v: v >= 1, "a whole number >= 1")
WHOLE_0 = (lambda v: v >= 0, "a whole number >= 0")
BLOCKS = (lambda v: 1 <= v <= 5, "a whole number between 1 and 5")
POSITIVE, SHARE = (lambda v: v > 0, "a number > 0"), (lambda v: 0 <= v < 1, "a number in [0, 1)")
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are unsigned 32-bit
# parameters with bounds (nan and infinities are refused for every number)
BOUNDS = {
    **dict.fromkeys(["epochs", "batch_size", "repeats", "head_epochs", "finetune_epochs",
                     "units", "n_examples", "kernel_size", "reg_kernel_size"], WHOLE_1),
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"a whole number between 0 and {MAX_SEED}"),
    **dict.fromkeys(["patience", "train_per_class", "valid_per_class",
                     "test_per_class"], WHOLE_0),  # per class: 0 = all
    **dict.fromkeys(["learning_rate", "head_learning_rate", "finetune_learning_rate", "alpha",
                     "cpus_per_trial"], POSITIVE),
    **dict.fromkeys(["dropout", "bn_momentum"], SHARE),
    **dict.fromkeys(["n_blocks", "reg_n_blocks"], BLOCKS),  # 32x32 pooled once per block
    "input_size": (lambda v: v >= 32, "a whole number >= 32"),  # keras.applications' smallest input
    "gpus_per_trial": (lambda v: v >= 0, "a number >= 0"),
    "brightness": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "rotation": (lambda v: 0 < v < 0.25, "a number between 0 and 0.25 (exclusive)"),  # < 90 degrees
    "zoom": (lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)"),
    "cutout": (lambda v: 0.02 < v <= 1, "a number in (0.02, 1]"),  # erased share of the area
}
# a grid's items obey the bounds of the parameter they vary
GRIDS = {"n_blocks_grid": BLOCKS, "kernel_size_grid": WHOLE_1, "dropout_grid": SHARE,
         "alpha_grid": (lambda v: 0 <= v <= 1, "a number between 0 and 1"),
         "lam_grid": (lambda v: v >= 0, "a number >= 0")}  # alpha: Elastic Net's l1 share


class _Loader(yaml.SafeLoader):
    """YAML 1.1, except that 1e-3 is a float (1.1 reads it as a string), also inside a list."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order, or those whose number/name prefix is in only."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if unknown := [o for o in only or () if not any(p.stem.startswith(o) for p in found)]:
        raise StudyError(f"--only {','.join(unknown)}: no such notebook in {NOTEBOOKS} "
                         f"(have {', '.join(p.stem for p in found)})")
    return [p for p in found if not only or any(p.stem.startswith(o) for o in only)]


def notebook_parameters(path: Path) -> dict:
    """Names and default values of the cell tagged `parameters` (plain literals only)."""
    cells = [c for c in json.loads(path.read_text())["cells"]
             if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise StudyError(f"{path}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    out = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError as err:
                raise StudyError(f"{path}: parameter {node.targets[0].id} is not a plain "
                                 "literal") from err
    return out


def load_profile(spec: str, _seen: tuple = ()) -> tuple[str, dict]:
    """(name, contents) of a profile: smoke | quick | full | gpu (configs/) or a YAML path; one
    with `extends: other` is the other with its own keys laid over it, merged key by key."""
    path = resolve(spec) if "/" in spec or spec.endswith(".yaml") else CONFIGS / f"{spec}.yaml"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml")))
        raise StudyError(f"profile {spec!r}: {path} does not exist (have {have}, or give a "
                         ".yaml path)")
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise StudyError(f"{path}: a profile is a mapping (dataset, seed, all_notebooks, notebooks)")
    for key in ("all_notebooks", "notebooks"):
        if not isinstance(data.get(key) or {}, dict):
            raise StudyError(f"{path}: {key} is a {type(data[key]).__name__}; it must be a "
                             f"mapping (name: value lines under {key}:)")
    for stem, params in (data.get("notebooks") or {}).items():
        if not isinstance(params or {}, dict):
            raise StudyError(f"{path}: notebooks: {stem} is a {type(params).__name__}; "
                             "it must be a mapping of parameter: value")
    if unknown := set(data) - TOP_KEYS:
        raise StudyError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed "
                         f"{sorted(TOP_KEYS)}")
    if not isinstance(data.get("synthetic_fallback", True), bool):
        raise StudyError(f"{path}: synthetic_fallback is {data['synthetic_fallback']!r}; it must "
                         "be true or false (whether dataset auto may fall back to generated data)")
    if "extends" in data:
        if path in _seen:
            raise StudyError(f"{path}: extends itself (through {', '.join(map(str, _seen))})")
        _, base = load_profile(str(data.pop("extends")), (*_seen, path))
        books = dict(base.get("notebooks") or {})
        for stem, params in (data.get("notebooks") or {}).items():
            books[stem] = {**(books.get(stem) or {}), **(params or {})}
        every = {**(base.get("all_notebooks") or {}), **(data.get("all_notebooks") or {})}
        data = {**base, **data, "notebooks": books, "all_notebooks": every}
    return path.stem, data


def _read_yaml(path: Path):
    """A profile file's YAML, every way it can be unreadable being one line naming it."""
    if path.is_dir():
        raise StudyError(f"{path}: is a folder; a profile is a .yaml file")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), _Loader) or {}
    except UnicodeDecodeError as err:
        raise StudyError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise StudyError(f"{path}: YAML syntax error{where}: {what}") from None
    except OSError as err:
        raise StudyError(f"{path}: cannot read ({err.strerror})") from None


def check_out(out: str | os.PathLike) -> Path:
    """The run folder --out names, resolved; refused (a file, unwritable) before anything runs."""
    path = resolve(out)
    if path.exists() and not path.is_dir():
        raise StudyError(f"--out {out}: {path} is a file; give a folder for the run")
    for p in (path, *path.parents):
        if p.is_symlink() and not p.exists():
            raise StudyError(f"--out {out}: {p} is a dangling symlink (to {os.readlink(p)}); "
                             "create its target or give another folder")
    existing = next(p for p in (path, *path.parents) if p.exists())
    try:
        if not existing.is_dir():
            raise OSError(f"{existing} is a file")
        # (a probe, not os.access: root passes os.access on a read-only disk or in /proc)
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as err:
        raise StudyError(f"--out {out}: cannot write in {existing} "
                         f"({err.strerror or err})") from None
    return path


def parse_override(text: str):
    """'name=value' or 'NN_name.name=value' -> (notebook or None, name, YAML-parsed value)."""
    if "=" not in text:
        raise StudyError(f"-p {text}: expected name=value")
    key, raw = text.split("=", 1)
    target, _, name = key.rpartition(".")
    return target or None, name.strip(), yaml.load(raw, _Loader)


def plan_sources(profile: str, *, dataset: str | None, out: str | None = None, only=None,
                 overrides=()) -> tuple[str, list, dict]:
    """(profile name, [(notebook, parameters)], {stem: {parameter: 'profile' | '-p'}}: the layer
    that set each value, which helpers.experiments.protocol turns into its origin)."""
    name, prof = load_profile(profile)
    books = notebooks(only)
    defaults = {p: notebook_parameters(p) for p in notebooks()}
    given, every = prof.get("notebooks") or {}, prof.get("all_notebooks") or {}
    stems = [p.stem for p in defaults]
    if stray := [stem for stem in given if stem not in stems]:
        raise StudyError(f"profile {name}: no notebook {stray[0]!r} (have {', '.join(stems)})")
    base = {"run_dir": str(check_out(out or f"reports/{name}")), "profile": name,
            "seed": check_value(f"profile {name}", "seed", prof.get("seed", 0), 0),
            "dataset": dataset or prof.get("dataset", "auto")}
    parsed = [(text, *parse_override(text)) for text in overrides]
    named = [(f"profile {name}, all_notebooks", key) for key in every]
    named += [(f"profile {name}, {stem}", key) for stem, ps in given.items() for key in ps or {}]
    for where, key in [*named, *((f"-p {text}", key) for text, _, key, _ in parsed)]:
        if key in RUN_OPTIONS:
            extra = " or the profile's top-level `dataset:`" if key == "dataset" else ""
            raise StudyError(f"{where}: {key} is the runner's own; set it with {RUN_OPTIONS[key]}"
                             f"{extra}, which checks it")
    for key in every:
        if not any(key in d for d in defaults.values()):
            raise StudyError(f"profile {name}, all_notebooks: no notebook has a parameter {key!r}")

    def hits(p: Path, target: str | None, key: str) -> bool:
        return key in defaults[p] and (target is None or p.stem.startswith(target))

    for text, target, key, _ in parsed:
        if not any(hits(p, target, key) for p in books):
            raise StudyError(
                f"-p {text}: where a dataset has no valid/, every notebook loads the one carve "
                "(10% of train/ per class, carve seed 0); give the dataset a valid/ folder to "
                "choose another" if key == "valid_fraction"
                else f"-p {key}: no selected notebook has a parameter {key!r}")
    result, sources = [], {}
    for p in books:
        params, src = dict(base), sources.setdefault(p.stem, {})
        layers = [  # (where, origin, values), later layers over earlier ones
            (f"profile {name}, all_notebooks, {p.stem}", "profile",
             {k: v for k, v in every.items() if k in defaults[p]}),
            (f"profile {name}, {p.stem}", "profile", given.get(p.stem) or {}),
            *((f"-p {key}", "-p", {key: value}) for _, target, key, value in parsed
              if hits(p, target, key))]
        for where, origin, values in layers:
            for key, value in values.items():
                if key not in defaults[p]:  # (only a profile's notebook section can get here)
                    raise StudyError(f"{where}: unknown parameter {key!r} "
                                     f"(known: {', '.join(sorted(defaults[p]))})")
                params[key] = check_value(where, key, value, defaults[p][key])
                src[key] = origin
        if missing := [c for c in COMMON if c not in defaults[p]]:
            raise StudyError(f"{p}: parameters cell lacks {missing}")
        params = {**defaults[p], **params}  # the cell's own values where nothing overrides them
        last = params["seed"] + params.get("repeats", 1) - 1  # seeds seed .. seed+repeats-1
        if last > MAX_SEED:
            raise StudyError(
                f"{p.stem}: seed {params['seed']} with repeats {params.get('repeats', 1)} reaches "
                f"seed {last}, above the largest seed NumPy and TensorFlow take ({MAX_SEED})")
        result.append((p, params))
    return name, result, sources


def explain(profile: str, *, dataset: str | None, out: str | None = None, only=None,
            overrides=()) -> dict:
    """The dry run: {"profile": name, "notebooks": {stem: {parameter: {"value", "origin"}}}}."""
    name, steps, sources = plan_sources(profile, dataset=dataset, out=out, only=only,
                                        overrides=overrides)
    books = {}
    for p, params in steps:
        found = origins(p.stem, params, sources[p.stem])
        books[p.stem] = {k: {"value": v, "origin": found[k]} for k, v in params.items()}
    return {"profile": name, "notebooks": books}


def check_value(where: str, name: str, value, default):
    """value checked: its default's type (an int widened to a float), the bounds, the choices."""
    if value is None and default is not None:
        raise StudyError(f"{where}: parameter {name} is empty; give a value like the default "
                         f"{default!r}")
    value = _typed(where, name, value, default)
    if isinstance(value, list):
        if not value:
            raise StudyError(f"{where}: parameter {name}=[] is empty; give at least one value, "
                             f"like the default {default!r}")
        if default:  # each item of the default's items' type, within the varied one's bounds
            value = [_typed(where, f"{name} item", v, default[0]) for v in value]
        if len(set(map(repr, value))) < len(value):
            raise StudyError(f"{where}: parameter {name}={value!r} names a value twice")
        for v in value:
            _check_number(where, f"{name} item", v, GRIDS.get(name))
        return value
    _check_number(where, name, value, BOUNDS.get(name))
    if name in CHOICES and value not in CHOICES[name]:
        raise StudyError(f"{where}: parameter {name}={value!r}, expected one of {CHOICES[name]}")
    return value


def _typed(where: str, name: str, value, default):
    widen = isinstance(default, float) and type(value) is int
    if not (type(value) is type(default) or widen or default is None
            or (isinstance(default, list) and isinstance(value, list))):
        raise StudyError(f"{where}: parameter {name}={value!r} is a {type(value).__name__}, "
                         f"expected {type(default).__name__} like the default {default!r}")
    return float(value) if widen else value


def _check_number(where: str, name: str, value, bound) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    test, words = bound or (lambda v: True, "a finite number")
    if not math.isfinite(value) or not test(value):
        raise StudyError(f"{where}: parameter {name}={value!r}, expected {words}")
