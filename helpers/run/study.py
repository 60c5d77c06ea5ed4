"""Where each effective value of a run comes from: study, project, profile, -p or run, read
against the table of the settings *DL Project 1 report* states (experiments/protocol.py). The
dry-run (`python -m helpers run --dry-run`), run.json and the report's run table all read their
origins from here."""

from __future__ import annotations

from helpers.experiments.protocol import STUDY, STUDY_COMMON, same, study_settings  # noqa: F401

# Where and on what a run goes (--out, --profile, --dataset): not a setting of the science.
RUN_KEYS = ("run_dir", "profile", "dataset")


def origin(stem: str, name: str, value, source: str = "profile") -> str:
    """Where a value comes from: '-p' (source '-p'), 'run' (RUN_KEYS), 'study' (the study's own
    value), 'profile' (a setting the study states, changed here: quick's subsets, gpu's batch)
    or 'project' (a setting the study does not state)."""
    if source == "-p":
        return "-p"
    if name in RUN_KEYS:
        return "run"
    study = study_settings(stem)
    if name not in study:
        return "project"
    return "study" if same(value, study[name]) else "profile"


def origins(stem: str, params: dict, sources: dict | None = None) -> dict[str, str]:
    """{name: origin} for one notebook's effective parameters (sources: name -> '-p' etc.)."""
    sources = sources or {}
    return {k: origin(stem, k, v, sources.get(k, "profile")) for k, v in params.items()}
