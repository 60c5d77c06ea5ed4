"""A profile's projected CPU time from this machine's steady rates: every notebook's training
image-steps over its models' training rates, plus its validation and test images over their
inference rates, for the profile's own subsets, epochs, grids and seeds (no early stop, so an
upper bound). Tracing and start-up are left out: at the full profile's size they are seconds
against hours.

    python benchmarks/projection.py                       # the full profile, CINIC-10's sizes
    python benchmarks/projection.py --profile gpu --steps 20

Rates: training as model_throughput.py measures them (random images, median of --repeats epochs
of --steps batches after a warm-up epoch), inference likewise with predict at batch 512. Prints
hardware and versions; run it on the machine the projection is for.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import ROOT, header

PER_SPLIT_CLASS = 9000  # CINIC-10: 9,000 images per class and split (0 = all in a profile)


def images(per_class: int) -> int:
    return 10 * (per_class or PER_SPLIT_CLASS)


def build(arch: tuple):
    """A compiled model of arch: ("resnet", blocks, kernel) | ("cnn",) | (base, "frozen"|...)."""
    from helpers.experiments import trialstore
    from helpers.models import nets, pretrained, training

    if arch[0] == "resnet":
        return training.compile_model(nets.create_resnet_model(arch[1], arch[2]))
    if arch[0] == "cnn":
        return training.compile_model(nets.create_simple_cnn())
    choice = pretrained.build_base(arch[0], 32, "none")
    model = trialstore.from_notebook(ROOT / "notebooks" / "05_transfer.ipynb", "build_model",
                                     base_model=arch[0])(choice.model)  # 05's own model
    choice.model.trainable = arch[1] == "unfrozen"
    return training.compile_model(model)


def rates(arch: tuple, batch: int, steps: int, repeats: int) -> tuple[float, float]:
    """(training, inference) images/s of arch's model on this machine."""
    import keras
    import numpy as np

    keras.backend.clear_session()
    model = build(arch)
    x = np.random.default_rng(0).random((batch * steps, 32, 32, 3), dtype=np.float32)
    y = np.zeros(len(x), np.int64)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    model.predict(x, batch_size=512, verbose=0)
    train, infer = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        train.append(len(x) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        model.predict(x, batch_size=512, verbose=0)
        infer.append(len(x) / (time.perf_counter() - t0))
    return statistics.median(train), statistics.median(infer)


def work(params: dict[str, dict]) -> list[tuple[str, tuple, int, int]]:
    """(notebook, architecture, training image-steps, inference images) of the profile."""
    out = []
    p = params.get("02_resnet")
    if p:
        arch = ("resnet", p["n_blocks"], p["kernel_size"])
        n, v, t = images(p["train_per_class"]), images(p["valid_per_class"]), images(
            p["test_per_class"])
        out.append(("02_resnet", arch, p["repeats"] * p["epochs"] * n,
                    p["repeats"] * (p["epochs"] * v + t)))
    p = params.get("03_hyperparams")
    if p:
        n, v = images(p["train_per_class"]), images(p["valid_per_class"])
        runs = p["repeats"] * p["epochs"]
        for b in p["n_blocks_grid"]:
            for k in p["kernel_size_grid"]:
                out.append(("03_hyperparams", ("resnet", b, k), runs * n, runs * v))
        reg = len(p["alpha_grid"]) * len(p["lam_grid"]) * len(p["dropout_grid"])
        out.append(("03_hyperparams", ("resnet", p["reg_n_blocks"], p["reg_kernel_size"]),
                    reg * runs * n, reg * runs * v))
    p = params.get("04_augmentation")
    if p:
        n, v, t = images(p["train_per_class"]), images(p["valid_per_class"]), images(
            p["test_per_class"])
        arms = 5  # 04's augmentations dict: the study's five (a notebook cell, not a parameter)
        steps = p["repeats"] * p["epochs"] * (n + arms * 2 * n)  # the baseline, then doubled sets
        evals = p["repeats"] * (arms + 1) * (p["epochs"] * v + t + 2 * n + v)
        out.append(("04_augmentation", ("cnn",), steps, evals))
    p = params.get("05_transfer")
    if p:
        n, v, t = images(p["train_per_class"]), images(p["valid_per_class"]), images(
            p["test_per_class"])
        # after stage 1: valid and test accuracy; after stage 2: test accuracy
        for stage, epochs, after in (("frozen", p["head_epochs"], v + t),
                                     ("unfrozen", p["finetune_epochs"], t)):
            out.append(("05_transfer", (p["base_model"], stage), p["repeats"] * epochs * n,
                        p["repeats"] * (epochs * v + after)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="full")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import logging

    from helpers.models import training
    from helpers.run.profiles import plan_sources

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # each model's predict traces anew
    training.setup(0)
    header(f"projected CPU time of the {args.profile} profile")
    _, steps, _ = plan_sources(args.profile, dataset="synthetic", out="/tmp/projection-unused",
                               only=None, overrides=())
    params = {nb.stem: p for nb, p in steps}
    rows, measured = work(params), {}
    print(f"{'notebook':16s} {'model':22s} {'train images':>13s} {'images/s':>9s} "
          f"{'infer images':>13s} {'images/s':>9s} {'hours':>6s}")
    total: dict[str, float] = {}
    for stem, arch, train, infer in rows:
        batch = params[stem].get("batch_size", 32)
        if arch not in measured:
            measured[arch] = rates(arch, batch, args.steps, args.repeats)
        r_train, r_infer = measured[arch]
        hours = (train / r_train + infer / r_infer) / 3600
        total[stem] = total.get(stem, 0.0) + hours
        print(f"{stem:16s} {' '.join(map(str, arch)):22s} {train:13,d} {r_train:9.0f} "
              f"{infer:13,d} {r_infer:9.0f} {hours:6.1f}", flush=True)
    print("\n" + ", ".join(f"{k} {v:.1f} h" for k, v in total.items())
          + f"; all {sum(total.values()):.1f} h (no early stop: an upper bound)")


if __name__ == "__main__":
    main()
