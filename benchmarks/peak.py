"""Distance to the limit: achieved training GFLOP/s of 02's ResNet vs this machine's measured
peak (a large float32 matmul in the same TensorFlow).

    python benchmarks/peak.py [--batch 32 128]
"""

from __future__ import annotations

import argparse
import time

from common import header, median


def model_flops(model, batch: int) -> float:
    """Training FLOPs of one batch, counted from the graph (forward x 3 for backward)."""
    import tensorflow as tf
    from tensorflow.python.profiler.model_analyzer import profile
    from tensorflow.python.profiler.option_builder import ProfileOptionBuilder

    fn = tf.function(lambda x: model(x, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec((batch, 32, 32, 3), tf.float32)).graph
    opts = ProfileOptionBuilder(ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return 3.0 * profile(graph, options=opts).total_float_ops


def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of an n x n float32 matmul, median of repeats."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    (a @ b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        (a @ b).numpy()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / median(times) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    import numpy as np

    from helpers.models import nets, training

    training.setup(0)
    header("distance to the limit")
    peak = matmul_peak()
    print(f"peak: 4096x4096 float32 matmul {peak:.1f} GFLOP/s")
    for batch in args.batch:
        model = training.compile_model(nets.create_resnet_model())
        flops = model_flops(model, batch)
        x = np.random.default_rng(0).random((batch * args.steps, 32, 32, 3), dtype=np.float32)
        y = np.zeros(len(x), np.int64)
        model.fit(x[: batch * 3], y[: batch * 3], batch_size=batch, epochs=1, verbose=0)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        secs = time.perf_counter() - t0
        achieved = flops * args.steps / secs / 1e9
        print(
            f"ResNet b3 k3, batch {batch:4d}: {len(x) / secs:6.0f} images/s, "
            f"{flops / batch / 1e6:.0f} MFLOP/image (train), {achieved:6.1f} GFLOP/s = "
            f"{100 * achieved / peak:.0f}% of peak"
        )


if __name__ == "__main__":
    main()
