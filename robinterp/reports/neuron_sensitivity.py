"""Tables and verdicts of the chapter "Neuron sensitivity" (Moshe et al.)."""

from __future__ import annotations

import math

import pandas as pd

from robinterp import data, explanation_quality
from robinterp.configs.neuron_sensitivity import STANDARD, NeuronSensitivityConfig
from robinterp.experiments.neuron_sensitivity import Trained, explainer_options, quantus_split
from robinterp.reports import effects, mean_sd, rules, titled
from robinterp.settings.choices import METRIC_IMPLEMENTATIONS
from robinterp.settings.metrics import SEVEN, MetricEntry, entries
from robinterp.titles import metric_title, with_metric_titles

CORRELATIONS = ("faithfulness_correlation", "faithfulness_estimate")


def metric_settings(cfg: NeuronSensitivityConfig) -> pd.DataFrame:
    """Every Quantus setting the chapter changes, for this data set's image size, one row
    per metric with the settings as ``name=value`` text."""
    pixels = math.prod(data.get_spec(cfg.dataset).shape[1:])
    table = explanation_quality.metric_settings(cfg.quantus_samples, pixels, cfg.quantus_noise, cfg.metrics)
    table["changed settings"] = table["changed settings"].map(
        lambda settings: ", ".join(f"{name}={value}" for name, value in settings.items()) or "none"
    )
    # the class and its direction in one column, so that the table fits the page
    table["quantus class"] = table["quantus class"].combine(table["better"].eq("higher"), titled)
    return (
        table.drop(columns="better")
        .assign(metric=table["metric"].map(metric_title), why=table["why"].map(with_metric_titles))
        .set_index("metric")
    )


def quantus_agreement(
    cfg: NeuronSensitivityConfig, trained: Trained, images: int = 8, quantus_batch: int = 4
) -> pd.DataFrame:
    """Quantus's own classes beside robinterp's implementation, per listed metric that has one,
    on the first seed's standard model and ``images`` of the scored images (not cached: a check).

    Quantus batches of ``quantus_batch`` images put the random draws across batches to the
    test too. Allowed: 1e-4 of the score (float32 round-off differs with batch shapes), and
    1e-4 absolute for the two correlations, which can be near 0.
    """
    split = quantus_split(cfg).subset(images, seed=0)
    model, seed = trained.models[STANDARD, cfg.seeds[0]], cfg.seeds[0]
    checked = tuple(e for e in cfg.metrics if explanation_quality.get_metric(e.spec.name).quantus_name)
    correlations = {e.label for e in checked if e.spec.name in CORRELATIONS}
    tables = {
        implementation: explanation_quality.scores(
            model,
            split.images,
            split.labels,
            checked,
            explainer_options=explainer_options(cfg, "integrated_gradients"),
            samples=cfg.quantus_samples,
            noise=cfg.quantus_noise,
            seed=seed,
            batch_size=quantus_batch,
            images_per_call=cfg.eval_batch_size,
            implementation=implementation,
        )
        for implementation in METRIC_IMPLEMENTATIONS
    }
    reference = tables["quantus"]
    difference = (tables["robinterp"].score - reference.score).abs()
    allowed = reference.score.abs().mul(1e-4).where(~reference.metric.isin(correlations), 1e-4)
    both_nan = reference.score.isna() & tables["robinterp"].score.isna()
    return (
        reference.assign(
            difference=difference.where(~both_nan, 0.0), allowed=allowed, agrees=(difference <= allowed) | both_nan
        )
        .groupby("metric", sort=False)
        .agg(quantus_mean=("score", "mean"), largest_difference=("difference", "max"), agrees=("agrees", "all"))
        .reset_index()
    )


def higher_is_better(metric: str) -> bool:
    """Which way the registered metric ``metric`` is better."""
    return explanation_quality.get_metric(metric).higher_is_better


def _first_entries(entries: tuple[MetricEntry, ...]) -> dict[str, str]:
    """The label of the first entry of each of the paper's seven metrics listed, in the paper's order."""
    return {
        name: next(e.label for e in entries if e.spec.name == name)
        for name in SEVEN
        if any(e.spec.name == name for e in entries)
    }


def paper_metrics(cfg: NeuronSensitivityConfig) -> dict[str, str]:
    """The paper's metrics the chapter lists, by name, each with the label of its first entry
    (the column a claim about it is judged on)."""
    return _first_entries(cfg.metrics)


