"""The runner's status line without -v (helpers.run.terminal): read from what the kernel
prints, naming the loop with its estimate of the time left and the epoch; never silent."""

from __future__ import annotations

import io
import time

from helpers.run.terminal import Progress


def test_the_line_names_the_loop_its_time_left_and_the_epoch():
    p = Progress("02_resnet")
    p.stderr.write("02 seeds:   0%|          | 0/2 [00:00<?, ?it/s]\r")
    assert p.line(5) == "  02_resnet 0:00:05: 02 seeds 0/2"
    p.stdout.write("epoch 3/20  loss 2.1000  accuracy 0.2000  lr 1.00e-03  900 img/s  4.0s\n")
    p.stderr.write("\r02 seeds:  50%|#####     | 1/2 [01:10<01:02, 70.1s/it]")
    assert p.line(75) == "  02_resnet 0:01:15: 02 seeds 1/2, about 01:02 left in it; epoch 3/20"
    p.stderr.write("grid:  25%|##5       | 2/8 [00:20<01:00, 10.0s/trial, last a=1]\n")
    assert p.line(80).endswith("grid 2/8, about 01:00 left in it")  # a new loop: no old epoch


def test_the_terminal_is_never_silent_for_longer_than_every():
    out = io.StringIO()
    with Progress("03_hyperparams", every=0.4, least=0.1, out=out):
        time.sleep(1.1)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("  03_hyperparams 0:00:0") for line in lines)
