"""Bad parameters, profiles and folders are refused before anything starts, each in one line
(the CLI's `error: ...`, exit 2), never as a traceback from deep inside a notebook."""

from __future__ import annotations

import pytest
import yaml
from conftest import one_line_error, plan, write_layout

from helpers.run import runner


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fail the test if a run gets as far as preparing its dataset."""

    def started(*args, **kwargs):
        raise AssertionError("the run started; it should have been refused first")

    monkeypatch.setattr(runner, "load_dataset", started)


_one_line_error = one_line_error


@pytest.mark.parametrize(
    "param, expected",
    [
        ("epochs=0", "epochs=0, expected a whole number >= 1"),
        ("epochs=-1", "epochs=-1, expected a whole number >= 1"),
        ("batch_size=0", "batch_size=0, expected a whole number >= 1"),
        ("seed=-1", "seed=-1, expected a whole number between 0 and 4294967295"),
        ("seed=4294967296", "seed=4294967296, expected a whole number between 0 and 4294967295"),
        ("seed=4294967295", "reaches seed 4294967296, above the largest seed"),  # + repeats
        ("01_data.valid_fraction=0.5", "every notebook loads the one carve"),  # 02-05's
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


@pytest.mark.parametrize("where", ["-p", "profile"])
def test_floats_in_exponent_form_inside_a_grid_are_floats(where, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("extends: smoke\nnotebooks:\n  03_hyperparams:\n    lam_grid: [1e-3, 1E-2]\n")
    profile, overrides = (("smoke", ["03_hyperparams.lam_grid=[1e-3,1E-2]"]) if where == "-p"
                          else (str(path), []))
    _, steps = plan(profile, dataset=None, out=str(tmp_path), only=["03"], overrides=overrides)
    assert steps[0][1]["lam_grid"] == [1e-3, 1e-2]


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
    elif case == "maybe_fallback":
        path.write_text("extends: smoke\nsynthetic_fallback: maybe\n")
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
        ("profile_seed", "seed=-3, expected a whole number between 0"),
        ("maybe_fallback", "synthetic_fallback is 'maybe'; it must be true or false"),
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


# --- hostile parameters: refused before anything runs, naming the parameter ----------------------


@pytest.mark.parametrize(
    "param, expected",
    [
        ("epochs=", "parameter epochs is empty"),
        ("epoch=5", "no selected notebook has a parameter 'epoch'"),  # mistyped
        ("epochs=lots", "expected int"),
        ("lr_scaling=square", "lr_scaling='square', expected one of"),
        ("executor=dask", "executor='dask'"),
        ("02_resnet.learning_rate=-1", "learning_rate=-1.0, expected a number > 0"),
        ("learning_rate=.nan", "learning_rate=nan, expected a number > 0"),
        ("learning_rate=.inf", "learning_rate=inf, expected a number > 0"),
        ("05_transfer.finetune_learning_rate=0", "finetune_learning_rate=0.0, expected a number > 0"),
        ("patience=-3", "patience=-3, expected a whole number >= 0"),
        ("train_per_class=-5", "train_per_class=-5, expected a whole number >= 0"),
        ("02_resnet.dropout=1.5", "dropout=1.5, expected a number in [0, 1)"),
        ("02_resnet.n_blocks=9", "n_blocks=9, expected a whole number between 1 and 5"),
        ("n_blocks_grid=[a,b]", "n_blocks_grid item='a' is a str, expected int"),
        ("n_blocks_grid=[1,9]", "n_blocks_grid item=9, expected a whole number between 1 and 5"),
        ("kernel_size_grid=[3,3]", "kernel_size_grid=[3, 3] names a value twice"),
        ("lam_grid=[]", "lam_grid=[] is empty"),
        ("augmentations=[blur]", "no selected notebook has a parameter 'augmentations'"),
        ("04_augmentation.rotation=0.3", "rotation=0.3, expected a number between 0 and 0.25"),
        ("05_transfer.flip_mode=diagonal", "flip_mode='diagonal', expected one of"),
    ],
)
def test_hostile_parameters_are_refused_before_the_run(
    param, expected, tmp_path, capsys, nothing_starts
):
    out = tmp_path / "run"
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--out", str(out), "-p", param])
    assert expected in err and not out.exists(), err


@pytest.mark.parametrize("param, option", [
    ("run_dir=elsewhere", "--out"), ("run_dir=/tmp/x", "--out"), ("profile=full", "--profile"),
    ("02_resnet.dataset=synthetic", "--dataset"),
])
def test_the_runners_own_parameters_cannot_be_set_with_p(
    param, option, tmp_path, capsys, nothing_starts
):
    out = tmp_path / "run"
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--out", str(out), "-p", param])
    assert f"is the runner's own; set it with {option}" in err and not out.exists()


def test_a_profile_cannot_set_the_runners_own_parameters(tmp_path, capsys, nothing_starts):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"all_notebooks": {"run_dir": str(tmp_path / "x")}}))
    err = _one_line_error(capsys, ["run", "--profile", str(path), "--out", str(tmp_path / "o")])
    assert "all_notebooks: run_dir is the runner's own; set it with --out" in err


@pytest.mark.parametrize("only, expected", [("", "names no notebook"),
                                             (",", "names no notebook"),
                                             (" , ", "names no notebook"),
                                             ("42", "no such notebook")])
def test_only_that_names_no_notebook_is_refused(only, expected, tmp_path, capsys, nothing_starts):
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--out", str(tmp_path / "o"),
                                   "--only", only])
    assert expected in err


def test_a_profile_that_does_not_exist_is_one_line(tmp_path, capsys, nothing_starts):
    err = _one_line_error(capsys, ["run", "--profile", "nosuch", "--out", str(tmp_path / "o")])
    assert "does not exist" in err


def test_subsets_larger_than_the_data_are_refused_naming_the_most_there_is(tiny, tmp_path, capsys):
    from helpers.data import load_dataset

    load_dataset(str(tiny), say=lambda *_: None)  # decoded before: the error is the only line
    capsys.readouterr()
    out = tmp_path / "run"
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--dataset", str(tiny),
                                   "--only", "02", "--out", str(out),
                                   "-p", "train_per_class=999999"])
    assert "02_resnet: train_per_class=999999" in err and "give at most 4," in err
    assert not list((out / "executed").glob("*.ipynb"))  # no notebook started


def test_ray_address_auto_without_a_cluster_is_refused_before_the_run(
    tmp_path, capsys, nothing_starts, monkeypatch
):
    services = pytest.importorskip("ray._private.services")
    if services.find_gcs_addresses():
        pytest.skip("a Ray cluster runs on this machine (another test's or user's)")
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--only", "03", "--out",
                                   str(tmp_path / "o"), "-p", "executor=ray"])
    assert "RAY_ADDRESS=auto: no Ray cluster runs on this machine" in err


def test_out_that_is_a_dangling_symlink_is_one_line(tmp_path, capsys, nothing_starts):
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--out", str(tmp_path / "out")])
    assert "--out" in err and "dangling symlink" in err


@pytest.mark.parametrize("param, expected", [
    ("gpus_per_trial=1", "gpus_per_trial=1 with executor=ray, but this machine's Ray has 0 GPU(s)"),
    ("cpus_per_trial=4096", "cpus_per_trial=4096 with executor=ray, but this machine's Ray has"),
])
def test_ray_trials_that_could_never_start_are_refused_before_the_run(
    param, expected, tmp_path, capsys, monkeypatch, nothing_starts
):
    from pathlib import Path

    if Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    err = _one_line_error(capsys, ["run", "--profile", "smoke", "--only", "03", "--out",
                                   str(tmp_path / "o"), "-p", "executor=ray", "-p", param])
    assert expected in err and "no trial could ever start" in err and "03_hyperparams" in err
