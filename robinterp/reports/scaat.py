"""Verdicts and tables of the chapter "SCAAT" (Xu et al. 2023), under the shared rule of
``robinterp.reports.rules``; every measure is per image, so intervals resample images within
seeds."""

from __future__ import annotations

import dataclasses

import pandas as pd

from robinterp.configs.scaat import SCAATConfig
from robinterp.reports import effects, mean_sd, rules, titled
from robinterp.titles import dataset_title


@dataclasses.dataclass(frozen=True)
class Measure:
    """One measure of the claims: where it is read from and which way is better."""

    title: str
    claim: str
    higher_is_better: bool


# The abstract's claims, each read through the measures that test it.
MEASURES = {
    "sparseness": Measure("sparseness (Quantus, Gini)", "sparser maps", True),
    "complexity": Measure("complexity (Quantus, entropy)", "less noisy maps", False),
    "background_mass": Measure("saliency on the background (share)", "less noisy maps", False),
    "faithfulness_correlation": Measure("faithfulness correlation (Quantus)", "more faithful maps", True),
    "removal_gap": Measure("removal gap at 50% (points)", "more faithful maps", True),
}
ACCURACY = Measure("clean accuracy (points)", "accuracy unaffected", True)


def removal_gap(removal: pd.DataFrame) -> pd.DataFrame:
    """Per image: right after removing the features nearest 50% in random order, minus right after
    removing them in saliency order (in points: 100, 0 or -100; the mean is the accuracy gap, the
    larger the more faithful the map), in the measures' tidy form."""
    fractions = sorted(set(removal.removed.round(6)) - {0.0})
    at = min(fractions, key=lambda f: abs(f - 0.5))
    rows = removal[removal.removed.round(6) == at]
    wide = rows.pivot_table(index=["dataset", "method", "seed", "image"], columns="ranking", values="correct")
    gap = (wide["random"] - wide["saliency"]).rename("score").reset_index()
    return gap.assign(metric="removal_gap")


def _diff(table: pd.DataFrame, dataset: str, metric: str, a: str, b: str, higher: bool) -> pd.DataFrame:
    rows = table[(table.dataset == dataset) & (table.metric == metric)]
    diff = rules.paired(rows, a, b)
    return diff if higher else diff.assign(value=-diff["value"])


def _smallest(table: pd.DataFrame, dataset: str, metric: str, reference: str) -> float:
    """The smallest effect of interest of ``metric`` (relative sizes: of the reference model's mean)."""
    if metric == "accuracy":
        return effects.smallest("accuracy")
    rows = table[(table.dataset == dataset) & (table.metric == metric) & (table.method == reference)]
    return effects.smallest(metric, float(rows["score"].mean()))


def _collapse_gate(table: pd.DataFrame, dataset: str):
    """Why a claim about some models is not judged on ``dataset`` (a model below
    ``rules.COLLAPSE_FLOOR`` clean accuracy on a seed), "" when it is judged."""
    clean = table[(table.dataset == dataset) & (table.metric == "accuracy")].rename(columns={"score": "correct"})
    return rules.collapse_gate(clean)


BASELINE_METHODS = ("standard", "pgd_at", "sgt")
"""The models SCAAT is compared with, by the method that trains them: ordinary training (the
abstract's comparison), PGD-AT and SGT. Their labels are whatever the config calls them."""


def baselines(cfg: SCAATConfig) -> dict[str, str]:
    """Baseline method -> the label of the first listed model it trains, in ``BASELINE_METHODS``'
    order; a method the config does not list is left out."""
    found: dict[str, str] = {}
    for entry in cfg.methods:
        if entry.method in BASELINE_METHODS and entry.label != cfg.scaat_label():
            found.setdefault(entry.method, entry.label)
    return {method: found[method] for method in BASELINE_METHODS if method in found}


