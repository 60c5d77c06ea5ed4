"""Where a run's time goes: each notebook's wall time split into start-up, building, tracing,
training steps, validation, evaluation and figures/saving, and each kind of short run's
effective images/s against its model's steady-state rate on this machine.

    python benchmarks/budget.py reports/quick                       # a finished run folder
    python benchmarks/budget.py reports/b --run "--profile quick --dataset PATH -p ..."  # run, then read
    python benchmarks/budget.py reports/quick --no-steady            # split only, measure nothing

Reads only the run's records: run.json (each notebook's seconds), the executed notebooks (papermill
keeps every cell's duration), results/*.json (each kernel's seconds per phase, helpers.artifacts)
and results/trials/*.json. The steady-state rates are measured here and now (model_throughput's
method: random images, epochs after a warm-up one), so run it on the machine the run ran on.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from common import ROOT, fit_rate, header

TRAINING_CELL = re.compile(r"\b(run_trials|run_comparison|train_one_seed)\(")
IMPORT_CELL = re.compile(r"^\s*(from|import) ", re.M)
PHASES = ("build", "trace", "steps", "validation", "evaluation")
COLUMNS = ("start-up", "build+other", "trace", "steps", "validation", "evaluation",
           "figures+saving")


def read(path: Path):
    return json.loads(path.read_text())


def cells(executed: Path) -> list[tuple[str, float, str]]:
    """(kind, seconds, source) per code cell: kind start-up (parameters, imports and set-up),
    training (the cell that runs the seeds or trials) or other (figures, tables, saving)."""
    out = []
    for cell in read(executed)["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        seconds = float(cell["metadata"].get("papermill", {}).get("duration") or 0.0)
        tags = cell["metadata"].get("tags", [])
        if TRAINING_CELL.search(source):
            kind = "training"
        elif "parameters" in tags or "injected-parameters" in tags or IMPORT_CELL.search(source):
            kind = "start-up"
        else:
            kind = "other"
        out.append((kind, seconds, source))
    return out


def trial_records(run_dir: Path, prefix: str) -> list[dict]:
    folder = run_dir / "results" / "trials"
    return [read(p) for p in sorted(folder.glob(f"{prefix}-*.json"))] if folder.exists() else []


def phases_of(run_dir: Path, stem: str) -> tuple[dict, str]:
    """Seconds per phase of a notebook: its kernel's ledger (results/<stem>.json), or, where the
    trials ran elsewhere (Ray, worker processes), their records' fit timing summed over workers."""
    path = run_dir / "results" / f"{stem}.json"
    result = read(path) if path.exists() else {}
    executor = result.get("executor") or result.get("config", {}).get("executor", "local")
    ledger = result.get("provenance", {}).get("seconds_by_phase")
    if executor == "local" and ledger is not None:
        return ledger, "kernel"
    prefix = {"03_hyperparams": "resnet", "04_augmentation": "04aug"}.get(stem)
    summed = dict.fromkeys(("trace", "steps", "validation"), 0.0)
    for rec in trial_records(run_dir, prefix) if prefix else []:
        for k in summed:
            summed[k] += rec["result"].get("timing", {}).get(k, 0.0)
    return {**(ledger or {}), **summed}, f"{executor} workers (summed)"


def split(run_dir: Path, stem: str, entry: dict) -> dict:
    """One notebook's seconds per column (COLUMNS), from its cells and its phases."""
    wall = float(entry.get("seconds") or 0.0)
    parts = cells(run_dir / entry["executed"])
    by_kind = {k: sum(s for kind, s, _ in parts if kind == k) for k in ("start-up", "training",
                                                                         "other")}
    phases, source = phases_of(run_dir, stem)
    row = dict.fromkeys(COLUMNS, 0.0)
    row["start-up"] = wall - by_kind["training"] - by_kind["other"]  # kernel, imports, data
    row["figures+saving"] = by_kind["other"]
    measured = 0.0
    for phase in PHASES[1:]:
        row[phase] = float(phases.get(phase, 0.0))
        measured += row[phase]
    row["build+other"] = max(0.0, by_kind["training"] - measured) if source == "kernel" else \
        float(phases.get("build", 0.0))
    return {"wall": wall, **row, "source": source}