TITLES = {"test_accuracy": titled("clean acc.", True), "lambda": "λ", "factor": "× selected λ", "epoch": "epoch"}

# The paper's Table 5 and Figure 4 trends: +1 where the measure grows with lambda (or epochs), -1
# where it falls (section 5.6)
TRENDS = {"test_accuracy": -1, "max_sensitivity": -1, "faithfulness_estimate": 1, "sparseness": 1}


def trend_panels() -> dict[str, str]:
    """The panels of the lambda-sweep and epoch-curve figures: one per ``TRENDS`` measure,
    titled with the way that is better."""
    return {
        name: metric_title(name)
        if name == "test_accuracy"
        else f"{metric_title(name)} ({'higher' if higher_is_better(name) else 'lower'} better)"
        for name in TRENDS
    }


def narrow(table: pd.DataFrame) -> pd.DataFrame:
    """A per-setting table (the lambda sweep, the epoch curve) with short headers that carry each
    metric's direction, so it fits the page."""
    titles = {name: titled(metric_title(name), higher_is_better(name)) for name in TRENDS if name != "test_accuracy"}
    return table.rename(columns={**titles, **TITLES})


def accuracy_course(curve: pd.DataFrame, setting: str = "epoch") -> dict[str, float]:
    """Clean accuracy (%) along a per-image curve (``test_accuracy`` rows, 1 or 0 per image): its
    mean over seeds at the first and the last ``setting``, and the lowest and highest seed's at the
    last (where the mean hides one seed's collapse)."""
    right = curve[curve.metric == "test_accuracy"]
    per_seed = 100 * right.groupby([setting, "seed"])["score"].mean()
    first, last = per_seed.index.get_level_values(setting).min(), per_seed.index.get_level_values(setting).max()
    return {
        "first": float(per_seed[first].mean()),
        "last": float(per_seed[last].mean()),
        "last_lowest": float(per_seed[last].min()),
        "last_highest": float(per_seed[last].max()),
        "last_setting": float(last),
    }


def quality_table(
    scores: pd.DataFrame,
    records: pd.DataFrame,
    robust: pd.DataFrame,
    order: list[str],
    metrics: tuple[MetricEntry, ...] | None = None,
) -> pd.DataFrame:
    """The Table 3 analogue: mean ± sd over seeds per method, a column per listed metric (None:
    the seven); arrows say which way is better, a star marks the best method per column (the
    random control excluded)."""
    per_seed = scores.groupby(["method", "seed", "metric"])["score"].mean().reset_index()
    columns = {}
    for entry in entries(metrics):
        higher = higher_is_better(entry.spec.name)
        columns[(metric_title(entry.label), higher)] = per_seed[per_seed.metric == entry.label].groupby("method")[
            "score"
        ]
    accuracy = records.groupby("method")["test_accuracy"]
    columns[("clean accuracy", True)] = accuracy
    columns[("robust accuracy", True)] = robust.groupby("method")["accuracy"]
    table = {}
    for (name, higher), groups in columns.items():
        mean, sd = groups.mean(), groups.std(ddof=1)
        candidates = mean.drop(labels=["random attribution"], errors="ignore")
        best = candidates.max() if higher else candidates.min()
        # a tie for the best (say every robust accuracy 0) marks every tied method
        table[titled(name, higher)] = {
            method: mean_sd(mean[method], sd[method])
            + (" ★" if method in candidates.index and mean[method] == best else "")
            for method in mean.index
        }
    frame = pd.DataFrame(table)
    # the random control has no accuracy of its own: a dash, not NaN
    return frame.reindex([m for m in order if m in frame.index]).fillna("—")


def _smallest(metric: str, reference: pd.Series) -> float:
    """``metric``'s smallest effect of interest in its units (clean accuracy: 1 point, the
    per-image scores being 0 or 1), the reference model's mean for a relative size."""
    if metric == "test_accuracy":
        return effects.smallest("accuracy") / 100
    return effects.smallest(metric, float(reference.mean()))


