"""The findings in words: intervals, a sentence per claim, the report's tables (HTML blocks:
nbconvert drops inline HTML inside Markdown), the definitions and the run's summary."""

from __future__ import annotations

from html import escape as h

from helpers.base import escape
from helpers.experiments.findings.verdicts import DEFINITIONS, VERDICTS, judged, the_studys_way

__all__ = ["COLOURS", "compact_html", "conclusion", "definitions_markdown", "family_wise",
           "interval_text", "prediction_text", "sentence", "summary", "table_html"]

COLOURS = {"reproduced": "#1a7f37", "direction only": "#0969da", "contradicted": "#c00",
           "negligible": "#8250df", "inconclusive": "#9a6700", "not testable": "#57606a",
           "not comparable": "#57606a"}
assert set(COLOURS) == set(VERDICTS)


def number(value: float | None, row: dict, digits: int = 3) -> str:
    """A value in a row's units: signed for a difference, plain for an absolute accuracy."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if row["direction"] == "abs" else f"{value:+.{digits}f}"


def _pair(row: dict, low: str, high: str, digits: int) -> str:
    return f"[{number(row[low], row, digits)}, {number(row[high], row, digits)}]"


def interval_text(row: dict, digits: int = 3) -> str:
    """'+0.012 [-0.003, +0.027]' (no interval: '+0.012, no interval'; a fact: what was seen)."""
    if row["direction"] == "fact":
        return row.get("observed", "")
    est = number(row["estimate"], row, digits)
    if row["ci_low"] is None:
        return f"{est}, no interval"
    return f"{est} {_pair(row, 'ci_low', 'ci_high', digits)}"


def prediction_text(row: dict, digits: int = 3) -> str:
    """'one new run: [a, b]' where the row has a prediction interval, else ''."""
    if row.get("pi_low") is None:
        return ""
    return f"one new run: {_pair(row, 'pi_low', 'pi_high', digits)}"


def needed_text(row: dict) -> str:
    """'about 9 seeds would decide it' for an inconclusive row ('' otherwise)."""
    if row["verdict"] != "inconclusive":
        return ""
    per = " per configuration" if "configurations" in row["replication"] else ""
    k = row.get("n_needed")
    if k is None:
        return f"it needs at least 2 seeds{per} with scatter between them"
    if k > 10_000:
        return f"more than 10,000 seeds{per} would be needed to decide it"
    return (f"about {k} seeds{per} would decide it (80% power for an effect of "
            f"±{row['delta']:g}, at this run's scatter)")


def diverged_text(row: dict) -> str:
    """'1 run diverged (NaN loss or accuracy at chance), left out' ('' if none)."""
    k = row.get("diverged") or 0
    return (f"{k} run{'s' if k != 1 else ''} diverged (NaN loss or accuracy at chance), "
            "left out") if k else ""


def _evidence_words(row: dict) -> str:
    ev = row.get("evidence") or {}
    parts = [f"direction {ev['direction']}" if ev.get("direction") else "",
             f"size {ev['size']}" if ev.get("size") else "",
             f"within ±{row['delta']:g}" if ev.get("negligible") else "",
             diverged_text(row),
             "fragile: its bound clears zero by under a quarter of the interval's half-width; "
             "another seed could move it" if ev.get("fragile") else "",
             f"Holm p {row['p_adjusted']:.3f}" if row.get("p_adjusted") is not None else ""]
    return ", ".join(p for p in parts if p)


def sentence(row: dict) -> str:
    """One Markdown sentence for a claim, worded from its verdict and never stronger; every text
    from the row escaped (a row may come from a file)."""
    e = {k: escape(row[k]) if isinstance(row.get(k), str) else row.get(k)
         for k in ("id", "claim", "quantity", "replication", "size", "study", "why", "regime")}
    v, ci = row["verdict"], escape(interval_text(row))
    head = f"**{e['id']}** ({e['claim']}): **{v}** —"
    what = f"{e['quantity']} is {ci} ({e['replication']})"
    pi = escape(prediction_text(row)) or "the interval"
    delta = f"±{row['delta']:g}"
    size_ev = (row.get("evidence") or {}).get("size")
    if v == "reproduced":
        return head + f" {what}" + (f"; the study's size ({e['size']}) is shown within its "
                                    f"band ({delta} around a number)." if row["size"] else ".")
    if v == "direction only":
        why_not = {"excluded": "is excluded",
                   "not compared": "is not compared in this regime"}.get(size_ev, "is not shown")
        return (f"{head} {what}: the study's direction holds, but its size ({e['size']}) "
                f"{why_not} ({pi}).")
    if v == "contradicted" and row["direction"] == "fact":
        return f"{head} {ci}."
    if v == "contradicted" and row["size"] and size_ev == "excluded":
        return (f"{head} {what}: a gap of more than {delta} from the study's {e['size']} is "
                f"established ({pi}).")
    if v == "contradicted":
        return f"{head} {what}: on the other side of the study's claim."
    if v == "negligible":
        return f"{head} {what}: the whole interval lies within {delta} of no effect."
    if v == "not testable":
        return f"{head} {e['why']}."
    if v == "not comparable":
        return (f"{head} {e['why'] or e['regime']}: {what}, not set against the study's "
                f"{e['study']}.")
    if row["direction"] != "fact" and row["ci_low"] is None:
        return f"{head} {what}: without scatter between runs there is no interval."
    if row["size"] and size_ev not in (None, "not compared") and row["direction"] == "abs":
        return (f"{head} {what}: the gap to the study's {e['size']} ({pi}) is neither shown "
                f"within {delta} nor beyond it; {needed_text(row)}.")
    return (f"{head} {what}: the interval holds both no effect and an effect of {delta}; "
            f"{needed_text(row)}.")


def conclusion(rows: list[dict]) -> str:
    """A notebook's conclusion on the study's claims: one bullet per claim."""
    return "\n".join(f"- {sentence(r)}" for r in rows)


def definitions_markdown() -> str:
    """The verdicts' one table (the report's and docs/findings.md's)."""
    return "\n".join(["| verdict | when |", "|---|---|",
                      *(f"| {v} | {DEFINITIONS[v]} |" for v in VERDICTS)])


