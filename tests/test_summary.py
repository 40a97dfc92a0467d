"""A paper chapter's reproduction summary, generated from its verdicts: its counts are the
scoreboard's for the same table, every claim no profile here tests is listed with its reason, and
the set-up puts ours beside the paper's for every aspect."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from robinterp import chapters, paper_numbers
from robinterp.reports import rules, scoreboard, summary

VERDICTS = pd.DataFrame(
    {
        "claim": [
            "NsLoss beats standard on max-sensitivity",
            "NsLoss beats standard on sparseness",
            "PGD-AT costs about 10 points of clean accuracy against standard",
            "clean accuracy falls with epoch (Figure 4)",
        ],
        "effect": [0.3, 0.01, 2.0, 1.0],
        "low": [0.2, -0.01, 1.0, 0.5],
        "high": [0.4, 0.02, 3.0, 1.5],
        "seeds agreeing": ["3 of 3"] * 4,
        "verdict": [rules.CONSISTENT, rules.NO_DIFFERENCE, rules.INCONSISTENT, rules.NOT_JUDGED],
        "reason": ["", "", "", "collapsed: NsLoss at epoch 3 reaches 18% on seed 0"],
        "p": [1e-4, float("nan"), 1e-3, float("nan")],
        "seeds needed": [3.0, 2.0, float("nan"), float("nan")],
    }
)


def test_the_summary_counts_claims_as_the_scoreboard_does_and_lists_the_untestable_with_reasons():
    cfg = chapters.resolve_config("neuron_sensitivity", "default")[0]
    text = summary.reproduction_summary(
        "neuron_sensitivity", VERDICTS, summary.setup_rows("neuron_sensitivity", cfg), "rows"
    )
    found = summary.claims("neuron_sensitivity", VERDICTS)
    assert len(found) == 3  # the two metrics are one claim
    assert f"**Claims tested here: {len(found)}** (from 4 rows" in text
    assert rules.tally(found["verdict"]) in text
    # each claim links to the section of its rows
    assert (
        "| {ref}`NsLoss beats standard <rows>` | inconclusive | 1 consistent, 1 no meaningful difference of 2 |" in text
    )
    assert (
        "| {ref}`clean accuracy falls with epoch <rows>` | not judged (collapsed: NsLoss at epoch 3 reaches 18% on seed 0)"
        in text
    )
    untested = [row for row in scoreboard.NOT_TESTABLE if row[0] == "Moshe et al. (NsLoss)"]
    assert f"**Not testable here: {len(untested)}.**" in text
    for _, claim, where, why in untested:
        assert f"- {claim} ({where}): {why}." in text and why.strip()
    assert "{ref}`rows`" in text and "**Reconstructed:**" in text
    # a claim's text as a role's title: no backquote or angle bracket that would end or retarget it
    odd = VERDICTS.assign(claim=VERDICTS["claim"].str.replace("max-sensitivity", "`max` <sensitivity> | x"))
    odd_text = summary.reproduction_summary("neuron_sensitivity", odd, [], "rows")
    assert "| {ref}`NsLoss beats standard on max sensitivity / x <rows>` |" in odd_text
    assert "**Easy and hard:** 1 of the 3 claims were settled here" in text


@pytest.mark.parametrize("chapter", list(paper_numbers.PAPER_SETUPS))
def test_the_set_up_puts_ours_beside_the_papers_for_every_aspect(chapter):
    cfg = chapters.resolve_config(chapter, "default")[0]
    ours = summary.setup_rows(chapter, cfg)
    assert [aspect for aspect, _ in ours] == list(paper_numbers.PAPER_SETUPS[chapter])
    table = summary.setup_table(ours, chapter)
    rows = table.splitlines()[2:]
    assert len(rows) == len(ours) and all(len(re.findall(r"\|", row)) == 4 for row in rows)
    assert all(value.strip() for _, value in ours)
    # names as a reader reads them: no registry key of a data set, architecture, optimiser or norm
    from robinterp import data, models, train

    keys = [*data.DATASETS, *models.MODELS, *train.OPTIMIZERS, "linf", "l2"]
    shown = " ".join(value for _, value in ours)
    leaked = [key for key in keys if re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", shown)]
    assert not leaked, (leaked, shown)


def test_every_data_set_architecture_and_optimiser_has_a_title():
    from robinterp import data, models, titles, train

    assert set(data.DATASETS) <= set(titles.DATASET_TITLES)
    assert set(models.MODELS) <= set(titles.MODEL_TITLES)
    assert set(train.OPTIMIZERS) <= set(titles.OPTIMIZER_TITLES)
    assert titles.params_text("eps=2.42, norm=l2, steps=5") == "eps=2.42, norm=L2, steps=5"