def claims(cfg: SCAATConfig, measures: pd.DataFrame, removal: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of the abstract, measure, data set and baseline model (``baselines``: found
    by the method that trains it, so renaming a label changes no verdict): the effect of SCAAT over
    the baseline (signed so that > 0 is the claimed direction), its 95% interval, n and the
    verdict, and the baseline's method in ``versus method``."""
    scaat = cfg.scaat_label()
    table = pd.concat([measures, removal_gap(removal)], ignore_index=True)
    rows = []
    for method, baseline in baselines(cfg).items():
        for dataset in cfg.datasets():
            gate = _collapse_gate(table, dataset)(scaat, baseline)
            for name, measure in MEASURES.items():
                if not ((table.dataset == dataset) & (table.metric == name)).any():
                    continue  # a measure the config leaves out
                judged = rules.ordering(
                    _diff(table, dataset, name, scaat, baseline, measure.higher_is_better),
                    _smallest(table, dataset, name, baseline),
                ).gated(gate)
                rows.append(
                    {
                        "claim": f"{scaat}: {measure.claim} than {baseline} ({dataset_title(dataset)})",
                        "measure": measure.title,
                        "dataset": dataset,
                        "versus": baseline,
                        "versus method": method,
                        **judged.row(),
                    }
                )
            judged = rules.equivalence(
                _diff(table, dataset, "accuracy", scaat, baseline, True), cfg.accuracy_margin
            ).gated(gate)
            rows.append(
                {
                    "claim": f"{scaat}: {ACCURACY.claim} against {baseline} (within {cfg.accuracy_margin:g}, "
                    f"{dataset_title(dataset)})",
                    "measure": ACCURACY.title,
                    "dataset": dataset,
                    "versus": baseline,
                    "versus method": method,
                    **judged.row(),
                }
            )
    verdicts = pd.DataFrame(rows)
    if verdicts.empty:
        return rules.with_data_set(verdicts.reindex(columns=["claim", "measure", "dataset", "verdict"]), cfg.dataset)
    return rules.with_data_set(verdicts, verdicts["dataset"])


def ablation(cfg: SCAATConfig, measures: pd.DataFrame, removal: pd.DataFrame) -> pd.DataFrame:
    """Each ablation variant against the SCAAT entry on the first data set, per measure: the
    difference variant - SCAAT with its 95% interval over seeds and images (the ablation's seeds),
    and the rule's verdict in the measure's better direction: better or worse (beyond the smallest
    effect of interest), no meaningful difference, inconclusive, or not judged (one seed)."""
    scaat = cfg.scaat_label()
    table = pd.concat([measures, removal_gap(removal)], ignore_index=True)
    table = table[table.seed.isin(cfg.ablation_seeds)]
    rows = []
    for entry in cfg.ablation:
        for name, measure in {**MEASURES, "accuracy": ACCURACY}.items():
            if not (table.metric == name).any():
                continue
            smallest = _smallest(table, cfg.dataset, name, scaat)
            raw = rules.ordering(_diff(table, cfg.dataset, name, entry.label, scaat, True), smallest)
            oriented = rules.ordering(
                _diff(table, cfg.dataset, name, entry.label, scaat, measure.higher_is_better), smallest
            )
            side = {
                rules.CONSISTENT: "better",
                rules.INCONSISTENT: "worse",
            }.get(oriented.verdict, oriented.verdict + (f" ({oriented.reason})" if oriented.reason else ""))
            rows.append(
                {
                    "variant": f"{entry.label} ({entry.describe()})",
                    "measure": titled(measure.title, measure.higher_is_better),
                    "variant - SCAAT [95% interval]": raw.interval(),
                    "than SCAAT": side,
                }
            )
    return pd.DataFrame(rows).set_index(["variant", "measure"])


def per_seed(measures: pd.DataFrame, removal: pd.DataFrame, robust: pd.DataFrame) -> pd.DataFrame:
    """Every measure's mean over images per data set, method and seed (tidy; PGD accuracy too)."""
    table = pd.concat(
        [measures, removal_gap(removal), robust.assign(metric="pgd_accuracy", score=100 * robust["accuracy"])],
        ignore_index=True,
    )
    return table.groupby(["dataset", "method", "seed", "metric"])["score"].mean().reset_index()


def titles() -> dict[str, str]:
    """Column titles of the measures, with the better direction."""
    named = {name: titled(m.title, m.higher_is_better) for name, m in MEASURES.items()}
    return {**named, "accuracy": titled("clean accuracy (%)", True), "pgd_accuracy": "PGD accuracy (%), context"}


def summary(measures: pd.DataFrame, removal: pd.DataFrame, robust: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Mean ± sd over seeds of every measure (rows, per data set) for the methods in ``order``
    (columns): the page's main table, narrow enough for a page."""
    seeds = per_seed(measures, removal, robust)
    seeds = seeds[seeds.method.isin(order)]
    stats = seeds.groupby(["dataset", "metric", "method"])["score"].agg(["mean", "std"])
    cell = [mean_sd(m, s) for m, s in zip(stats["mean"], stats["std"])]
    wide = pd.Series(cell, index=stats.index).unstack("method")
    named = titles()
    rows = [(d, m) for d in seeds.dataset.unique() for m in named if (d, m) in wide.index]
    wide = wide.loc[rows, [m for m in order if m in wide.columns]]
    wide = wide.rename(index=named, level="metric").rename(index=dataset_title, level="dataset")
    return wide.rename_axis(["data set", "measure"])


def verdict_table(verdicts: pd.DataFrame, versus: str) -> pd.DataFrame:
    """The verdicts against one model, one row per data set and measure: the verdict first (a
    table wider than the page hides its last columns), the effect with its 95% interval, the seeds
    that agree, n, and the observations left out as undefined."""
    rows = verdicts[verdicts.versus == versus]
    return pd.DataFrame(
        {
            "data set": rows["dataset"].map(dataset_title),
            "claim": rows["claim"],
            "measure": rows["measure"],
            "verdict": rows["verdict"],
            "effect [95% interval]": [
                rules.effect_text(e, lo, hi) for e, lo, hi in zip(rows["effect"], rows["low"], rows["high"])
            ],
            "seeds agreeing": rows["seeds agreeing"],
            "n": rows["n"],
            "missing": rows["missing"],
        }
    ).set_index(["data set", "claim", "measure"])


def verdict_matrix(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdict of every measure against every model (columns), per data set (rows)."""
    titled_ = verdicts.assign(dataset=verdicts["dataset"].map(dataset_title))
    table = titled_.pivot_table(
        index=["dataset", "measure"], columns="versus", values="verdict", aggfunc="first", sort=False
    )
    return table.rename_axis(index=["data set", "measure"], columns="SCAAT versus")