def _trend_rows(table: pd.DataFrame, setting: str, where: str, gate: str) -> list[dict[str, object]]:
    rows = []
    for metric, sign in TRENDS.items():
        at = table[table.metric == metric]
        first = at[at[setting] == at[setting].min()]["score"]
        judged = rules.trend(at.assign(x=at[setting], value=sign * at["score"]), _smallest(metric, first))
        rows.append(
            {
                "claim": f"{metric_title(metric)} {'rises' if sign > 0 else 'falls'} with {setting} ({where})",
                "source": "moshe2022nsloss",
                "measure": f"fitted change of {metric_title(metric)} from the first to the last {setting}, signed so "
                "that > 0 is the claim",
                **judged.gated(gate).row(),
            }
        )
    return rows


# the paper's method names, by the registered method that trains them
PAPER_NAMES = {"NsLoss": "nsloss", "JacobReg": "jacobian_reg", "PGD-AT": "pgd_at"}


def _ratio_rows(cfg: NeuronSensitivityConfig, scores: pd.DataFrame, gate) -> list[dict[str, object]]:
    """The text's percentages (``paper_numbers.MOSHE_RATIOS``) as ratios of two models' mean
    scores under the magnitude rule (``rules.ratio``)."""
    from robinterp.paper_numbers import moshe_ratios

    def label(name: str) -> str | None:
        if name == STANDARD:
            return STANDARD
        return next((e.label for e in cfg.methods if e.method == PAPER_NAMES[name]), None)

    rows = []
    listed = paper_metrics(cfg)
    for (metric, numerator, denominator), (value, where) in moshe_ratios(cfg.model).items():
        a, b = label(numerator), label(denominator)
        over = " over " in where  # "a reduction of over 116%": an at-least claim
        base = {
            "claim": f"{numerator}'s {metric_title(metric)} is {'over ' if over else ''}{value:g} times "
            f"{denominator}'s",
            "source": "moshe2022nsloss",
            "measure": f"mean {metric_title(metric)} of {a} / of {b}; the paper: {where}",
            "paper": value,
        }
        if a is None or b is None:
            rows.append(
                {**base, "verdict": f"not run ({numerator if a is None else denominator} is not among the methods)"}
            )
            continue
        if metric not in listed:
            rows.append({**base, "verdict": f"not run ({metric_title(metric)} is not among the listed metrics)"})
            continue
        pairs = rules.paired_values(scores[scores.metric == listed[metric]], a, b)
        # "a reduction of over 116%": at least, less the band (the quoted ratio comes from rounded
        # table values)
        judged = rules.ratio(pairs, value, effects.band("ratio", value, value), at_least=over)
        rows.append({**base, **judged.gated(gate(a, b)).row()})
    return rows


def best_of_four(cfg: NeuronSensitivityConfig, scores: pd.DataFrame, gate: str = "") -> dict[str, object]:
    """ "NsLoss is the best of the four on most metrics": on each of the paper's seven metrics the
    chapter lists (``paper_metrics``), NsLoss
    against each other model by the ordering rule (paired on images and seeds, the metric's
    smallest effect of interest). A metric counts for the claim when NsLoss is *consistent*ly
    above all three there, against it when another model is *consistent*ly above NsLoss.
    *Consistent* when most metrics count for it, *inconsistent* when most count against it,
    *inconclusive* otherwise; not judged when a model collapsed (``gate``)."""
    nsloss_label = cfg.nsloss_entry().label
    others = [label for label in (STANDARD, *cfg.labels()) if label != nsloss_label]
    separated = by_mean = beaten = 0
    listed = paper_metrics(cfg)
    for metric, label in listed.items():
        table = scores[scores.metric == label]
        smallest = _smallest(metric, table[table.method == STANDARD]["score"])
        table = table.assign(score=table["score"] if higher_is_better(metric) else -table["score"])
        judged = rules.orderings(table, [(nsloss_label, other) for other in others], smallest).values()
        separated += all(j.verdict == rules.CONSISTENT for j in judged)
        by_mean += all(j.mean > 0 for j in judged)
        beaten += any(j.verdict == rules.INCONSISTENT for j in judged)
    total = len(listed)
    most = total / 2
    verdict = rules.CONSISTENT if separated > most else rules.INCONSISTENT if beaten > most else rules.INCONCLUSIVE
    of = "the seven metrics" if total == len(SEVEN) else f"the {total} of the paper's metrics listed"
    return {
        "claim": f"{nsloss_label} is best of the four on most of {of}",
        "source": "moshe2022nsloss",
        "measure": f"metrics where the rule separates {nsloss_label} above all three others: {separated} of {total} "
        f"(best by mean: {by_mean}; another separated above it: {beaten})",
        "rule": "interval, per metric",
        "verdict": rules.NOT_JUDGED if gate or not total else verdict,
        "reason": gate or ("" if total else "none of the paper's metrics is listed"),
    }


