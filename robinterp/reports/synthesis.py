"""The benchmark's tables and figures' data: every method on every measure, the best of a column
only where the book's rule separates it from the next, Pareto fronts, rank agreement between
the interpretability measures, and which orderings survive a larger budget."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pandas as pd
from scipy import stats

from robinterp import explanation_quality
from robinterp.experiments.synthesis import INTERPRETABILITY, Measure
from robinterp.reports import effects, rules

SEPARATED = "★"  # marks a column's best when the rule separates it from the second best
HELD, UNSETTLED, FLIPPED = "held", "unsettled", "flipped"


def per_seed(per_image: pd.DataFrame) -> pd.DataFrame:
    """Each model's mean over images per measure. Tidy: method, seed, measure, value."""
    return per_image.groupby(["method", "seed", "measure"])["score"].mean().rename("value").reset_index()


def over_seeds(values: pd.Series) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval over seeds (NaN with one seed)."""
    values = values.dropna()
    n = len(values)
    if n < 2:
        return float(values.mean()) if n else math.nan, math.nan
    return float(values.mean()), float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def oriented(measure: Measure, value: float | pd.Series) -> float | pd.Series:
    """A value turned so that higher is better."""
    return value if measure.higher_is_better else -value


def best_two(means: pd.Series, measure: Measure) -> tuple[str, str]:
    """The best and second-best methods of a column by their mean (ties: listed order)."""
    order = oriented(measure, means).sort_values(ascending=False, kind="stable")
    return order.index[0], order.index[1]


def smallest(table: pd.DataFrame, measure: Measure) -> float:
    """``measure``'s smallest effect of interest (``robinterp.reports.effects``): accuracies,
    removal and ROAD gaps and ROAR in points; a Quantus metric or the alignment by its own size,
    relative sizes of the mean over every method (the benchmark has no one reference model)."""
    if measure.name in effects.EFFECTS or measure.name in effects.MEASURE_KEYS:
        return effects.smallest(measure.name, float(table["score"].mean()))
    return effects.smallest("accuracy")  # clean, per attack and radius, AutoAttack, ROAD gap


def ordering(per_image: pd.DataFrame, measure: Measure, better: str, worse: str) -> rules.Judgement:
    """The rule's ordering "``better`` beats ``worse``" on ``measure``, paired on images and seeds."""
    table = per_image[per_image.measure == measure.name]
    diff = rules.paired(table, better, worse) if measure.higher_is_better else rules.paired(table, worse, better)
    return rules.ordering(diff, smallest(table, measure))


def _orderings(
    table: pd.DataFrame, measure: Measure, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], rules.Judgement]:
    """``ordering`` for many (better, worse) pairs of one measure at once (``rules.orderings``)."""
    oriented_table = table.assign(score=oriented(measure, table["score"]))
    return rules.orderings(oriented_table, pairs, smallest(table, measure))


def collapsed_methods(records: pd.DataFrame, floor: float = rules.COLLAPSE_FLOOR) -> list[str]:
    """The methods with a seed below ``floor`` % clean accuracy (``test_accuracy`` of the training
    records, a fraction): collapsed models, which the benchmark neither crowns nor compares."""
    low = records[100 * records["test_accuracy"] < floor]
    return list(dict.fromkeys(low["method"]))


