"""The study's claims tested in every run: claims, stats (intervals), verdicts (findings.json's
rows), files (results/findings.json) and words (sentences, tables). See docs/findings.md."""

from helpers.experiments.findings.claims import *  # noqa: F403
from helpers.experiments.findings.files import *  # noqa: F403
from helpers.experiments.findings.stats import *  # noqa: F403
from helpers.experiments.findings.verdicts import *  # noqa: F403
from helpers.experiments.findings.words import *  # noqa: F403
