"""A paper chapter's reproduction summary, generated from its run (keys no cache: presentation).

In the manner of the ML Reproducibility Challenge's reports: the claims the chapter tested, with
their verdicts counted as the scoreboard counts them (a claim judged on several rows is one claim,
``robinterp.reports.scoreboard``); the claims no profile here tests, each with its reason; the
set-up beside the paper's (``robinterp.paper_numbers.PAPER_SETUPS``, cited); what is a
reconstruction; and what was easy or hard to reproduce, read from the verdicts themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from robinterp import data, paper_numbers
from robinterp.reports import rules, scoreboard
from robinterp.titles import attack_title, dataset_title, model_title, norm_title, optimizer_title, params_text

SETTLED = (*rules.DECISIVE, rules.NO_DIFFERENCE)
"""Verdicts that settle a claim here (either way, or as no meaningful difference)."""


RECONSTRUCTED = {
    "saliency_guided_training": "the training attack of ASGT and AT-FGSM (the paper states neither its radius nor "
    "its steps: both are parameters here), and the network and budget, scaled to the CPU",
    "neuron_sensitivity": "the data and network (a small CNN on MNIST, where the paper fine-tunes PreResNet10 and "
    "VGG19 on ImageNette), and the constants of the lambda search that section 4.4 leaves open",
    "robust_attribution": "the attribution-alignment method itself (its loss, layer and weight: the main paper is "
    "not public) and every training setting the supplement defers to it",
    "scaat": "the whole method, from the abstract alone: how the saliency shapes the adversarial budget, the loss "
    "and every setting",
}
"""What each chapter had to reconstruct, for its summary (the chapter's page says how)."""


def paper_of(chapter: str) -> scoreboard.PaperChapter:
    return next(paper for paper in scoreboard.PAPERS if paper.chapter == chapter)


def claims(chapter: str, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The chapter's claims as the scoreboard counts them (``scoreboard.claims``), from its verdict
    table as saved, without the claims no profile here tests."""
    board = scoreboard.corrected(scoreboard.normalise(paper_of(chapter), verdicts))
    return scoreboard.claims(board)


def untestable(chapter: str) -> list[tuple[str, str, str]]:
    """(claim, where in the paper, why not here) for every claim of the chapter's paper that no
    profile here can test."""
    paper = paper_of(chapter).paper
    return [(claim, where, why) for name, claim, where, why in scoreboard.NOT_TESTABLE if name == paper]


def _cell(text: str) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def setup_table(ours: Sequence[tuple[str, str]], chapter: str) -> str:
    """A markdown table of the set-up: aspect, ours, the paper's (with where it says so)."""
    theirs = paper_numbers.PAPER_SETUPS[chapter]
    lines = ["| | this run | the paper |", "|---|---|---|"]
    for aspect, value in ours:
        lines.append(f"| {aspect} | {_cell(value)} | {_cell(theirs.get(aspect, 'not stated'))} |")
    return "\n".join(lines)


def reproduction_summary(
    chapter: str,
    verdicts: pd.DataFrame,
    ours: Sequence[tuple[str, str]],
    rows_label: str,
) -> str:
    """The summary as markdown for the top of the chapter's page: ``verdicts`` is the chapter's
    verdict table as saved, ``ours`` its set-up (aspect, value; the aspects of ``PAPER_SETUPS``),
    ``rows_label`` the label of its verdict section."""
    reconstruction = RECONSTRUCTED.get(chapter, "")
    found = claims(chapter, verdicts)
    judged = found[found["verdict"].isin(rules.LEVELS)]
    lines = [
        f"**Claims tested here: {len(found)}** (from {len(verdicts)} rows; a claim judged on several "
        f"attacks, radii, metrics or data sets counts once, its rows corrected within it): "
        f"{rules.tally(found['verdict'])}. Every row, with its effect and interval: {{ref}}`{rows_label}`.",
        "",
        "| claim | verdict | rows |",
        "|---|---|---|",
    ]
    for _, row in found.iterrows():
        why = str(row["why"] or "").split(" (")[0]
        verdict = f"{row['verdict']} ({why})" if why and row["verdict"] == rules.NOT_JUDGED else row["verdict"]
        # each claim links to the verdict section holding its rows (a role's title: no < > or backquotes)
        claim = re.sub(r"[<>`]", "", _cell(row["claim"]))
        lines.append(f"| {{ref}}`{claim} <{rows_label}>` | {_cell(verdict)} | {_cell(row['sub-rows'])} |")
    missing = untestable(chapter)
    lines += ["", f"**Not testable here: {len(missing)}.**" if missing else "**Not testable here: none.**"]
    lines += [f"- {claim} ({where}): {why}." for claim, where, why in missing]
    lines += ["", "**The set-up, ours beside the paper's:**", "", setup_table(ours, chapter)]
    if reconstruction:
        lines += ["", f"**Reconstructed:** {reconstruction}."]
    settled = judged[judged["verdict"].isin(SETTLED)]
    open_ = judged[judged["verdict"] == rules.INCONCLUSIVE]
    not_judged = found[found["verdict"] == rules.NOT_JUDGED]
    reasons = sorted({str(why).split(" (")[0].split(":")[0] for why in not_judged["why"] if why})
    lines += [
        "",
        f"**Easy and hard:** {len(settled)} of the {len(found)} claims were settled here (decisive either way, "
        f"or no meaningful difference); {len(open_)} stayed open at this budget{_short_of_seeds(open_)}; "
        f"{len(not_judged)} could not be judged" + (f" ({'; '.join(reasons)})." if reasons else "."),
    ]
    return "\n".join(lines)


def _short_of_seeds(open_: pd.DataFrame) -> str:
    """How the open claims' seeds fall short (``scoreboard.claims``' "seeds for 2δ")."""
    short = scoreboard.short_of_seeds(open_)
    if short.empty:
        return ""
    beyond = scoreboard.beyond_any_seeds(short)
    more = f", {beyond} of them more than {rules.MAX_SEEDS_NEEDED} (the test set's noise is wider than δ)"
    return (
        f", {len(short)} of them for want of seeds (to detect twice their smallest effect 4 times in 5: "
        + ", ".join(f"{row['claim']}: {row['seeds for 2δ']}" for _, row in short.iterrows())
        + f"{more if beyond else ''})"
    )


def _data(cfg: Any, extra: Sequence[str] = ()) -> str:
    shapes = []
    for name in (cfg.dataset, *extra):
        channels, height, width = data.get_spec(name).shape
        shapes.append(f"{dataset_title(name)} ({height}x{width}x{channels})")
    size = f"{cfg.train_size} training images" if cfg.train_size else "all training images"
    return f"{', '.join(shapes)}, {size}"


def _network(cfg: Any) -> str:
    return model_title(cfg.model) + (f", first-layer width {cfg.width}" if cfg.width else "")


def _training(cfg: Any, epochs: str) -> str:
    return f"{epochs}, {optimizer_title(cfg.optimizer)} at lr {cfg.lr:g}, batch {cfg.batch_size}"


def _seeds(cfg: Any) -> str:
    return f"{len(cfg.seeds)} training seeds per model, every interval over them"


def _metrics(cfg: Any) -> str:
    """The listed explanation metrics as the setup says them: the paper's seven by that name, any
    other entry by its label and what it changes."""
    from robinterp.settings.metrics import metric_table
    from robinterp.titles import metric_title

    if cfg.metrics == metric_table():
        return "the seven Quantus metrics (robinterp's batched version, tested equal to Quantus)"
    return ", ".join(
        metric_title(e.label) + ("" if e.describe() == e.label else f" ({e.describe()})") for e in cfg.metrics
    )


def _attacks(cfg: Any) -> str:
    """The listed evaluation attacks as the page names them, with their settings."""
    named = []
    for entry in cfg.attacks:
        settings = entry.settings_text()
        named.append(f"{attack_title(entry.label)} ({settings})" if settings else attack_title(entry.label))
    return ", ".join(named)


def setup_rows(chapter: str, cfg: Any) -> list[tuple[str, str]]:
    """The chapter's set-up under ``cfg``, in the aspects of ``PAPER_SETUPS``."""
    changed = {e.label: params_text(e.describe()) for e in cfg.methods}
    methods = ", ".join(
        label if text == "the method's defaults" else f"{label} ({text})" for label, text in changed.items()
    )
    if chapter == "saliency_guided_training":
        return [
            ("data", _data(cfg)),
            ("network", _network(cfg)),
            ("training", _training(cfg, f"{cfg.epochs:g} epoch(s)") + f"; {methods}"),
            (
                "attacks",
                f"{_attacks(cfg)}, {norm_title('linf')}, eps {', '.join(f'{e:g}' for e in cfg.epsilons)}",
            ),
            ("explanation", "gradient of the true class's logit (captum Saliency), as the official SGT code"),
            ("seeds", _seeds(cfg)),
            ("test images", f"{cfg.eval_size} (attacks), {cfg.faithfulness_size} (removal test)"),
            ("metrics", "accuracy under attack; the removal test (accuracy after masking the most salient pixels)"),
        ]
    if chapter == "neuron_sensitivity":
        return [
            ("data", _data(cfg)),
            ("network", _network(cfg)),
            (
                "training",
                f"standard training for {cfg.pretrain_epochs:g} epoch(s) (lr {cfg.pretrain_lr:g}), then each method "
                f"continues it for {cfg.finetune_epochs:g} (lr {cfg.finetune_lr:g}), {optimizer_title(cfg.optimizer)}, batch "
                f"{cfg.batch_size}; {methods}",
            ),
            (
                "attacks",
                f"{_attacks(cfg)} at eps {', '.join(f'{e:g}' for e in cfg.epsilons)}; AutoAttack "
                f"({', '.join(cfg.autoattack_parts) or 'standard'}) at {cfg.autoattack_eps:g}",
            ),
            ("explanation", f"Integrated Gradients ({cfg.ig_steps} steps)"),
            ("seeds", _seeds(cfg)),
            (
                "test images",
                f"{cfg.quantus_size} (metrics), {cfg.eval_size} (attacks), {cfg.autoattack_size} (AutoAttack)",
            ),
            ("metrics", _metrics(cfg)),
        ]
    if chapter == "robust_attribution":
        return [
            ("data", _data(cfg)),
            ("network", _network(cfg)),
            ("training", _training(cfg, f"{cfg.epochs:g} epoch(s)") + f"; {methods}; a grid of PGD models"),
            ("attacks", f"PGD ({cfg.pgd_steps} steps) in training and evaluation, L2 and {norm_title('linf')} radii"),
            ("explanation", "gradient saliency; the alignment model's own map"),
            ("seeds", _seeds(cfg) + f" ({len(cfg.grid_seeds)} for the grid)"),
            (
                "test images",
                f"{cfg.roar_test_size} (ROAR, retrained on {cfg.roar_train_size}), {cfg.road_size} (ROAD), "
                f"{cfg.alignment_size} (alignment)",
            ),
            ("metrics", "ROAR, ROAD, Etmann et al.'s alignment"),
        ]
    if chapter == "scaat":
        return [
            ("data", _data(cfg, cfg.extra_datasets)),
            ("network", _network(cfg)),
            ("training", _training(cfg, f"{cfg.epochs:g} epoch(s)") + f"; {methods}"),
            ("attacks", f"PGD ({cfg.pgd_steps} steps) at eps {cfg.robust_eps:g} (evaluation)"),
            ("explanation", "gradient saliency"),
            ("seeds", _seeds(cfg)),
            ("test images", f"{cfg.eval_size} (metrics), {cfg.faithfulness_size} (removal)"),
            ("metrics", "sparseness and complexity (Quantus), saliency off the object, faithfulness, accuracy"),
        ]
    raise ValueError(f"no reproduction summary for chapter {chapter!r}")
