"""The book's results as data: every table a chapter saves, what it holds and what each column
means (the book's "Results" page is written from here), and the tables of several runs combined.

A chapter run publishes its tables as tidy CSV under ``results/<run>/<chapter>/``, with a
``run.json`` saying which run made them (its label, the config's hash, the commit). ``combine``
stacks one table of several runs (profiles, config files, ``--set`` runs) with the run and the
config hash as columns: the sweep a reader wants to plot (papermill's users ask for it,
papermill#404).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from robinterp import RobinterpError
from robinterp.paths import RUN_FILE, build_root
from robinterp.titles import METRIC_TITLES

TABLES: dict[str, str] = {
    "training": "every model the chapter trained: one row per label and seed (and data set)",
    "robust_accuracy": "accuracy under each attack and radius, per model and seed (radius 0: clean)",
    "verdicts": "every claim's row: the effect, its 95% interval over seeds and images, and the verdict",
    "alignment": "image/saliency alignment per model and seed (per image where the chapter pairs images)",
    "autoattack": "accuracy under AutoAttack per model and seed",
    "epoch_curve": "the NsLoss model's metrics after each epoch of continued training (the paper's Figure 4)",
    "explanation_quality": "the listed explanation metrics (the chapter's metrics) per image, model and seed",
    "lambda_protocol": "every step of the NsLoss weight search (section 4.4): the weights tried and why",
    "lambda_sweep": "the NsLoss model's metrics at each weight (the paper's Table 5)",
    "paper_comparison": "per metric, the paper's values (Tables 3, 4) beside which model is best here",
    "leak": "per image: right or wrong after removal with class-agnostic, true-class and predicted-class maps",
    "map_cost": "seconds per map of each map kind, per repeat",
    "road": "per image: right or wrong after ROAD's imputation of the most or least relevant pixels",
    "roar": "per image: right or wrong by a network retrained without the top pixels of each ranking",
    "table1": "the supplement's Table 1 (ROAR by PGD radius and steps), ours beside the paper's",
    "faithfulness": "accuracy after removing a share of pixels by saliency or at random, per model and seed",
    "map_focus": "per image: the share of the saliency off the object (on the background)",
    "paper_numbers": "the accuracies the paper quotes beside ours, per attack, radius and model",
    "ablation": "each SCAAT variant against SCAAT, per measure: the difference, its interval and the verdict",
    "measures": "the map measures per image, model, seed and data set",
    "removal": "per image: right or wrong after removing a share of pixels by saliency or at random",
    "benchmark": "every method's mean and 95% half-width per measure, and whether it is a separated best",
    "budget_check": "per measure: orderings separated at the chapter's budget and what a larger budget does to them",
    "claims": "the scoreboard: one row per paper's claim, its verdict from its sub-rows",
    "cost": "each method's training cost relative to standard training, per timed repeat",
    "per_image": "every measure of the benchmark per image, method and seed",
    "per_image_larger_budget": "the benchmark's measures at the larger budget",
    "rank_agreement": "Spearman's correlation between two interpretability measures over the methods",
    "roar_random": "ROAR's random control per image and seed",
    "training_larger_budget": "the models of the larger budget",
    "ladder": "a budget ladder (robinterp ladder): every claim's verdict at each rung and its course as the budget grows",
}
"""What each table holds, by its file name (the same name means the same layout in every chapter)."""

COLUMNS: dict[str, str] = {
    "method": "the model's label in the chapter's methods (or the ablation's)",
    "seed": "the training seed",
    "dataset": "the data set's registry key",
    "data set": "the data set the row was measured on, by its title (MNIST, Fashion-MNIST)",
    "image": "the test image's index in the chapter's seeded evaluation subset",
    "attack": "the attack's registry key (fgsm, pgd, mifgsm, autoattack)",
    "norm": "the attack's norm (linf, l2)",
    "steps": "PGD steps of the training attack",
    "eps": "the attack's radius (0: clean)",
    "correct": "right (1 or 100) or wrong (0); in a per-model table, how many images were right",
    "n": "images counted; in a verdict, paired observations used",
    "accuracy": "accuracy, a fraction between 0 and 1 (points where the table says %)",
    "trained_by": "the registered training method that trained the model",
    "cache_key": "the model's cache key (robinterp models; .cache/models/<key>/)",
    "from_cache": "whether this run loaded the model instead of training it",
    "train_minutes": "wall minutes its training took when it was trained",
    "test_accuracy": "clean accuracy on the test set, a fraction",
    "parameters": "the network's parameter count",
    "group": "which of the chapter's model groups it belongs to (the compared models or the PGD grid)",
    "claim": "the claim as the page states it",
    "source": "the paper the claim is from (its citation key), where it is not the chapter's own",
    "measure": "what was measured (its title or key)",
    "effect": "the effect, signed so that > 0 is the claimed direction, in the measure's units",
    "low": "the lower end of the effect's 95% interval over seeds and images",
    "high": "the upper end of the effect's 95% interval",
    "smallest effect": "the smallest effect of interest (or margin, or band) it was judged by",
    "missing": "paired observations left out because a value was undefined",
    "seeds agreeing": "seeds whose own mean points the claimed way, of all seeds",
    "verdict": "consistent, inconsistent, no meaningful difference, inconclusive, or not judged",
    "reason": "why a claim is not judged, or why a decisive verdict did not survive a correction",
    "where": "where the paper says it",
    "paper": "the paper's own value, where it gives one (in the synthesis's scoreboard: which paper)",
    "rule": "how the verdict was reached",
    "p": "a decisive verdict's p-value: the smallest 1 - confidence at which it still holds",
    "resolution": "(t(0.975) + t(0.8)) x SE: how far beyond a verdict's boundary the truth must lie to be found 4 times in 5",
    "seeds needed": "seeds at which twice the smallest effect would be found 4 times in 5 (inf: no number of seeds)",
    "versus": "the model it is compared with (the benchmark: the second best)",
    "versus method": "the registered method that trains the model it is compared with",
    "metric": "the metric's registry key",
    "score": "the measure's value for this image",
    "epoch": "epochs of continued training",
    "lambda": "the NsLoss weight",
    "too_high": "whether the weight failed the protocol's test",
    "batches": "batches the protocol's test trained for",
    "phase": "the search's phase (bracketing or bisection)",
    "training_ce": "the training cross-entropy the test reached",
    "threshold": "the cross-entropy above which a weight is too high",
    "accuracy_drop": "points of accuracy lost against the standard model",
    "bracketed": "whether the search found a weight that is too high",
    "nsloss0": "the standard model's NsLoss (the protocol's NsLoss_0)",
    "lambda0": "the protocol's starting weight, 1 / NsLoss_0 times the loss",
    "selected": "the weight the protocol chose",
    "better": "which way is better for the metric",
    "paper best": "the model the paper's table finds best",
    "our best": "the model best here",
    "map": "which map the row is about (saliency, random, the model's own)",
    "target": "the class the map explains",
    "model": "the model whose maps are timed",
    "repeat": "the timed repeat",
    "seconds_per_image": "seconds per map",
    "fraction": "the share of pixels removed",
    "order": "ROAD's order: most relevant first (morf) or least relevant first (lerf)",
    "ranking": "how pixels were ranked for removal (saliency, random, the model's own map)",
    "seconds": "seconds the row's computation took",
    "retrain_minutes": "minutes ROAR's retraining took",
    "rank_seconds": "seconds the ranking took",
    "paper eps": "the paper's radius this row stands for",
    "paper steps": "the paper's steps this row stands for",
    "removed": "the share of pixels removed",
    "background_share": "the share of the map's mass off the object",
    "ours": "our value",
    "sd": "its standard deviation over seeds",
    "ours - paper": "ours minus the paper's",
    "variant": "the SCAAT variant and what it changes",
    "variant - SCAAT [95% interval]": "the variant's value minus SCAAT's, with its 95% interval",
    "than SCAAT": "the verdict: better, worse, no meaningful difference, inconclusive or not judged",
    "mean": "the mean over seeds",
    "half_width": "the half-width of the 95% t-interval over seeds",
    "best": "whether the method has the column's best mean",
    "separated": "whether the rule separates the best from the second",
    "kind": "robustness or interpretability",
    "separated pairs": "orderings of two methods the rule separates at the chapter's budget",
    "held": "of those, still consistent at the larger budget",
    "unsettled": "of those, neither consistent nor inconsistent there",
    "flipped": "of those, inconsistent there",
    "rank correlation": "Spearman's correlation of the methods' means at the two budgets",
    "ratio": "training time per batch relative to standard training",
    "value": "the measure's value (the robust accuracy's in %)",
    "cosine_alignment": "the cosine between the image and its saliency",
    "paper's value": "the paper's own value",
    "why": "why the claim is not judged or not testable here",
    "headline": "the claim the row is evidence for",
    "sub-rows": "the claim's rows by verdict, after the correction within the claim",
    "seeds": "the seeds the claim was judged on",
    "seeds for 2δ": "the seeds its least powered ordering needs (>50: more seeds would not do it)",
    "ours (paper)": "our value under the paper profile",
    "verdict (paper)": "the verdict under the paper profile",
    "run": "the run the row comes from (its profile, config file or --set label)",
    "config": "the hash of the run's config",
}
"""What each column means, by its name (one meaning in every table)."""

_DYNAMIC = (
    (re.compile(r"(max_sensitivity|avg_sensitivity|local_lipschitz|faithfulness_(correlation|estimate)|complexity|"
                r"sparseness|test_accuracy|alignment)"), "that metric's value (the table's rows say of what)"),
    (re.compile(r"paper (standard|NsLoss|JacobReg|PGD-AT)"), "the paper's value for that model"),
    (re.compile(r"\d+% (ours|paper)"), "ROAR accuracy with that share removed, ours or the paper's"),
    (re.compile("|".join(map(re.escape, METRIC_TITLES.values())) + r"|faithfulness (corr|est)\.|local Lipschitz|"
                r"removal gap \d+%|ROAD gap \d+%|ROAR acc\. \d+%"), "Spearman's correlation with that measure"),
)  # fmt: skip


def describe_column(name: str) -> str:
    """What a column means ("" if no entry says)."""
    if name in COLUMNS:
        return COLUMNS[name]
    return next((text for pattern, text in _DYNAMIC if pattern.fullmatch(name)), "")


def undocumented(table: str, columns: Sequence[str]) -> list[str]:
    """What of a saved table this module does not document: its name, or columns."""
    missing = [] if table in TABLES else [f"table {table}"]
    return missing + [column for column in columns if not describe_column(column)]


def run_label(folder: Path) -> dict[str, str]:
    """A published run's ``run.json`` (label, config hash, commit), or its folder's name alone."""
    path = Path(folder) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"label": Path(folder).parent.name}


def runs(chapter: str, root: Path | None = None) -> list[str]:
    """The runs that published ``chapter``'s tables, by label."""
    base = Path(root or build_root()) / "results"
    return sorted(p.parent.name for p in base.glob(f"*/{chapter}") if p.is_dir() and not p.parent.name.startswith("."))


