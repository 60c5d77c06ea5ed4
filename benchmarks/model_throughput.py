"""Training images/s of each notebook's model on this machine (CPU or GPU, any Keras backend).

    python benchmarks/model_throughput.py                      # CPU, TensorFlow, study batch 32
    python benchmarks/model_throughput.py --backend jax --batch 32 256 --precision float32 mixed_float16
    python benchmarks/model_throughput.py --jit-compile false true   # XLA or not (TensorFlow)

Prints one row per (model, batch, precision, XLA): median images/s over --repeats timed epochs of
--steps batches of random 32x32x3 images (the models' cost does not depend on pixel values),
after a warm-up epoch that absorbs compilation. Also prints hardware and versions.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import add_backend_argument, backend_option, fit_rate  # noqa: E402

backend_option()  # --backend, before Keras is imported

import keras  # noqa: E402

from helpers.models import nets  # noqa: E402

MODELS = {
    "resnet_b3_k3 (02, 03 centre)": lambda: nets.create_resnet_model(3, 3),
    "resnet_b1_k5 (03 grid)": lambda: nets.create_resnet_model(1, 5),
    "resnet_b5_k5 (03 grid, largest)": lambda: nets.create_resnet_model(5, 5),
    "simple_cnn (04)": nets.create_simple_cnn,
    "vgg19 head+base (05, 32x32)": lambda: _vgg19(),
}


def _vgg19() -> keras.Model:
    base = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    x = keras.layers.Flatten()(base.output)
    for _ in range(3):
        x = keras.layers.Dense(512, activation="relu")(x)
    x = keras.layers.Dropout(0.4)(x)
    out = keras.layers.Dense(10, activation="softmax", dtype="float32")(x)
    return keras.Model(base.input, out)


def images_per_second(
    build, batch: int, steps: int, repeats: int, precision: str, jit_compile="auto"
) -> float:
    """Median training images/s of build() over repeats epochs of steps batches."""
    keras.mixed_precision.set_global_policy(precision)
    model = build()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return fit_rate(model, batch, steps, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[32])
    p.add_argument("--precision", nargs="+", default=["float32"])
    p.add_argument(
        "--jit-compile", nargs="+", default=["auto"], help="auto (Keras' choice), true, false"
    )
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", nargs="*", help="substrings of model names to run")
    add_backend_argument(p)
    args = p.parse_args()
    backend = keras.backend.backend()
    devices = "?"
    if backend == "jax":
        import jax

        devices = ", ".join(d.device_kind for d in jax.devices())
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        devices = ", ".join(g.name for g in gpus) or f"CPU ({os.cpu_count()} cores)"
    print(
        f"# {platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores"
        f" | keras {keras.__version__} backend {backend} on {devices} | python {platform.python_version()}"
    )
    print(f"# median of {args.repeats} epochs x {args.steps} steps after one warm-up epoch")
    print(f"{'model':34s} {'batch':>5s} {'precision':>14s} {'XLA':>5s} {'images/s':>10s}")
    for name, build in MODELS.items():
        if args.only and not any(o in name for o in args.only):
            continue
        for batch in args.batch:
            for precision in args.precision:
                for jit in args.jit_compile:
                    jit_compile = {"true": True, "false": False}.get(jit, jit)
                    rate = images_per_second(
                        build, batch, args.steps, args.repeats, precision, jit_compile
                    )
                    print(
                        f"{name:34s} {batch:5d} {precision:>14s} {jit:>5s} {rate:10.0f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
