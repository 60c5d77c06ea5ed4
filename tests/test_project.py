"""Configuration and project hygiene: profiles vs parameters cells, committed notebooks,
environment.yml vs pyproject.toml."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml
from conftest import plan

from helpers.base import ROOT, StudyError
from helpers.run.profiles import COMMON, load_profile, notebook_parameters, notebooks


@pytest.mark.parametrize("profile", ["smoke", "quick", "full", "gpu"])
def test_every_profile_validates_against_the_notebooks(profile, tmp_path):
    name, steps = plan(profile, dataset=None, out=str(tmp_path))
    assert name == profile and [p.stem for p, _ in steps] == [p.stem for p in notebooks()]
    for _, params in steps:
        assert params["run_dir"] == str(tmp_path) and params["profile"] == profile


def test_notebook_defaults_are_the_quick_profile():
    _, quick = load_profile("quick")
    for nb in notebooks():
        defaults = notebook_parameters(nb)
        assert all(c in defaults for c in COMMON), nb
        for key, value in (quick["notebooks"].get(nb.stem) or {}).items():
            assert defaults[key] == value, (
                f"{nb.stem}.{key}: notebook {defaults[key]!r} vs quick {value!r}"
            )
        assert defaults["profile"] == "quick" and defaults["run_dir"] == "reports/quick"


def test_notebooks_are_committed_without_outputs():
    for nb in notebooks():
        cells = json.loads(nb.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in code), nb
        assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# ")


@pytest.mark.parametrize(
    "bad, pattern",
    [
        ({"notebooks": {"02_resnet": {"epochz": 3}}}, "unknown parameter 'epochz'"),
        ({"notebooks": {"02_resnet": {"epochs": "three"}}}, "expected int"),
        ({"notebooks": {"99_nothing": {}}}, "no notebook '99_nothing'"),
        ({"epochs": 3}, "unknown top-level key"),
        ({"all_notebooks": {"epochz": 3}}, "no notebook has a parameter 'epochz'"),
        ({"all_notebooks": {"batch_size": "big"}}, "expected int"),
        ({"extends": "nosuch"}, "does not exist"),
    ],
)
def test_bad_profiles_are_refused_before_anything_runs(tmp_path, bad, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(StudyError, match=pattern):
        plan(str(path), dataset=None, out=str(tmp_path))


def test_all_notebooks_and_extends_layer_in_order(tmp_path):
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump({"dataset": "synthetic", "notebooks": {"02_resnet": {"epochs": 7}}})
    )
    (tmp_path / "mine.yaml").write_text(
        yaml.safe_dump(
            {
                "extends": str(tmp_path / "base.yaml"),
                "all_notebooks": {"batch_size": 64, "lr_scaling": "sqrt"},
                "notebooks": {"05_transfer": {"batch_size": 16}},
            }
        )
    )
    _, steps = plan(str(tmp_path / "mine.yaml"), dataset=None, out=str(tmp_path))
    by = {p.stem: params for p, params in steps}
    assert by["02_resnet"]["epochs"] == 7 and by["02_resnet"]["dataset"] == "synthetic"
    assert by["02_resnet"]["batch_size"] == by["04_augmentation"]["batch_size"] == 64
    assert by["05_transfer"]["batch_size"] == 16  # a notebook's own entry wins
    assert "batch_size" not in by["01_data"]  # only where the parameter exists
    _, steps = plan(str(tmp_path / "mine.yaml"), dataset=None, out="x", overrides=["batch_size=8"])
    sizes = {p.stem: params["batch_size"] for p, params in steps if "batch_size" in params}
    assert sizes == dict.fromkeys(["02_resnet", "03_hyperparams", "04_augmentation",
                                   "05_transfer"], 8)  # -p wins over all, in every notebook
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump({"extends": str(tmp_path / "loop.yaml")}))
    with pytest.raises(StudyError, match="extends itself"):
        load_profile(str(tmp_path / "loop.yaml"))


def test_overrides_are_validated_and_applied(tmp_path):
    _, steps = plan(
        "smoke",
        dataset="synthetic",
        out=str(tmp_path),
        only=["02"],
        overrides=["epochs=5", "02_resnet.dropout=0.3"],
    )
    params = steps[0][1]
    assert params["epochs"] == 5 and params["dropout"] == 0.3 and params["dataset"] == "synthetic"
    # refusals of bad overrides, --only and profiles: tests/test_one_line_errors.py, in one place


def _pins(reqs: list[str]) -> dict[str, str]:
    """{name: its version specifier, spaces removed} for requirement strings."""
    out = {}
    for r in reqs:
        name = re.split(r"[\s<>=!~\[;]", r.strip(), maxsplit=1)[0].lower()
        out[name] = re.sub(r"\s|#.*", "", r.split("]")[-1] if "[" in r else r[len(name):])
    return out


def test_environment_yml_pins_the_same_versions_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    extras = project["optional-dependencies"]
    wanted = _pins(project["dependencies"] + extras["ray"] + extras["jax"])
    have = _pins([p for p in pip if not p.startswith("-e")])
    for name, spec in wanted.items():  # the same specifier, not just the same name
        assert have.get(name) == spec, f"environment.yml: {name}{have.get(name)} vs {spec}"
    editable = next(p for p in pip if p.startswith("-e ."))
    assert {"dev", "ray", "jax"} <= set(re.findall(r"\w+", editable.split("[", 1)[1])), editable
    assert any(c.startswith("python=3.11") for c in conda)


def test_the_pins_parser_reads_a_specifier_not_a_name():
    assert _pins(["ray[default]>=2.60,<2.61", "keras >= 3.10, <3.16  # why"]) == {
        "ray": ">=2.60,<2.61", "keras": ">=3.10,<3.16"}


def test_every_helpers_folder_is_installed():
    from setuptools import find_packages

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    installed = set(find_packages(where=str(ROOT), include=find["find"]["include"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "helpers").rglob("*.py")}
    assert folders <= installed, folders - installed  # a folder without __init__.py is left out


def test_installed_versions_satisfy_the_pins():
    """Every requirement of pyproject.toml that is installed (the dependencies and the extras
    make installs) is within its pin: above all grpcio below 1.80 beside ray, whose 1.80+
    crashes children that the head's Ray client proxy forks (benchmarks/grpc_fork.py shows it).
    A check of versions, not of timing, so it holds on a busy machine."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wrong = []
    for line in project["dependencies"] + [r for e in ("ray", "jax", "mlflow", "dev")
                                            for r in extras[e]]:
        req = Requirement(line)
        try:
            have = version(req.name)
        except PackageNotFoundError:
            continue  # an extra this environment was not installed with
        if not req.specifier.contains(have, prereleases=True):
            wrong.append(f"{req.name} {have} (pyproject.toml: {req.specifier})")
    assert not wrong, "; ".join(wrong)
    if "ray" in {Requirement(r).name for r in extras["ray"]}:
        assert any(Requirement(r).name == "grpcio" and not Requirement(r).specifier.contains(
            "1.85.3") for r in extras["ray"]), "the ray extra must keep grpcio below 1.80"


def test_the_offline_fallback_holds_the_default_profiles_draws(tmp_path):
    """`make report` offline runs the quick profile on the generated set: every *_per_class
    of the profile fits the set's splits (test_readme_commands runs it for real)."""
    from helpers.data import PER_CLASS
    from helpers.data.sources import SYNTHETIC_PER_CLASS

    _, steps = plan("quick", dataset=None, out=str(tmp_path))
    for nb, params in steps:
        for key, split in PER_CLASS.items():
            n = params.get(key)
            assert not n or isinstance(n, float) or n <= SYNTHETIC_PER_CLASS[split], (nb.stem, key)
