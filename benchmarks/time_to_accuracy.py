"""Time to accuracy: wall time for 02's ResNet to reach a fixed validation accuracy on a fixed
stratified cifar10-jpeg subset, with the project's pipeline and settings vs the study's
(`image_dataset_from_directory(batch_size=32)` + rescaling, decoding JPEGs every epoch), same
machine, same run, several seeds.

    python benchmarks/time_to_accuracy.py [--target 0.45] [--seeds 0 1] [--project-batch 128]
    python benchmarks/time_to_accuracy.py --backend jax     # the project's side on JAX
    python benchmarks/time_to_accuracy.py --sides project arrays   # tf.data vs the PyDataset

Sides: study (JPEG files through tf.data, TensorFlow only), project (the cache through
make_input: tf.data on TensorFlow, the PyDataset elsewhere), arrays (the cache through
pipeline.ArrayBatches, the no-tf.data input, on any backend).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import CIFAR10_JPEG, add_backend_argument, backend_option, extracted, header, median

BACKEND = backend_option()  # --backend, before Keras is imported


def _subset_folder(split, classes, src_root: Path, dest: Path) -> Path:
    """Copy the subset's JPEG files into dest/<class>/ for image_dataset_from_directory."""
    for name, y in zip(split.names, split.y):
        (dest / classes[y]).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / classes[y] / name, dest / classes[y] / name)
    return dest


def _run(model, train_ds, valid_ds, epochs, target):
    """(seconds to reach target or None, final val accuracy, seconds total) of one training."""
    import keras

    seen = {}

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if "hit" not in seen and logs["val_accuracy"] >= target:
                seen["hit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    hist = model.fit(
        train_ds,
        validation_data=valid_ds,
        epochs=epochs,
        verbose=0,
        callbacks=[
            Clock(),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=3, restore_best_weights=True
            ),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2),
        ],
    )
    return seen.get("hit"), max(hist.history["val_accuracy"]), time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=float, default=0.45)
    p.add_argument("--per-class", type=int, default=500)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--project-batch", type=int, default=32)
    p.add_argument("--project-lr", type=float, default=1e-3)
    p.add_argument(
        "--sides",
        nargs="+",
        choices=("study", "project", "arrays"),
        help="what to time (default: study and project on tensorflow, project elsewhere)",
    )
    add_backend_argument(p)
    args = p.parse_args()
    sides = args.sides or (["study", "project"] if BACKEND == "tensorflow" else ["project"])
    if "study" in sides and BACKEND != "tensorflow":
        raise SystemExit("--sides study: the study's input is tf.data (TensorFlow backend only)")
    import keras

    from helpers import data
    from helpers.data.pipeline import ArrayBatches, make_input
    from helpers.models import nets, training

    header(
        f"time to {args.target:.2f} validation accuracy, ResNet b3 k3, "
        f"{args.per_class}/class of cifar10-jpeg"
    )
    ds = data.load_dataset(str(CIFAR10_JPEG), say=lambda *_: None)
    train = data.stratified_subset(ds["train"], args.per_class, seed=0)
    valid = data.stratified_subset(ds["valid"], args.per_class // 5, seed=0)
    src = extracted(CIFAR10_JPEG) / "cifar10-jpeg" / "train"  # carved valid lives in train/
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tr_dir = _subset_folder(train, ds.classes, src, Path(tmp) / "train")
        va_dir = _subset_folder(valid, ds.classes, src, Path(tmp) / "valid")
        for seed in args.seeds:
            if "study" not in sides:
                break
            # the study: decode JPEG files every epoch, batch 32, Adam 1e-3, Keras' batch norm
            training.setup(seed)
            load = dict(
                batch_size=32, image_size=(32, 32), label_mode="int", seed=seed, verbose=False
            )
            study_tr = keras.utils.image_dataset_from_directory(tr_dir, shuffle=True, **load)
            study_va = keras.utils.image_dataset_from_directory(va_dir, shuffle=False, **load)
            scale = lambda x, y: (x / 255.0, y)  # noqa: E731
            study_model = nets.create_resnet_model(bn_momentum=0.99)  # Keras' default
            m = training.compile_model(study_model, 1e-3)
            rows.append(
                (
                    "study",
                    seed,
                    *_run(m, study_tr.map(scale), study_va.map(scale), args.epochs, args.target),
                )
            )
    for seed in args.seeds:
        # the project: cached uint8 input, large evaluation batches, batch norm momentum 0.9,
        # same optimiser settings; "arrays": the same through the PyDataset input
        for side, feed in (("project", make_input), ("arrays", ArrayBatches)):
            if side not in sides:
                continue
            training.setup(seed)
            m = training.compile_model(nets.create_resnet_model(), args.project_lr)
            rows.append(
                (
                    side,
                    seed,
                    *_run(
                        m,
                        feed(train, args.project_batch, seed=seed),
                        feed(valid, 512, shuffle=False),
                        args.epochs,
                        args.target,
                    ),
                )
            )
    print(
        f"{'setup':8s} {'seed':>4s} {'to target (s)':>14s} {'best val acc':>13s} {'total (s)':>10s}"
    )
    for name, seed, hit, best, total in rows:
        print(
            f"{name:8s} {seed:4d} {hit if hit is None else round(hit, 1)!s:>14s} "
            f"{best:13.3f} {total:10.1f}"
        )
    hits = {n: [r[2] for r in rows if r[0] == n] for n in sides}
    if "study" not in sides or "project" not in sides:
        for n, h in hits.items():
            done = [x for x in h if x is not None]
            per = [r[4] for r in rows if r[0] == n]
            print(
                f"{n}: median time to target "
                + (f"{median(done):.1f} s" if len(done) == len(h) else "not reached by every seed")
                + f", median total {median(per):.1f} s for up to {args.epochs} epochs"
            )
    elif all(h is not None for v in hits.values() for h in v):
        ratio = median(hits["study"]) / median(hits["project"])
        print(
            f"median time to target: study {median(hits['study']):.1f} s, project "
            f"{median(hits['project']):.1f} s -> {ratio:.2f}x faster "
            f"(project batch {args.project_batch}, lr {args.project_lr})"
        )
    else:
        print("a run did not reach the target: lower --target or raise --epochs")


if __name__ == "__main__":
    main()