def benchmark(
    per_image: pd.DataFrame,
    measures: Sequence[Measure],
    labels: Sequence[str],
    cost: pd.Series | None = None,
    cost_measure: Measure | None = None,
    collapsed: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table a page shows, the numbers behind it). One row per method in ``labels``' order;
    one column per measure (its header carries its direction), "mean ± half-width of the 95%
    t-interval over seeds", the column's best marked only when the rule separates it from the
    second best; a ``collapsed`` method (``collapsed_methods``) is shown but is never a column's
    best or second. ``cost``: each method's median cost ratio (one number, no interval). The
    numbers: method, measure, mean, half_width, best (bool), separated (bool), versus (the second
    best)."""
    seeds = per_seed(per_image)
    rows, shown = [], pd.DataFrame(index=pd.Index(list(labels), name="method"))
    for measure in measures:
        values = seeds[seeds.measure == measure.name]
        scores = per_image[per_image.measure == measure.name]
        stats_ = {label: over_seeds(values.loc[values.method == label, "value"]) for label in labels}
        means = pd.Series({label: m for label, (m, _) in stats_.items() if label not in collapsed}).dropna()
        best, second = best_two(means, measure) if len(means) > 1 else (None, None)
        separated = best is not None and ordering(scores, measure, best, second).verdict == rules.CONSISTENT
        cells = []
        for label in labels:
            mean, half = stats_[label]
            digits = measure.digits
            text = (
                "—"
                if math.isnan(mean)
                else f"{mean:.{digits}f}" + ("" if math.isnan(half) else f" ± {half:.{digits}f}")
            )
            if label == best and separated:
                text += f" {SEPARATED}"
            cells.append(text)
            rows.append(
                {
                    "method": label,
                    "measure": measure.name,
                    "mean": mean,
                    "half_width": half,
                    "best": label == best,
                    "separated": bool(label == best and separated),
                    "versus": second if label == best else None,
                }
            )
        shown[measure.header] = cells
    if cost is not None and cost_measure is not None:
        shown[cost_measure.header] = [f"{cost[label]:.1f}" if label in cost else "—" for label in labels]
        rows += [
            {
                "method": label,
                "measure": cost_measure.name,
                "mean": float(cost.get(label, math.nan)),
                "half_width": math.nan,
                "best": False,
                "separated": False,
                "versus": None,
            }
            for label in labels
        ]
    return shown, pd.DataFrame(rows)


def spread_seeds(records: pd.DataFrame, points: float = 10.0) -> str:
    """The methods whose seeds' clean accuracies (``test_accuracy`` of the training records, a
    fraction) span more than ``points``, each with its seeds' accuracies, as markdown for prose
    ("none" if no method's do): one seed trained to another place than the others, and the
    method's ± in every column is that, not image noise."""
    accuracy = 100 * records.pivot_table(index="method", columns="seed", values="test_accuracy", sort=False)
    wide = accuracy[accuracy.max(axis=1) - accuracy.min(axis=1) > points]
    return (
        "; ".join(
            f"**{method}** (seeds {', '.join(f'{value:.1f}' for value in row.dropna())}%)"
            for method, row in wide.iterrows()
        )
        or "none"
    )


def pareto_front(x: pd.Series, y: pd.Series) -> pd.Series:
    """Whether each point is on the Pareto front of (x, y), both to be maximised: no other point is
    at least as good in both and better in one."""
    xs, ys = x.to_numpy(float), y.to_numpy(float)
    front = [
        not any(
            (xs[j] >= xs[i] and ys[j] >= ys[i]) and (xs[j] > xs[i] or ys[j] > ys[i]) for j in range(len(xs)) if j != i
        )
        for i in range(len(xs))
    ]
    return pd.Series(front, index=x.index)


def method_means(per_image: pd.DataFrame, measures: Sequence[Measure]) -> pd.DataFrame:
    """Methods x measures: each method's mean over seeds of its per-seed means."""
    seeds = per_seed(per_image)
    means = seeds.groupby(["method", "measure"])["value"].mean().unstack()
    return means[[m.name for m in measures if m.name in means]]


def rank_agreement(means: pd.DataFrame, measures: Sequence[Measure]) -> pd.DataFrame:
    """Spearman's correlation between the interpretability measures over the methods, each
    turned so that higher is better: 1 means two measures order the methods alike."""
    chosen = [m for m in measures if m.kind == INTERPRETABILITY and m.name in means]
    turned = pd.DataFrame({m.title: oriented(m, means[m.name]) for m in chosen})
    return turned.corr(method="spearman")


def budget_check(
    base: pd.DataFrame,
    larger: pd.DataFrame,
    measures: Sequence[Measure],
    labels: Sequence[str],
    collapsed: Sequence[str] = (),
) -> pd.DataFrame:
    """Per measure: the orderings of two methods that the rule separates at the chapter's budget
    (*consistent* over all its seeds), and whether each still holds at the larger budget (its
    seeds, paired on images): *held* when it is *consistent* there too, *flipped* when it is
    *inconsistent*, *unsettled* otherwise (a larger budget on one seed is never decisive: every
    ordering it checks is unsettled); and Spearman's correlation between the methods' means at
    the two budgets (same seeds only). A ``collapsed`` method (at either budget) is in no
    ordering."""
    rows = []
    budget_seeds = sorted(larger["seed"].unique())
    for measure in measures:
        here = base[base.measure == measure.name]
        there = larger[larger.measure == measure.name]
        if here.empty or there.empty:
            continue
        means = here.groupby("method")["score"].mean()
        counts = {HELD: 0, UNSETTLED: 0, FLIPPED: 0}
        pairs = [
            (a, b) if oriented(measure, means[a]) >= oriented(measure, means[b]) else (b, a)
            for a, b in itertools.combinations(
                [label for label in labels if label in means and label not in collapsed], 2
            )
        ]
        # every pair of a measure at once (rules.orderings): the same judgements as one by one
        separated = [
            pair for pair, judged in _orderings(here, measure, pairs).items() if judged.verdict == rules.CONSISTENT
        ]
        for later in _orderings(there, measure, separated).values():
            counts[
                HELD
                if later.verdict == rules.CONSISTENT
                else FLIPPED
                if later.verdict == rules.INCONSISTENT
                else UNSETTLED
            ] += 1
        same_seeds = here[here.seed.isin(budget_seeds)].groupby("method")["score"].mean()
        later_means = there.groupby("method")["score"].mean()
        both = same_seeds.index.intersection(later_means.index)
        # undefined for fewer than three methods or a measure on which all methods tie (ROAR in
        # a small run): said as NaN, not by scipy's warning on the reader's terminal
        varies = same_seeds[both].nunique() > 1 and later_means[both].nunique() > 1
        rho = stats.spearmanr(same_seeds[both], later_means[both]).statistic if len(both) > 2 and varies else math.nan
        rows.append(
            {
                "measure": measure.header,
                "kind": measure.kind,
                "separated pairs": sum(counts.values()),
                **counts,
                "rank correlation": float(rho),
            }
        )
    return pd.DataFrame(rows).set_index("measure")


def budget_note(seeds: int) -> str:
    """What the page says of the budget check's seeds: with one, the rule judges nothing there, so
    every ordering it checks is unsettled by construction and the check is silent either way."""
    if seeds >= 2:
        return ""
    return (
        "**The larger budget trains one seed**, so the rule, which judges nothing on one seed, leaves "
        "every ordering it checks unsettled: the check says nothing either way until `budget_seeds` "
        "lists two seeds or more (a budget this CPU book does not pay yet)."
    )


def pair_counts(check: pd.DataFrame) -> dict[str, int]:
    """Totals of the budget check over every measure."""
    return {key: int(check[key].sum()) for key in ("separated pairs", HELD, UNSETTLED, FLIPPED)}


def front_members(means: pd.DataFrame, robustness: str, measure: Measure) -> list[str]:
    """The methods on the Pareto front of robustness (higher better) against ``measure``."""
    frame = means[[robustness, measure.name]].dropna()
    mask = pareto_front(oriented(measure, frame[measure.name]), frame[robustness])
    return list(frame.index[mask])


def distinct_pairs(matrix: pd.DataFrame) -> pd.Series:
    """The entries above the diagonal of a symmetric matrix: one value per pair of rows."""
    n = len(matrix)
    return pd.Series(
        [matrix.iat[i, j] for i in range(n) for j in range(i + 1, n)],
        index=pd.MultiIndex.from_tuples(
            [(matrix.index[i], matrix.columns[j]) for i in range(n) for j in range(i + 1, n)]
        ),
    )


def table_parts(measures: Sequence[Measure]) -> dict[str, list[Measure]]:
    """The benchmark's columns in tables narrow enough for a page: robustness (with cost), the
    Quantus sensitivity metrics (the lower-is-better ones but complexity), the other Quantus
    metrics, removal and alignment."""
    quantus = [m for m in measures if m.metric]
    sensitivity = [
        m for m in quantus if not explanation_quality.get_metric(m.metric).higher_is_better and m.metric != "complexity"
    ]
    return {
        "robustness and cost": [m for m in measures if m.kind != INTERPRETABILITY],
        "Quantus: sensitivity": sensitivity,
        "Quantus: faithfulness and shape": [m for m in quantus if m not in sensitivity],
        "faithfulness by removal, and alignment": [
            m for m in measures if m.kind == INTERPRETABILITY and m not in quantus
        ],
    }