def _correct(robust: pd.DataFrame, eps: float) -> pd.DataFrame:
    return robust[robust.eps.round(6) == round(eps, 6)]


def claims(
    cfg: NeuronSensitivityConfig,
    scores: pd.DataFrame,
    sweep: pd.DataFrame,
    curve: pd.DataFrame,
    robust: pd.DataFrame,
    autoattack: pd.DataFrame,
) -> pd.DataFrame:
    """The paper's claims under the book's rule (``robinterp.reports.rules``), on per-image
    tables paired on the same images and seeds, each metric with its smallest effect of interest
    (``robinterp.reports.effects``; relative sizes of the standard model's mean).

    1. Robust training beats standard training on the seven metrics (the paper's claim 1 names
       sensitivity, faithfulness and complexity; its Tables 3 and 4 report all seven, so all seven
       are judged), for each method: orderings.
    2. Contribution 2: JacobReg is approximately as effective as PGD-AT on each of the seven
       metrics: an equivalence within ``equivalence_share`` of PGD-AT's mean improvement over
       the standard model, and at least the metric's smallest effect. The margin rests on that
       improvement, so the claim is not judged where PGD-AT's improvement on the metric is not
       itself *consistent*. Contribution 3's "similarly low decline in accuracy": NsLoss's clean
       accuracy at most ``accuracy_margin`` points below each other method's.
    3. NsLoss is the best of the four on most of the seven metrics: ``best_of_four``.
    4. Under AutoAttack (Tables 3 and 4 agree on this much): every method is more robust than the
       standard model, and PGD-AT more robust than NsLoss and JacobReg: orderings.
    5. The text's percentages (116%, 500%, 266%, "twice as good"; Table 4's 317% and 156%): ratios
       of two models' means under the magnitude rule, the paper's value beside ours.
    6. Table 5 and Figure 4: a larger lambda, and more epochs, lower accuracy and max-sensitivity
       and raise faithfulness estimate and sparseness: trends over every seed.

    Validity gates: a claim about a model whose clean accuracy is below ``rules.COLLAPSE_FLOOR`` on
    a seed, or an NsLoss model more than ``NSLOSS_DISTANCE`` points below the standard model's
    mean clean accuracy on a seed (the paper's "similarly low decline"; a model that far below is
    not the method the paper describes but a lambda too large), is not judged.
    """
    rows = []
    labels = cfg.labels()
    clean = rules.clean_rows(robust)
    accuracy = rules.clean_accuracy(clean)
    nsloss_label = cfg.nsloss_entry().label
    nsloss_reason = _nsloss_far(accuracy, nsloss_label)

    def gate(*models: str) -> str:
        return rules.collapsed(accuracy, models) or (nsloss_reason if nsloss_label in models else "")

    listed = paper_metrics(cfg)
    reference = {
        metric: scores[(scores.metric == column) & (scores.method == STANDARD)]["score"]
        for metric, column in listed.items()
    }
    for label in labels:
        for metric, column in listed.items():
            higher = higher_is_better(metric)
            table = scores[scores.metric == column]
            diff = rules.paired(table, label, STANDARD) if higher else rules.paired(table, STANDARD, label)
            judged = rules.ordering(diff, _smallest(metric, reference[metric]))
            rows.append(
                {
                    "claim": f"{label} beats standard on {metric_title(metric)}",
                    "source": "moshe2022nsloss",
                    "measure": f"{metric_title(metric)}, {label} - standard ({'higher' if higher else 'lower'} is better; "
                    f"> 0: {label} better)",
                    **judged.gated(gate(label, STANDARD)).row(),
                }
            )
    jacob = next((e.label for e in cfg.methods if e.method == "jacobian_reg"), None)
    adversarial = next((e.label for e in cfg.methods if e.method == "pgd_at"), None)
    if jacob and adversarial:
        for metric, column in listed.items():
            higher = higher_is_better(metric)
            table = scores[scores.metric == column]
            smallest = _smallest(metric, reference[metric])
            oriented = rules.paired(table, adversarial, STANDARD)
            oriented = oriented if higher else oriented.assign(value=-oriented["value"])
            improvement = rules.ordering(oriented, smallest)
            margin = max(cfg.equivalence_share * abs(improvement.mean), smallest)
            claim = f"{jacob} is about as good as {adversarial} on {metric_title(metric)}"
            base = {
                "claim": claim,
                "source": "moshe2022nsloss",
                "measure": f"{metric_title(metric)}, {jacob} - {adversarial}, within {margin:.3g} "
                f"({cfg.equivalence_share:g} of {adversarial}'s improvement on standard, at least the metric's "
                "smallest effect)",
            }
            judged = rules.equivalence(rules.paired(table, jacob, adversarial), margin)
            unestablished = (
                ""
                if improvement.verdict == rules.CONSISTENT
                else f"the margin rests on {adversarial}'s improvement on standard, which is {improvement.verdict}"
            )
            rows.append({**base, **judged.gated(gate(jacob, adversarial, STANDARD) or unestablished).row()})
    for other in [label for label in labels if label != nsloss_label]:
        rows.append(
            {
                "claim": f"{nsloss_label}'s accuracy declines about as little as {other}'s "
                f"(at most {cfg.accuracy_margin:g} points lower)",
                "source": "moshe2022nsloss",
                "measure": f"clean accuracy on the {cfg.eval_size} attacked test images, {other} - {nsloss_label} (points)",
                # no NsLoss-distance gate here: this claim is about exactly that distance
                **rules.at_most(rules.paired(clean, other, nsloss_label, value="correct"), cfg.accuracy_margin)
                .gated(rules.collapsed(accuracy, (other,)))
                .row(),
            }
        )
    if adversarial:
        rows.append(
            {
                "claim": f"{adversarial} costs about 10 points of clean accuracy against standard",
                "source": "moshe2022nsloss",
                "where": 'section 5: "a cost of a 10% decrease in the clean test accuracy"',
                "measure": f"clean accuracy on the {cfg.eval_size} attacked test images, standard - {adversarial} "
                "(points)",
                "paper": 10.0,
                **rules.magnitude(
                    rules.paired(clean, STANDARD, adversarial, value="correct"), 10.0, effects.band("accuracy", 10.0)
                )
                .gated(gate(adversarial, STANDARD))
                .row(),
            }
        )
    rows.append(best_of_four(cfg, scores, gate(*labels, STANDARD)))
    attacked = _correct(autoattack, cfg.autoattack_eps)
    pairs = [(label, STANDARD) for label in labels]
    if adversarial:
        pairs += [(adversarial, label) for label in labels if label != adversarial]
    for a, b in pairs:
        rows.append(
            {
                "claim": f"{a} is more robust than {b} (AutoAttack, eps {cfg.autoattack_eps:g})",
                "source": "moshe2022nsloss",
                "measure": f"AutoAttack accuracy, {a} - {b} (points)",
                **rules.ordering(rules.paired(attacked, a, b, value="correct"), effects.smallest("accuracy"))
                .gated(gate(a, b))
                .row(),
            }
        )
    rows += _ratio_rows(cfg, scores, gate)
    # the sweep and the curve train NsLoss models of their own, gated on their own accuracy
    if sweep["factor"].nunique() > 1:
        rows += _trend_rows(sweep, "lambda", "Table 5", _curve_collapse(sweep, "lambda"))
    if curve["epoch"].nunique() > 1:
        rows += _trend_rows(curve, "epoch", "Figure 4", _curve_collapse(curve, "epoch"))
    return rules.with_data_set(pd.DataFrame(rows), cfg.dataset)


