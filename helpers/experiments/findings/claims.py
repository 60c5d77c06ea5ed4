"""The study's claims as data: its words (*DL Project 1 report*), the quantity testing each, its
direction, the smallest effect of interest Δ (docs/findings.md: when and why) and its size."""

from __future__ import annotations

from dataclasses import dataclass

from helpers.data.sources import CINIC10_PER_SPLIT_CLASS, SPLITS

__all__ = ["CLAIMS", "STUDY_RESNET", "STUDY_TRANSFER", "claim_of", "data_facts", "sub_claim"]

STUDY_RESNET, STUDY_TRANSFER = 0.6916222, 0.7248  # the study's two test accuracies (one run each)
DELTA_DIFFERENCE, DELTA_ABSOLUTE = 0.01, 0.02
SMALL = 0.03  # the project's reading of "a little" and "slightly": an effect of at most 3 points


@dataclass(frozen=True)
class Size:
    """The size the study states, positive its way: a number (low == high) or words (a range)."""

    low: float
    high: float
    words: str


@dataclass(frozen=True)
class Claim:
    """One finding of the study and the quantity that tests it. direction: '+' / '-' (above /
    below zero), 'abs' (an absolute number: size.low) or 'fact' (a count, exact or not); delta:
    the smallest effect of interest, around zero or the study's number (abs, and C9)."""

    id: str
    notebook: str
    claim: str  # short, for tables
    quote: str  # the study's own words
    where: str  # where in the study
    study: str  # the study's value or direction, short
    quantity: str
    direction: str
    delta: float = DELTA_DIFFERENCE
    size: Size | None = None

    @property
    def sign(self) -> int:  # -1 when the study's way is down
        return -1 if self.direction == "-" else 1

    @property
    def target(self) -> float | None:
        """The study's number, where it states one (absolute claims, C9)."""
        return self.size.low if self.size is not None and self.size.low == self.size.high else None


CLAIMS = {c.id: c for c in [
    Claim("C0", "01_data", "three splits of 90,000 images in 10 classes",
          "The data consists of three sets, training, validation, and test, each of which "
          "contains 90000 32 by 32-pixel images", "§1", "3 × 90,000, 10 classes",
          "images per split and number of classes", "fact", 0.0),
    Claim("C1", "02_resnet", "the ResNet reaches 69.16% test accuracy",
          "This network was also able to achieve an accuracy of 0.6916222 on the testing "
          "data", "§2", "0.6916 (one run, 20 epochs)", "ResNet test accuracy", "abs",
          DELTA_ABSOLUTE, Size(STUDY_RESNET, STUDY_RESNET, "0.6916")),
    Claim("C2", "03_hyperparams", "one or three residual blocks are best",
          "either one or three residual blocks are the optimal value", "§3.1, Fig. 4",
          "1 or 3 blocks beat 5", "the larger of (1 blocks − 5 blocks) and (3 blocks − 5 "
          "blocks), marginal means of validation accuracy", "+"),
    Claim("C3", "03_hyperparams", "larger kernels give higher accuracy",
          "we see that larger filter, or kernel, sizes result in higher accuracy",
          "§3.1, Fig. 5", "increasing in kernel size", "linear trend of validation accuracy "
          "over the kernel sizes (fitted change from the smallest to the largest)", "+"),
    Claim("C4", "03_hyperparams", "few blocks with large kernels are best",
          "a combination of a lower number of residual blocks, along with higher kernel sizes "
          "results in the best results", "§3.1, Fig. 6", "best cell in {1, 3} blocks × kernel "
          "{4, 5}", "best cell mean in {1, 3} blocks × kernel {4, 5} minus the best cell "
          "elsewhere", "+"),
    Claim("C5", "03_hyperparams", "dropout moves accuracy most of the three regularisers",
          "The biggest impact on accuracy is observed with the change in the dropout rate",
          "§3.2, Fig. 7", "dropout matters most",
          "dropout's spread of marginal means minus the largest other spread (α, λ)", "+"),
    Claim("C6", "03_hyperparams", "accuracy decreases slightly as λ grows",
          "accuracy also slightly decreases with larger lambda values", "§3.2, Fig. 7",
          "slight decrease", "linear trend of validation accuracy over log10 λ (fitted change "
          "from the smallest to the largest λ)", "-",
          size=Size(0.0, SMALL, "slightly (at most 3 points)")),
    Claim("C7", "04_augmentation", "augmentation decreases overfitting",
          "As expected, augmentation decreased overfitting", "§4, Fig. 10", "gap decreases",
          "train − validation gap, augmented minus baseline (mean of the augmentations), "
          "same seed", "-"),
    Claim("C8", "04_augmentation", "augmentation improves accuracy a little",
          "and gave a little improvement in the accuracy", "§4", "a little better",
          "test accuracy, augmented minus baseline (mean of the augmentations), same seed",
          "+", size=Size(0.0, SMALL, "a little (at most 3 points)")),
    Claim("C9", "05_transfer", "fine-tuning adds 15 points after its first epoch",
          "After just the first epoch, we experienced a 15 percentage point increase",
          "§5.2, Fig. 12", "+0.15 (one run)", "validation accuracy after the first unfrozen "
          "epoch minus after the frozen stage's last epoch (the study does not say whether "
          "its 15 points are training or validation accuracy)", "+", 0.05,
          Size(0.15, 0.15, "+0.15")),
    Claim("C10", "05_transfer", "transfer learning is the study's best model",
          "72.48% accuracy which is the best result we have achieved throughout this project",
          "§5.2", "05 > 02", "test accuracy of 05 minus 02, on the same test images", "+"),
    Claim("C11", "05_transfer", "fine-tuned VGG19 reaches 72.48% test accuracy",
          "For the final test we used our model on the test set and got 72.48% accuracy",
          "§5.2", "0.7248 (one run)", "transfer model test accuracy", "abs",
          DELTA_ABSOLUTE, Size(STUDY_TRANSFER, STUDY_TRANSFER, "0.7248")),
    Claim("C12", "05_transfer", "fine-tuning improves test accuracy",
          "We can see a significant improvement in the accuracy", "§5.2, Fig. 12",
          "fine-tuned > frozen",
          "test accuracy after fine-tuning minus after the frozen stage, same seed", "+"),
]}


def sub_claim(claim_id: str, part: str, quantity: str | None = None,
              label: str | None = None) -> Claim:
    """The claim for one arm or read another way, e.g. 'C7.flip'."""
    c = CLAIMS[claim_id]
    quantity = quantity or c.quantity.replace("augmented", part).replace(
        " (mean of the augmentations)", "")
    return Claim(f"{c.id}.{part}", c.notebook, f"{c.claim} — {label or part}", c.quote,
                 c.where, c.study, quantity, c.direction, c.delta, c.size)


def claim_of(claim_id: str) -> Claim:
    """The registered claim for an id, sub-claims ('C7.flip') by their parent."""
    return CLAIMS[claim_id.split(".")[0]]


def data_facts(ds) -> tuple[str, bool]:
    """C0 on the dataset as loaded (01): what was counted and whether it is the study's."""
    per_split = {s: len(ds[s]) for s in SPLITS}
    observed = ", ".join(f"{s} {n:,}" for s, n in per_split.items())
    return (f"{observed}; {len(ds.classes)} classes", len(ds.classes) == 10
            and all(n == 10 * CINIC10_PER_SPLIT_CLASS for n in per_split.values()))