# --- kinds of run: images trained, wall seconds, the steady-state reference ---------------------


def kinds(run_dir: Path, record: dict) -> list[dict]:
    """Each kind of run in the folder: what it trained (images per architecture) and the wall
    time of the cell that trained it (building, tracing, validation and evaluation included)."""
    out = []
    nbs = record["notebooks"]

    def cell_seconds(stem: str, pattern: str) -> float:
        return sum(s for kind, s, src in cells(run_dir / nbs[stem]["executed"])
                   if kind == "training" and re.search(pattern, src))

    if "02_resnet" in nbs and (run_dir / "results/02_resnet.json").exists():
        r = read(run_dir / "results/02_resnet.json")
        cfg = r["config"]
        arch = ("resnet", cfg["n_blocks"], cfg["kernel_size"], cfg["batch_size"])
        images = sum(r["n_train"] * s["epochs_run"] for s in r["seeds"])
        out.append({"kind": "02 seeds", "runs": len(r["seeds"]), "images": {arch: images},
                    "wall": cell_seconds("02_resnet", r"train_one_seed\("),
                    "steps": r["provenance"].get("seconds_by_phase", {}).get("steps")})
    if "03_hyperparams" in nbs:
        params = nbs["03_hyperparams"]["parameters"]
        recs = trial_records(run_dir, "resnet")
        batch = params.get("batch_size", 32)
        for grid, test, pattern in (
            ("03 training grid", lambda c: "alpha" not in c, "train_trials"),
            ("03 regularisation grid", lambda c: "alpha" in c, "reg_trials"),
        ):
            images: dict = {}
            chosen = [r for r in recs if test(r["config"])]
            for rec in chosen:
                c = rec["config"]
                arch = ("resnet", c["n_blocks"], c["kernel_size"], batch)
                images[arch] = images.get(arch, 0) + rec["result"]["n_train"] * rec["result"][
                    "epochs_run"]
            if chosen:
                out.append({"kind": grid, "runs": len(chosen), "images": images,
                            "wall": cell_seconds("03_hyperparams", pattern),
                            "steps": steps_of(chosen)})
    if "04_augmentation" in nbs:
        recs = trial_records(run_dir, "04aug")
        batch = nbs["04_augmentation"]["parameters"].get("batch_size", 32)
        images = sum(r["result"]["n_train_images"] * r["result"]["epochs_run"] for r in recs)
        if recs:
            out.append({"kind": "04 runs", "runs": len(recs),
                        "images": {("simple_cnn", batch): images},
                        "wall": cell_seconds("04_augmentation", r"augmentation_trial, context"),
                        "steps": steps_of(recs)})
    if "05_transfer" in nbs and (run_dir / "results/05_transfer_history.csv").exists():
        import pandas as pd

        r = read(run_dir / "results/05_transfer.json")
        cfg = r["config"]
        hist = pd.read_csv(run_dir / "results/05_transfer_history.csv")
        epochs = hist[(hist.split == "train") & (hist.metric == "loss")].groupby("stage").size()
        base = (cfg["base_model"], cfg.get("alpha", 1.0), cfg.get("input_size", 32),
                cfg.get("units", 512), cfg["batch_size"])
        images = {("transfer", *base, stage): int(n) * r["n_train"] for stage, n in epochs.items()}
        out.append({"kind": "05 stages", "runs": cfg["repeats"], "images": images,
                    "wall": cell_seconds("05_transfer", r"train_one_seed\("),
                    "steps": r["provenance"].get("seconds_by_phase", {}).get("steps")})
    return out


def steps_of(records: list[dict]) -> float | None:
    """The trials' training-step seconds (their fits' timing), None for records without it."""
    found = [r["result"].get("timing", {}).get("steps") for r in records]
    return None if None in found else sum(found)


def build(arch: tuple):
    """A model of arch's cost, compiled as the notebooks do (weights random: same arithmetic)."""
    from helpers.experiments import trialstore
    from helpers.models import nets, pretrained, training

    if arch[0] == "resnet":
        return training.compile_model(nets.create_resnet_model(arch[1], arch[2]))
    if arch[0] == "simple_cnn":
        return training.compile_model(nets.create_simple_cnn())
    _, base_model, alpha, size, units, _, stage = arch
    choice = pretrained.build_base(base_model, size, "none", alpha)
    model = trialstore.from_notebook(ROOT / "notebooks" / "05_transfer.ipynb", "build_model",
                                     base_model=base_model, units=units)(choice.model)
    choice.model.trainable = stage == "unfrozen"
    return training.compile_model(model)


