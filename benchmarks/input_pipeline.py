"""Input pipeline: images/s delivered by the project's cached tf.data input vs the study's
`image_dataset_from_directory(batch_size=32)` + rescaling, on the same real images
(cifar10-jpeg's 45,000 training images), side by side, with the ResNet's training rate.

    python benchmarks/input_pipeline.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from common import CIFAR10_JPEG, extracted, header, median


def epoch_rate(ds) -> tuple[float, int]:
    """Images/s of one pass over ds (batches are materialised, as training would)."""
    n, t0 = 0, time.perf_counter()
    for x, _ in ds:
        n += int(x.shape[0])
    return n / (time.perf_counter() - t0), n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import keras
    import tensorflow as tf

    from helpers import data
    from helpers.data.pipeline import make_input, set_threads
    from helpers.models import nets, training

    set_threads()
    header(f"input pipeline: images/s, median of {args.repeats} epochs")
    ds = data.load_dataset(str(CIFAR10_JPEG), say=lambda *_: None)
    folder = extracted(CIFAR10_JPEG) / "cifar10-jpeg" / "train"
    train = ds["train"]
    ours = make_input(train, 32, seed=0)
    study = keras.utils.image_dataset_from_directory(
        folder,
        batch_size=32,
        image_size=(32, 32),
        label_mode="int",
        shuffle=True,
        seed=0,
        verbose=False,
    ).map(lambda x, y: (x / 255.0, y))
    rows = {}
    for name, pipe in (
        ("project: cache + tf.data", ours),
        ("study: image_dataset_from_directory", study),
    ):
        epoch_rate(pipe.take(20))  # warm up
        rates = [epoch_rate(pipe)[0] for _ in range(args.repeats)]
        rows[name] = median(rates)
    training.setup(0)
    model = training.compile_model(nets.create_resnet_model())
    sub = data.stratified_subset(train, 160, seed=0)
    x = tf.constant(sub.x, tf.float32) / 255.0
    model.fit(x[:320], sub.y[:320], batch_size=32, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(x, sub.y, batch_size=32, epochs=1, verbose=0)
    train_rate = len(sub) / (time.perf_counter() - t0)
    print(f"{'pipeline':40s} {'images/s':>10s} {'x ResNet training rate':>24s}")
    for name, rate in rows.items():
        print(f"{name:40s} {rate:10.0f} {rate / train_rate:24.1f}")
    names = list(rows)
    print(
        f"ratio project/study: {rows[names[0]] / rows[names[1]]:.1f}x; ResNet (3 blocks, batch 32) "
        f"trains at {train_rate:.0f} images/s"
    )


if __name__ == "__main__":
    main()