def _curve_collapse(table: pd.DataFrame, setting: str) -> str:
    """Why the trends of a sweep or a curve are not judged: a model along it below
    ``rules.COLLAPSE_FLOOR`` clean accuracy on a seed ("" when none is). Its maps then describe a
    network that predicts almost one class, and its accuracy falls because of our lambda, not the
    method."""
    right = table[table.metric == "test_accuracy"]
    per_seed = 100 * right.groupby([setting, "seed"])["score"].mean()
    low = per_seed[per_seed < rules.COLLAPSE_FLOOR]
    if low.empty:
        return ""
    at, seed = low.index[0]
    return f"collapsed: NsLoss at {setting} {at:g} reaches {low.iloc[0]:.0f}% on seed {seed}"


NSLOSS_DISTANCE = 10.0
"""How far (points) below the standard model's mean clean accuracy an NsLoss seed may fall before
its claims are not judged: the paper reports "a similarly low decline in accuracy" as PGD-AT's."""


def _nsloss_far(accuracy: pd.DataFrame, nsloss_label: str) -> str:
    standard = accuracy[accuracy.method == STANDARD]["accuracy"]
    if standard.empty:
        return ""
    floor = standard.mean() - NSLOSS_DISTANCE
    low = accuracy[(accuracy.method == nsloss_label) & (accuracy.accuracy < floor)]
    if low.empty:
        return ""
    worst = low.accuracy.min()
    return (
        f"{nsloss_label} is {standard.mean() - worst:.0f} points below standard's clean accuracy on seed "
        f"{', '.join(str(s) for s in sorted(low.seed))} (limit {NSLOSS_DISTANCE:g}): lambda too large"
    )