def combine(table: str, chapter: str, labels: Sequence[str] = (), root: Path | None = None) -> pd.DataFrame:
    """``table`` of ``chapter`` from every run in ``labels`` (none named: every run that published
    it), stacked, with the run's label and config hash as the first columns."""
    base = Path(root or build_root()) / "results"
    chosen = list(labels) or runs(chapter, root)
    frames = []
    for label in chosen:
        folder = base / label / chapter
        path = folder / f"{table}.csv"
        if not path.is_file():
            available = ", ".join(runs(chapter, root)) or "none"
            raise RobinterpError(
                f"run {label!r} published no {chapter} table {table!r} (runs of {chapter}: {available})"
            )
        frame = pd.read_csv(path)
        meta = run_label(folder)
        frame.insert(0, "config", meta.get("config", ""))
        frame.insert(0, "run", label)
        frames.append(frame)
    if not frames:
        raise RobinterpError(f"no run has published {chapter}'s tables: `robinterp run {chapter}` makes them")
    return pd.concat(frames, ignore_index=True)


def reference_markdown(results: Path) -> str:
    """The Results page: per chapter, each table published under ``results`` (one run's folder of
    chapter folders) with what it holds, a link to download it, and what its columns mean."""
    lines = [
        "Every table a chapter computed, as tidy CSV with one row per observation, and what each column means. "
        "Each chapter's page links its own at its end; `robinterp results TABLE --chapter CHAPTER` stacks one "
        "table of several runs (profiles, config files, `--set` runs) with the run and its config hash as "
        "columns.",
    ]
    from robinterp.catalog import chapter_title
    from robinterp.chapters import CHAPTERS

    for chapter in [name for name in CHAPTERS if Path(results, name).is_dir()]:
        lines += ["", f"## {chapter_title(CHAPTERS[chapter].notebook)}", "", f"`results/<run>/{chapter}/`:", ""]
        for path in sorted(Path(results, chapter).glob("*.csv")):
            columns = list(pd.read_csv(path, nrows=0).columns)
            lines.append(
                f"- {{download}}`{path.name} <results/{chapter}/{path.name}>`: {TABLES.get(path.stem, '')}. "
                + "; ".join(f"`{c}`: {describe_column(c) or '(undocumented)'}" for c in columns)
                + "."
            )
    return "\n".join(lines)
