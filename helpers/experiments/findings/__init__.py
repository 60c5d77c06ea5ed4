"""The study's claims tested in every run: claims, stats (intervals), verdicts (findings.json's
rows), files (results/findings.json) and words (sentences, tables). See docs/findings.md."""

from helpers.experiments.findings.claims import (  # noqa: F401
    CLAIMS,
    STUDY_RESNET,
    STUDY_TRANSFER,
    claim_of,
    data_facts,
    sub_claim,
)
from helpers.experiments.findings.files import check, collect, load, save  # noqa: F401
from helpers.experiments.findings.stats import (  # noqa: F401
    Estimate,
    Grid,
    best_cell,
    diverged,
    either,
    mean_of_runs,
    paired,
    spread_lead,
    welch,
)
from helpers.experiments.findings.verdicts import (  # noqa: F401
    DECISIVE,
    UNNAMED,
    VERDICTS,
    Regime,
    fact,
    family,
    finding,
    holm,
    n_needed,
    the_studys_way,
)
from helpers.experiments.findings.words import (  # noqa: F401
    COLOURS,
    compact_html,
    conclusion,
    definitions_markdown,
    family_wise,
    interval_text,
    prediction_text,
    sentence,
    summary,
    table_html,
)
