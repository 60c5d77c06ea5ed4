"""Short trials: a fresh build per trial or a kept, reset model (helpers.models.reuse), and
whether one trainer on every core or one single-threaded trainer per core trains faster. The
trials are 03's: the regularisation grid's ResNet (b3k3 with Elastic Net) on cifar10-jpeg at the
quick profile's sizes, through trialstore.run_trials as the notebook runs them. (Trials in
worker processes, one per core, were measured with this script's modes processes-fresh and
processes-reuse at commit a0e0ac4 and dropped: see docs/speed.md.)

    python benchmarks/executors.py [--rounds 3] [--trials 6] [--modes local-fresh local-reuse ...]
    python benchmarks/executors.py --cores [--rounds 5]   # steady training only: 1 x 2 threads vs 2 x 1

Each measurement runs in its own process (a new kernel's situation: nothing traced, no worker
started), modes interleaved round by round (ABCD ABCD ...) so a machine's changing load falls
on all of them alike. Prints per mode the median wall seconds per trial and the effective
training images/s (images trained / run_trials' wall), with hardware and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import CIFAR10_JPEG, ROOT, header, median

MODES = {  # name: (executor, fresh builds, tf.data autotuning)
    "local-fresh": ("local", True, False),
    "local-reuse": ("local", False, False),
    "local-reuse-autotune": ("local", False, True),  # the input as it was before 2026-12-01
}
GRID = {"alpha": [0.2, 0.8], "lam": [0.01], "dropout": [0.1, 0.3, 0.5]}  # 6 configurations
SIZES = {"train_per_class": 60, "valid_per_class": 30, "epochs": 3, "batch_size": 32}  # quick's


def one(mode: str, trials: int, dataset: str) -> dict:
    """One measurement (in this process): run `trials` of 03's regularisation trials."""
    from helpers import data
    from helpers.experiments import trialstore
    from helpers.models import training

    executor = MODES[mode][0]
    setup = training.setup(0)
    ds = data.shared_dataset(dataset, say=lambda *_: None)
    settings = trialstore.settings(ds, 0, train_per_class=SIZES["train_per_class"],
                                   valid_per_class=SIZES["valid_per_class"])
    trial_fn = trialstore.from_notebook(ROOT / "notebooks" / "03_hyperparams.ipynb",
                                        "resnet_trial", epochs=SIZES["epochs"],
                                        batch_size=SIZES["batch_size"])  # else 03's defaults
    grid = trialstore.expand_grid(n_blocks=[3], kernel_size=[3], **GRID)
    chosen = trialstore.make_trials("resnet", grid, settings, repeats=2)[:trials]
    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        with training.quiet():
            table = trialstore.run_trials(chosen, trial_fn,
                                          {"settings": settings, "dataset": dataset}, run_dir=run_dir,
                                          executor=executor)
        wall = time.perf_counter() - t0
    images = int((table.n_train * table.epochs_run).sum())
    return {"mode": mode, "wall": wall, "trials": len(table), "images": images,
            "accuracy": [round(float(a), 5) for a in table.best_val_accuracy], **setup}


ARCHS = {"b3k3": lambda nets: nets.create_resnet_model(3, 3),
         "b1k2": lambda nets: nets.create_resnet_model(1, 2),
         "cnn": lambda nets: nets.create_simple_cnn()}


def steady(threads: int, seconds: float, arch: str = "b3k3") -> float:
    """Steady training images/s of a model (ARCHS: 03's b3k3 or b1k2 ResNet, 04's CNN) on random
    images with `threads` threads, timed over about `seconds` after a warm-up epoch."""
    import numpy as np

    from helpers.models import nets, training

    training.setup(0, threads=threads)
    model = training.compile_model(ARCHS[arch](nets))
    x = np.random.default_rng(0).random((32 * 20, 32, 32, 3), dtype=np.float32)
    y = np.zeros(len(x), np.int64)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    images, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
        images += len(x)
    return images / (time.perf_counter() - t0)


def cores(rounds: int, seconds: float, arch: str) -> None:
    """One trainer on every core vs one single-threaded trainer per core at once, interleaved."""
    cpus = len(os.sched_getaffinity(0))
    print(f"# steady training of {arch} (batch 32, random images), about {seconds:.0f} s "
          f"timed per trainer after a warm-up; {rounds} rounds, interleaved")
    results: dict[str, list[float]] = {"1 x all threads": [], f"{cpus} x 1 thread": []}
    for r in range(rounds):
        for name, (n, threads) in zip(results, ((1, cpus), (cpus, 1))):
            procs = [subprocess.Popen(
                [sys.executable, __file__, "--steady-one", str(threads), str(seconds), arch],
                cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                for _ in range(n)]
            rate = sum(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)
            results[name].append(rate)
            print(f"round {r + 1} {name:18s} {rate:6.0f} images/s (sum)", flush=True)
    for name, rates in results.items():
        print(f"{name:18s} median {median(rates):6.0f} images/s over {len(rates)} rounds")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--modes", nargs="+", default=["local-fresh", "local-reuse"], choices=list(MODES))
    p.add_argument("--dataset", default=str(CIFAR10_JPEG))
    p.add_argument("--cores", action="store_true", help="steady training, 1 x 2 vs 2 x 1")
    p.add_argument("--seconds", type=float, default=20.0, help="--cores: timed per trainer")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: a single measurement
    p.add_argument("--arch", nargs="+", default=["b3k3"], choices=list(ARCHS), help="--cores")
    p.add_argument("--steady-one", nargs=3, help=argparse.SUPPRESS)  # threads, seconds, arch
    args = p.parse_args()
    if args.steady_one:
        print(steady(int(args.steady_one[0]), float(args.steady_one[1]), args.steady_one[2]))
        return
    if args.cores:
        header("one trainer on every core vs one single-threaded trainer per core")
        for arch in args.arch:
            cores(args.rounds, args.seconds, arch)
        return
    if args.one:
        print(json.dumps(one(args.one, args.trials, args.dataset)))
        return
    header("short trials: " + " vs ".join(args.modes))
    print(f"# {args.trials} of 03's regularisation trials (b3k3, Elastic Net; "
          f"{SIZES['train_per_class'] * 10} images x {SIZES['epochs']} epochs) per measurement, "
          f"{args.rounds} rounds, modes interleaved")
    runs: dict[str, list[dict]] = {m: [] for m in args.modes}
    for r in range(args.rounds):
        for mode in args.modes:
            _, fresh, autotune = MODES[mode]
            env = {**os.environ, "CINIC10_FRESH_BUILDS": "1" if fresh else "0",
                   "CINIC10_TF_AUTOTUNE": "1" if autotune else "0"}
            out = subprocess.run(
                [sys.executable, __file__, "--one", mode, "--trials", str(args.trials),
                 "--dataset", args.dataset], cwd=ROOT, env=env, text=True,
                capture_output=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            runs[mode].append(res)
            print(f"round {r + 1} {mode:20s} {res['wall']:6.1f} s  "
                  f"{res['images'] / res['wall']:5.0f} images/s", flush=True)
    print(f"\n{'mode':20s} {'runs':>4s} {'s/trial':>8s} {'images/s':>9s}  accuracies (round 1)")
    for mode, rs in runs.items():
        per_trial = median([r["wall"] / r["trials"] for r in rs])
        rate = median([r["images"] / r["wall"] for r in rs])
        print(f"{mode:20s} {len(rs):4d} {per_trial:8.2f} {rate:9.0f}  {rs[0]['accuracy']}")


if __name__ == "__main__":
    main()