def html_table(head: list[str], rows: list[list[str]], cls: str = "findings",
               td: str = "") -> str:
    """One HTML table, a block (Markdown renderers pass it through whole); cells are HTML."""
    th = "".join(f"<th style='text-align:left'>{x}</th>" for x in head)
    body = ["<tr>" + "".join(f"<td style='text-align:left;vertical-align:top{td}'>{c}</td>"
                             for c in cells) + "</tr>" for cells in rows]
    return "\n".join([f"<table class='{cls}'>", f"<thead><tr>{th}</tr></thead>", "<tbody>",
                      *body, "</tbody>", "</table>"])


def claim_html(r: dict) -> str:
    """'<b>C1</b> the claim' with its role where it is not a claim."""
    role = "" if r["role"] == "claim" else f" <i>({h(r['role'])})</i>"
    return f"<b>{h(r['id'])}</b> {h(r['claim'])}{role}"


def verdict_html(r: dict) -> str:
    return f"<b style='color:{COLOURS[r['verdict']]}'>{h(r['verdict'])}</b>"


def table_html(rows: list[dict]) -> str:
    """The full rows: claim | Δ | estimate [95% interval], prediction, n | verdict | method."""
    cells = []
    for r in rows:
        claim = (f"{claim_html(r)}<br><small><i>“{h(r['quote'])}”</i> ({h(r['where'])}); "
                 f"the study: {h(r['study'])}</small>")
        pi = prediction_text(r)
        regime = "" if r["regime"] == r.get("regime_short") else f"; {r.get('regime_short', '')}"
        measured = (f"{h(r['quantity'])}: <b>{h(interval_text(r))}</b>"
                    + (f"; {h(pi)}" if pi else "")
                    + f"<br><small>n = {r['n']}: {h(r['replication'])}{h(regime)}</small>")
        notes = [x for x in (_evidence_words(r), needed_text(r), r.get("why") or "") if x]
        verdict = verdict_html(r) + (
            "<br><small>" + h("; ".join(notes)) + "</small>" if notes else "")
        cells.append([claim, f"±{r['delta']:g}" if r["direction"] != "fact" else "exact",
                      measured, verdict, f"<small>{h(r['method'])}</small>"])
    return html_table(["claim (the study's words)", "Δ", "this run: estimate [95% interval], n",
                       "verdict", "method"], cells)


# Measured by tests/test_calibration.py (test_the_family_wise_rate_is_what_the_report_states):
# with no effect anywhere, the rate at which at least one of the quick design's judged claims
# (C2-C10, C12) comes out decisive the study's way, at 95% each and after Holm across them.
FAMILY_WISE = {"unadjusted": 0.18, "holm": 0.02}


def family_wise(rows: list[dict]) -> str:
    """The measured family-wise error, the claims the study's way, and those after Holm."""
    tested = judged(rows)
    if not tested:
        return ""
    way, kept = the_studys_way(rows)
    ids = escape(", ".join(r["id"] for r in tested))
    return (f"**Multiplicity.** {len(tested)} claims ({ids}) were each judged at 95%. If none of "
            f"the study's effects were real, at least one claim would still come out the study's "
            f"way in {FAMILY_WISE['unadjusted']:.0%} of runs of the quick design (measured by "
            f"simulation); after Holm's correction across the claims, in "
            f"{FAMILY_WISE['holm']:.0%}. The study's way here: {len(way)} "
            f"({escape(', '.join(way) or 'none')}); after Holm's correction, {len(kept)} "
            f"({escape(', '.join(kept) or 'none')}). Sub-claims (per augmentation) are judged "
            "after Holm's correction within their family; sensitivity rows are not counted.")


def compact_html(rows: list[dict]) -> str:
    """The report's first-page table: claim | estimate [95% interval] | verdict | n."""
    cells = [[claim_html(r), h(interval_text(r)), verdict_html(r) + (
        f" <small style='color:#c00'>({h(diverged_text(r))})</small>" if r.get("diverged")
        else ""), h(str(r["n"]))] for r in rows]
    return html_table(["claim", "estimate [95% interval]", "verdict", "n"], cells,
                      "findings-compact", ";padding:1px 6px")


def summary(rows: list[dict]) -> str:
    """Each claim under its verdict (no tally: claims weigh differently), regime, family-wise."""
    top = [r for r in rows if r["role"] == "claim"]
    items: dict[str, list[str]] = {v: [] for v in VERDICTS}
    for r in top:
        why = r["verdict"] in ("not testable", "not comparable")
        extra = needed_text(r) or (escape(r["why"]) if why else "")
        items[r["verdict"]].append(f"{escape(r['id'])} ({escape(r['claim'])}"
                                   + (f"; {extra})" if extra else ")"))
    parts = [f"*{v}*: " + "; ".join(named) for v, named in items.items() if named]
    where = "; ".join(sorted({r["regime"] for r in top}))
    fw = family_wise(rows)
    return (f"**What this run can say** ({escape(where)}). " + ". ".join(parts) + "."
            + ("\n\n" + fw if fw else ""))