def paper_comparison(
    scores: pd.DataFrame, model: str = "preresnet10", metrics: tuple[MetricEntry, ...] | None = None
) -> pd.DataFrame:
    """Per metric of the paper's that ``metrics`` lists (None: the seven): the best method in the paper's table for ``model`` (Table 4 for VGG19, Table
    3 otherwise) and ours, under the book's rule: our best by mean is *our best* only when the
    ordering rule puts it *consistent*ly above every other method (the metric's smallest effect
    of interest); the row is then *consistent* or *inconsistent* with the paper's winner, and
    *inconclusive* when the rule separates no winner.

    Under the default profile data and networks differ (MNIST and a small CNN), so the
    levels are not comparable; which method wins a metric is.
    """
    from robinterp.paper_numbers import moshe_table

    paper, where = moshe_table(model)
    scored = scores[scores.method != "random attribution"]
    ours = scored.groupby(["metric", "method"])["score"].mean()
    rows = []
    # the paper's metrics that this run scored: a metric listed besides the paper's seven has no
    # paper column, and one the run left out has no scores
    for metric, label in _first_entries(entries(metrics)).items():
        if metric not in paper.columns or label not in ours.index.get_level_values("metric"):
            continue
        higher = higher_is_better(metric)
        column = paper[metric]
        pick = (lambda s: s.idxmax()) if higher else (lambda s: s.idxmin())
        # ties in the paper's rounded numbers (e.g. 0.0002 twice) count for every tied method
        paper_best = sorted(column.index[column == (column.max() if higher else column.min())])
        leader = pick(ours[label])
        table = scored[scored.metric == label]
        smallest = _smallest(metric, table[table.method == STANDARD]["score"])
        oriented = table.assign(score=table["score"] if higher else -table["score"])
        others = [m for m in ours[label].index if m != leader]
        judged = rules.orderings(oriented, [(leader, other) for other in others], smallest).values()
        separated = all(j.verdict == rules.CONSISTENT for j in judged)
        verdict = (
            (rules.CONSISTENT if leader in paper_best else rules.INCONSISTENT) if separated else rules.INCONCLUSIVE
        )
        rows.append(
            {
                "metric": metric,
                "better": "higher" if higher else "lower",
                **{f"paper {m}": column[m] for m in paper.index},
                "paper best": " = ".join(paper_best),
                "our best": leader if separated else f"none separated (by mean: {leader})",
                "verdict": verdict,
                "where": where,
            }
        )
    return pd.DataFrame(rows)


def comparison_view(comparison: pd.DataFrame) -> pd.DataFrame:
    """``paper_comparison`` as the page shows it: one row per metric by its title, the verdict
    and both winners first (a table wider than the page hides its last columns)."""
    shown = comparison.drop(columns=["where", "better"]).assign(metric=comparison["metric"].map(metric_title))
    shown = shown.set_index("metric")
    first = ["verdict", "our best", "paper best"]
    return shown[first + [c for c in shown.columns if c not in first]]


def agreement_view(agreement: pd.DataFrame) -> pd.DataFrame:
    """``quantus_agreement`` as the page shows it: metrics by their titles, the largest difference
    in scientific notation (most are round-off, 1e-7 to 1e-8)."""
    return pd.DataFrame(
        {
            "Quantus's mean": agreement["quantus_mean"].to_numpy(),
            "largest difference": agreement["largest_difference"].map("{:.1e}".format).to_numpy(),
            "agrees": agreement["agrees"].to_numpy(),
        },
        index=pd.Index(agreement["metric"].map(metric_title), name="metric"),
    )
