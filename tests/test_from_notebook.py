"""trialstore.from_notebook (conftest.notebook_code) loads a cell's definitions as a kernel runs
them: a dataclass and the functions annotated with it, from a real notebook file."""

import dataclasses

import nbformat

from helpers.experiments import trialstore

CELL = '''from dataclasses import dataclass


@dataclass
class Run:
    """One seed's result."""

    seed: int
    accuracy: float


def best(runs: list[Run]) -> Run:
    return max(runs, key=lambda r: r.accuracy)'''


def test_a_dataclass_cell_loads_with_its_annotations_evaluated_as_in_a_kernel(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("repeats = 3", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(CELL)])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    run = trialstore.from_notebook(path, "Run")
    assert [(f.name, f.type) for f in dataclasses.fields(run)] == [("seed", int),
                                                                    ("accuracy", float)]
    best = trialstore.from_notebook(path, "best")
    assert best.__annotations__["return"].__name__ == "Run"  # evaluated, not the text "Run"
    assert best([run(0, 0.5), run(1, 0.7)]).seed == 1