def steady_rate(arch: tuple, steps: int, repeats: int) -> float:
    """Median training images/s of arch's model after a warm-up epoch (model_throughput's way)."""
    import keras

    batch = arch[-2] if arch[0] == "transfer" else arch[-1]
    keras.backend.clear_session()
    return fit_rate(build(arch), batch, steps, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--run", help="run `python -m helpers run ARGS --out RUN_DIR` first")
    p.add_argument("--no-steady", action="store_true", help="skip the steady-state rates")
    p.add_argument("--steps", type=int, default=30, help="batches per timed epoch (steady)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per model (steady)")
    args = p.parse_args()
    run_dir = args.run_dir if args.run_dir.is_absolute() else Path.cwd() / args.run_dir
    if args.run:
        cmd = [sys.executable, "-m", "helpers", "run", *shlex.split(args.run), "--out",
               str(run_dir)]
        subprocess.run(cmd, cwd=ROOT, check=True)
    record = read(run_dir / "run.json")
    from helpers.models import training

    training.setup(0)
    header(f"budget of {run_dir}")
    print(f"# run: profile {record.get('profile')}, code {record.get('git')}, on "
          f"{record.get('hardware', {}).get('cpu')}; every figure in wall seconds")
    rows = {stem: split(run_dir, stem, e) for stem, e in record["notebooks"].items()
            if e.get("status") == "completed"}
    print(f"\n{'notebook':16s} {'wall':>7s} " + " ".join(f"{c:>14s}" for c in COLUMNS))
    total = dict.fromkeys(["wall", *COLUMNS], 0.0)
    for stem, row in rows.items():
        print(f"{stem:16s} {row['wall']:7.1f} " + " ".join(f"{row[c]:14.1f}" for c in COLUMNS)
              + ("" if row["source"] == "kernel" else f"  ({row['source']})"))
        for k in total:
            total[k] += row[k]
    print(f"{'total':16s} {total['wall']:7.1f} " + " ".join(f"{total[c]:14.1f}" for c in COLUMNS))
    print("# start-up: kernel start, imports, parameters, data loading (the run minus its "
          "training and figure cells); build+other: the training cells' time outside fit's "
          "steps, validation and evaluation (building, resets, compiling, Python)")

    found = kinds(run_dir, record)
    if args.no_steady or not found:
        return
    rates: dict = {}
    print(f"\n{'kind of run':24s} {'runs':>5s} {'images':>9s} {'wall s':>8s} {'images/s':>9s} "
          f"{'steady images/s':>16s} {'ratio':>6s} {'steps share':>12s}")
    for kind in found:
        ideal = 0.0
        for arch, n in kind["images"].items():
            if arch not in rates:
                rates[arch] = steady_rate(arch, args.steps, args.repeats)
            ideal += n / rates[arch]
        images = sum(kind["images"].values())
        steady = images / ideal
        rate = images / kind["wall"] if kind["wall"] else float("nan")
        share = f"{kind['steps'] / kind['wall']:12.0%}" if kind.get("steps") else f"{'-':>12s}"
        print(f"{kind['kind']:24s} {kind['runs']:5d} {images:9,d} {kind['wall']:8.1f} "
              f"{rate:9.0f} {steady:16.0f} {rate / steady:6.0%} {share}", flush=True)
    for arch, rate in rates.items():
        print(f"#   steady {' '.join(map(str, arch))}: {rate:.0f} images/s")
    print(f"# steady: median of {args.repeats} epochs x {args.steps} batches after a warm-up, "
          "random images, measured now on this machine, per architecture (a grid's is the "
          "harmonic mean its images weight); images/s: images trained / the training cell's wall; "
          "steps share: the share of that wall spent in training steps (both under the run's "
          "own load, so comparable between runs on a busy machine)")


if __name__ == "__main__":
    main()
