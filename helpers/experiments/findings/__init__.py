"""The study's claims tested in every run: claims (the study's words, the quantity, Δ, the
size it states), stats (intervals from seeds and factorial grids, prediction intervals),
verdicts (direction, size, no effect, and the runs that would decide), rows (findings.json's
rows), files (each notebook's part, merged into results/findings.json) and words (sentences,
the report's table, the summary with its family-wise error). See docs/findings.md."""

from helpers.experiments.findings.claims import (  # noqa: F401
    CLAIMS,
    STUDY_RESNET,
    STUDY_TRANSFER,
    Claim,
    Size,
    claim_of,
    sub_claim,
)
from helpers.experiments.findings.files import check, collect, load, merge, save  # noqa: F401
from helpers.experiments.findings.rows import fact, family, finding, holm  # noqa: F401
from helpers.experiments.findings.stats import (  # noqa: F401
    LEVEL,
    Estimate,
    Grid,
    best_cell,
    intersection_union,
    mean_of_runs,
    paired,
    residual_bootstrap,
    welch,
)
from helpers.experiments.findings.verdicts import (  # noqa: F401
    DECISIVE,
    DEFINITIONS,
    UNNAMED,
    VERDICTS,
    Regime,
    evidence,
    n_needed,
    verdict_of,
)
from helpers.experiments.findings.words import (  # noqa: F401
    COLOURS,
    conclusion,
    definitions_markdown,
    family_wise,
    interval_text,
    prediction_text,
    sentence,
    summary,
    table_html,
)
