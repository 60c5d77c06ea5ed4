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
