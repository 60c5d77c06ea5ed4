"""Bad parameters, profiles and folders are refused before anything starts, each in one line
(the CLI's `error: ...`, exit 2), never as a traceback from deep inside a notebook."""

from __future__ import annotations

import pytest
import yaml
from conftest import write_layout

from helpers.run import runner
from helpers.run.cli import main
from helpers.run.profiles import plan


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fail the test if a run gets as far as preparing its dataset."""

    def started(*args, **kwargs):
        raise AssertionError("the run started; it should have been refused first")

    monkeypatch.setattr(runner, "load_dataset", started)


def _one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    return err


@pytest.mark.parametrize(
    "param, expected",
    [
        ("epochs=0", "epochs=0, expected a whole number >= 1"),
        ("epochs=-1", "epochs=-1, expected a whole number >= 1"),
        ("batch_size=0", "batch_size=0, expected a whole number >= 1"),
        ("seed=-1", "seed=-1, expected a whole number >= 0"),
        ("01_data.valid_fraction=2.0", "valid_fraction=2.0, expected a number between 0 and 1"),
        ("01_data.valid_fraction=.nan", "valid_fraction=nan, expected a number between 0 and 1"),
    ],
)
def test_out_of_range_parameters_are_refused_before_the_run(
    param, expected, tmp_path, capsys, nothing_starts
):
    out = tmp_path / "run"
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--out", str(out), "-p", param])
    assert expected in err and not out.exists()


@pytest.mark.parametrize("fraction", ["2", "-0.5", "nan", "0", "1"])
def test_bad_valid_fraction_is_refused_before_anything_is_decoded(
    fraction, tiny, capsys, data_home
):
    err = _one_line_error(capsys, ["data", "--dataset", str(tiny), "--valid-fraction", fraction])
    assert "valid fraction" in err and "between 0 and 1" in err
    assert not (data_home / "cache").exists()


def test_a_dataset_too_small_to_carve_valid_is_refused_with_its_counts(tmp_path, capsys):
    root = write_layout(tmp_path / "small", classes=("cat", "dog"), per_class=3)
    err = _one_line_error(capsys, ["data", "--dataset", str(root)])
    assert "too few images to carve 10% of each class as valid" in err
    assert "cat 3, dog 3" in err


@pytest.mark.parametrize("text", ["1e-3", "1E-3", "1.5e-4", "+2e-2"])
def test_a_float_in_exponent_form_is_accepted(text, tmp_path):
    _, steps = plan("smoke", dataset=None, out=str(tmp_path), only=["02"],
                    overrides=[f"learning_rate={text}"])  # fmt: skip
    value = steps[0][1]["learning_rate"]
    assert type(value) is float and value == float(text)


def test_a_float_in_exponent_form_is_accepted_in_a_profile_too(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("notebooks:\n  02_resnet:\n    learning_rate: 5e-4\n")
    _, steps = plan(str(path), dataset=None, out=str(tmp_path), only=["02"])
    assert steps[0][1]["learning_rate"] == 5e-4


def _bad_profile(tmp_path, case: str) -> str:
    path = tmp_path / "bad.yaml"
    if case == "yaml_syntax":
        path.write_text("all_notebooks:\n  epochs: [1, 2\n")
    elif case == "not_utf8":
        path.write_bytes("description: caf\u00e9\n".encode("latin-1"))
    elif case == "folder":
        path.mkdir()
    elif case == "all_notebooks_list":
        path.write_text(yaml.safe_dump({"all_notebooks": ["epochs", 3]}))
    elif case == "notebooks_list":
        path.write_text(yaml.safe_dump({"notebooks": ["02_resnet"]}))
    elif case == "notebook_params_list":
        path.write_text(yaml.safe_dump({"notebooks": {"02_resnet": ["epochs", 3]}}))
    elif case == "profile_seed":
        path.write_text(yaml.safe_dump({"seed": -3}))
    return str(path)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("yaml_syntax", "YAML syntax error at line"),
        ("not_utf8", "not UTF-8 text"),
        ("folder", "is a folder; a profile is a .yaml file"),
        ("all_notebooks_list", "all_notebooks is a list; it must be a mapping"),
        ("notebooks_list", "notebooks is a list; it must be a mapping"),
        ("notebook_params_list", "notebooks: 02_resnet is a list; it must be a mapping"),
        ("profile_seed", "seed=-3, expected a whole number >= 0"),
    ],
)
def test_bad_profile_files_are_one_line(case, expected, tmp_path, capsys, nothing_starts):
    profile = _bad_profile(tmp_path, case)
    err = _one_line_error(capsys, ["run", "--profile", profile, "--out", str(tmp_path / "o")])
    assert expected in err and "bad" in err  # names the profile


@pytest.mark.parametrize("case", ["a_file", "under_a_file", "unwritable"])
def test_out_that_cannot_hold_a_run_is_one_line(case, tmp_path, capsys, nothing_starts):
    (tmp_path / "f").write_text("x")
    out = {
        "a_file": tmp_path / "f",
        "under_a_file": tmp_path / "f" / "run",
        "unwritable": "/proc/cinic10-run",  # not writable even for root
    }[case]
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--out", str(out)])
    assert "--out" in err and ("is a file" in err or "cannot write in" in err)
