"""The report is for reading: per-epoch lines stay in the executed notebooks, printed dicts
read as words, and the parameter table is an appendix at the end."""

from __future__ import annotations

import json

import nbformat

from helpers.run import report


def _run(tmp_path):
    run = tmp_path / "run"
    (run / "executed").mkdir(parents=True)
    text = ("data: train 300; {'precision': 'float32', 'gpus': 0, 'backend': 'tensorflow'}\n"
            "epoch 1/2  accuracy 0.0900  loss 4.6030  lr 1.00e-03  78 img/s  4.3s\n"
            "epoch 2/2  accuracy 0.1600  loss 3.4821  lr 1.00e-03  162 img/s  2.0s\n"
            "seed 0: 2 epochs in 6 s\n")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# ResNet"),
        nbformat.v4.new_code_cell("fit()", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=text),
            nbformat.v4.new_output("stream", name="stdout", text="epoch 3/3  loss 1.0\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": "{'a': 1, 'b': 'x'}"},
                                   execution_count=1)])])
    nbformat.write(nb, run / "executed" / "02_resnet.ipynb")
    record = {"profile": "smoke", "dataset": {"dataset": "d", "kind": "synthetic",
                                              "fingerprint": "f"},
              "notebooks": {"02_resnet": {"executed": "executed/02_resnet.ipynb",
                                          "parameters": {"epochs": 2, "run_dir": str(run)},
                                          "origins": {"epochs": "profile"}}}}
    (run / "run.json").write_text(json.dumps(record))
    return run


def test_epoch_lines_out_dicts_as_words_parameters_last(tmp_path):
    nb = report.combined_notebook(_run(tmp_path))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    shown = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "epoch 1/2" not in shown and "epoch 3/3" not in shown
    assert "seed 0: 2 epochs in 6 s" in shown  # the other lines stay
    assert "precision float32, gpus 0, backend tensorflow" in shown and "{'" not in shown
    assert "a 1, b x" in shown
    assert len(outputs) == 2  # an output left empty is dropped
    last = nb.cells[-1].source
    assert last.startswith("# Appendix: parameters") and "| epochs |" in last
    run_table = next(c.source for c in nb.cells if c.source.startswith("## Run"))
    assert "| epochs |" not in run_table and "(#Appendix:-parameters)" in run_table
    html = report.to_html(nb)
    assert 'id="Appendix:-parameters"' in html  # the contents' and the run table's link land


def test_the_executed_notebook_keeps_its_epoch_lines(tmp_path):
    run = _run(tmp_path)
    report.combined_notebook(run)
    kept = nbformat.read(run / "executed" / "02_resnet.ipynb", as_version=4)
    assert "epoch 1/2" in kept.cells[1].outputs[0]["text"]


def test_page_one_is_the_figure_and_one_compact_table_the_rows_in_full_at_the_end(tmp_path):
    """After the title: Figure F and one compact table (claim, estimate [interval], verdict,
    n) for every claim; the full rows, the conclusion and the verdicts' definitions in
    "Findings in detail" at the end; a notebook's own claims table not repeated in its
    section (the executed notebook keeps it)."""
    from helpers.experiments import findings

    run = _run(tmp_path)
    rows = [findings.finding("C7", findings.paired([0.1, 0.12, 0.11], [0.2, 0.25, 0.22]),
                             findings.UNNAMED),
            findings.finding("C12", findings.paired([0.6, 0.7, 0.1], [0.5, 0.55, 0.5],
                                                    diverged=[False, False, True]),
                             findings.UNNAMED)]
    rows = [{**r, "notebook": "02_resnet"} for r in rows]  # (the one notebook that stands)
    (run / "results").mkdir()
    (run / "results" / "findings.json").write_text(json.dumps(
        {"dataset": "d", "profile": "smoke", "backend": "tensorflow", "claims": rows}))
    path = run / "executed" / "02_resnet.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("claims", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/html": findings.table_html(rows), "text/plain": "t"})]))
    nbformat.write(nb, path)
    out = report.combined_notebook(run)
    sources = [c.source for c in out.cells]
    start = next(i for i, s in enumerate(sources) if s.startswith("## Findings"))
    assert start == 2 and "not CINIC-10" in sources[1]  # right after the title and banner
    assert report.FIGURE_TAG in out.cells[start + 1].metadata["tags"]
    compact = next(s for s in sources[start:start + 4] if "findings-compact" in s)
    assert "C7" in compact and "C12" in compact and "diverged" in compact
    assert "the study's own words" not in compact and "“" not in compact  # claim in a few words
    detail = next(i for i, s in enumerate(sources) if s.startswith("# Findings in detail"))
    run_table = next(i for i, s in enumerate(sources) if s.startswith("## Run"))
    assert start < run_table < detail and sources[-1].startswith("# Appendix: parameters")
    full = "".join(sources[detail:])
    assert "<table class='findings'>" in full and "| verdict | when |" in full
    shown = [o for c in out.cells if c.cell_type == "code" for o in c.outputs]
    assert not any("<table class='findings'>" in "".join(o.get("data", {}).get("text/html", ""))
                   for o in shown)
    kept = nbformat.read(path, as_version=4)
    assert "<table class='findings'>" in kept.cells[-1].outputs[0]["data"]["text/html"]
