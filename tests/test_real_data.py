"""On real images (CIFAR-10 as JPEGs, ../shared): the study's ResNet learns, and a broken
pipeline cannot pass the same bar."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CIFAR10_JPEG, needs_shared, notebook_code

from helpers import data
from helpers.models import evaluation, nets, training

pytestmark = [pytest.mark.slow, needs_shared, pytest.mark.xdist_group("cifar")]

THRESHOLD = 0.30  # chance is 0.10; 3 epochs on 3,000 images reach ~0.40-0.45 on 2 cores


def test_the_real_cifar10_has_its_three_splits(cifar):
    assert {k: len(v) for k, v in cifar.splits.items()} == {
        "train": 45000,
        "valid": 5000,
        "test": 10000,
    }


def _train_and_test(ds, shuffle_labels: bool) -> float:
    training.setup(0)
    train = data.stratified_subset(ds["train"], 300, seed=0)
    if shuffle_labels:
        train.y[:] = np.random.default_rng(1).permutation(train.y)
    valid = data.stratified_subset(ds["valid"], 50, seed=0)
    test = data.stratified_subset(ds["test"], 200, seed=0)
    model = training.compile_model(nets.create_resnet_model())
    training.fit(model, train, valid, epochs=3, seed=0)
    return evaluation.evaluate(model, test, ds.classes)["test_accuracy"]


def test_resnet_learns_real_images(cifar):
    assert _train_and_test(cifar, shuffle_labels=False) > THRESHOLD


def test_shuffled_labels_cannot_pass_the_same_bar(cifar):
    assert _train_and_test(cifar, shuffle_labels=True) < THRESHOLD - 0.1


def test_a_large_true_effect_comes_out_supported(cifar, tmp_path):
    """C2's direction at a small budget on real images: 1 residual block against 5, through 03's
    own trial function. Five blocks cannot learn in two short epochs what one does, so the
    paired interval lies above zero; the same trials with the arms swapped lie below it: the
    verdict follows the data, not the claim. (Asserted on the interval, whatever the verdict's
    word.)

    The budget is set so the effect is not marginal on either CPU this VM kind comes with. With
    the study's 32 base filters, 100 images per class and three seeds it was: [0.029, 0.228] on
    the AMD EPYC, [-0.006, 0.242] on the Intel Xeon (the five blocks' seed scatter is large).
    Measured on the 2-core AMD EPYC, 8 seeds each, 2 epochs (differences' mean and sd): 32
    filters, 100/class 0.100 +- 0.048, 200/class 0.091 +- 0.036; 16 filters, 200/class 0.135
    +- 0.033, at about half the time per trial. Here (16 filters, 200 per class, 100 validation
    images per class, five seeds) the interval was [0.102, 0.190], and its lower bound stays >=
    0.076 for every five of the eight seeds measured."""
    from helpers.experiments import findings, trialstore

    settings = {"fingerprint": cifar.fingerprint, "train_per_class": 200, "valid_per_class": 100,
                "subset_seed": 0}
    resnet_trial = notebook_code("03_hyperparams", "resnet_trial", epochs=2, batch_size=32,
                                 learning_rate=1e-3, patience=4, bn_momentum=0.9)
    grid = trialstore.expand_grid(n_blocks=[1, 5], kernel_size=[3], dropout=[0.2],
                                  base_filters=[16])
    trials = trialstore.make_trials("resnet", grid, settings, repeats=5, seed=0)
    table = trialstore.run_trials(trials, resnet_trial,
                                   {"settings": settings, "dataset": str(CIFAR10_JPEG)}, run_dir=tmp_path)
    wide = table.pivot(index="seed", columns="n_blocks", values="best_val_accuracy")
    row = findings.finding("C2", findings.paired(wide[1], wide[5]), findings.UNNAMED)
    assert row["n"] == 5 and row["ci_low"] > 0, (row, wide)  # wholly on the study's side
    swapped = findings.finding("C2", findings.paired(wide[5], wide[1]), findings.UNNAMED)
    assert swapped["ci_high"] < 0, (swapped, wide)  # wholly on the other side
    print(f"C2 direction: {row['estimate']:+.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}], "
          f"n = {row['n']}")
