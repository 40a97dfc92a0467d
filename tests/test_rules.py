"""The shared verdict rule on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robinterp.reports import rules


def diffs(means, images: int = 200, spread: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Paired differences: per seed, ``images`` draws around that seed's mean."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {"seed": s, "image": i, "value": m + spread * rng.standard_normal()}
            for s, m in enumerate(means)
            for i in range(images)
        ]
    )


@pytest.mark.parametrize(
    "means,spread,expected",
    [
        ((1.0, 1.2, 0.9), 0.5, "reproduced"),
        ((0.3, 0.4, -0.2), 0.5, "partly"),  # a seed disagrees
        ((-0.05, -0.1, 0.05), 1.0, "not reproduced"),
        ((-1.0, -1.1, -0.8), 0.5, "contradicted"),
    ],
)
def test_orderings_in_each_of_the_four_outcomes(means, spread, expected):
    assert rules.ordering(diffs(means, spread=spread)).verdict == expected


def test_higher_in_every_seed_is_not_enough_when_the_effect_is_noise():
    """What the old rule called reproduced: positive in all three seeds, but tiny against the
    image-to-image spread, so the interval includes 0."""
    judged = rules.ordering(diffs((0.02, 0.01, 0.03), images=50, spread=2.0, seed=3))
    per_seed = diffs((0.02, 0.01, 0.03), images=50, spread=2.0, seed=3).groupby("seed")["value"].mean()
    assert judged.low < 0 < judged.high
    assert judged.verdict in ("partly", "not reproduced")
    assert judged.verdict != "reproduced", per_seed.tolist()


def test_equivalence_within_a_margin():
    assert rules.equivalence(diffs((0.1, -0.1, 0.0), spread=0.5), margin=1.0).verdict == "reproduced"
    assert rules.equivalence(diffs((0.8, 0.9, 0.7), images=20, spread=2.0), margin=1.0).verdict == "partly"
    assert rules.equivalence(diffs((1.5, 1.3, 1.0), images=20, spread=3.0), margin=1.0).verdict == "not reproduced"
    assert rules.equivalence(diffs((-3.0, -3.2, -2.8), spread=0.5), margin=1.0).verdict == "contradicted"


def test_the_interval_is_reproducible_and_over_seeds_when_asked():
    d = diffs((1.0, 2.0, 3.0), images=10, spread=0.1)
    assert rules.ordering(d) == rules.ordering(d)
    over_seeds = rules.ordering(d, over="seeds")
    assert (
        over_seeds.low >= 1.0 - 0.1 and over_seeds.high <= 3.0 + 0.1 and over_seeds.mean == pytest.approx(2.0, abs=0.05)
    )
    with pytest.raises(ValueError, match="over must be one of"):
        rules.bootstrap(d, over="pixels")


def test_paired_differences_match_on_seed_and_image_and_refuse_ambiguous_rows():
    table = pd.DataFrame(
        {
            "method": ["A", "A", "B", "B", "B"],
            "seed": [0, 0, 0, 0, 1],
            "image": [0, 1, 1, 0, 0],
            "score": [5.0, 7.0, 1.0, 2.0, 9.0],
        }
    )
    out = rules.paired(table, "A", "B").sort_values("value")
    assert out["value"].tolist() == [3.0, 6.0] and out["seed"].tolist() == [0, 0]
    twice = pd.concat([table, table.iloc[[0]]])
    with pytest.raises(ValueError, match="two rows for one of"):
        rules.paired(twice, "A", "B")


def test_images_shared_by_every_seed_are_resampled_together():
    """An image hard for one seed's model is hard for all: its differences are correlated across
    seeds, and resampling each seed apart would make the interval too narrow."""
    rng = np.random.default_rng(1)
    per_image = rng.standard_normal(200)
    shared = pd.DataFrame(
        [
            {"seed": s, "image": i, "value": 0.1 + u + 0.3 * rng.standard_normal()}
            for s in range(3)
            for i, u in enumerate(per_image)
        ]
    )
    joint = rules.ordering(shared)
    apart = rules.ordering(shared.drop(columns="image"))  # no image ids: resampled within seeds
    assert (joint.high - joint.low) > 1.4 * (apart.high - apart.low)


def test_missing_values_are_left_out_and_counted():
    d = diffs((1.0,), images=100, spread=0.1)
    d.loc[3, "value"] = np.nan
    judged = rules.ordering(d)
    assert judged.verdict == "reproduced" and (judged.n, judged.missing) == (99, 1)
    assert np.isfinite([judged.low, judged.high]).all()


def test_an_equivalence_needs_every_seed_within_the_margin():
    judged = rules.equivalence(diffs((1.2, -1.2, 0.0), images=500, spread=0.5), margin=1.0)
    assert -1.0 < judged.low and judged.high < 1.0, "the interval alone would pass"
    assert judged.verdict == "partly" and judged.seeds_agreeing == 1


def trend_table(slope: float, seeds: int = 2, images: int = 100, spread: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """A measure per seed, setting x and image: slope * x plus noise."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {"seed": s, "x": x, "image": i, "value": slope * x + spread * rng.standard_normal()}
            for s in range(seeds)
            for x in (1.0, 2.0, 3.0, 4.0)
            for i in range(images)
        ]
    )


@pytest.mark.parametrize(
    "slope,spread,expected",
    [
        (1.0, 0.5, "reproduced"),
        (-1.0, 0.5, "contradicted"),
    ],
)
def test_trends_by_rank_correlation(slope, spread, expected):
    judged = rules.trend(trend_table(slope, spread=spread))
    assert judged.verdict == expected
    assert judged.mean == pytest.approx(1.0 if slope > 0 else -1.0)


def test_a_flat_trend_is_not_reproduced_by_a_lucky_ordering():
    """No slope: the settings' means are in some order, but the interval spans 0."""
    judged = rules.trend(trend_table(0.0, spread=1.0, seed=5))
    assert judged.low < 0 < judged.high and judged.verdict != "reproduced"


def test_a_trends_interval_is_the_percentiles_of_the_resampled_spearman_means():
    """The rule's definition, one resample at a time: images drawn with replacement (the same for
    every seed and setting), each seed's Spearman correlation of its settings' means with the
    setting, averaged over seeds; the interval is the 2.5th and 97.5th percentiles."""
    from scipy.stats import spearmanr

    table = trend_table(0.2, seeds=3, images=30, spread=1.0, seed=3)
    values = table.sort_values(["image", "seed", "x"])["value"].to_numpy().reshape(30, 3, 4)
    rng = np.random.default_rng(rules.BOOTSTRAP_SEED)
    draws = []
    for _ in range(200):
        means = values[rng.integers(0, 30, 30)].mean(0)
        draws.append(np.mean([spearmanr(row, [1, 2, 3, 4]).statistic for row in means]))
    judged = rules.trend(table, n_boot=200)
    assert (judged.low, judged.high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-12)


def test_a_trend_needs_two_settings_and_counts_what_it_leaves_out():
    table = trend_table(1.0, spread=0.1)
    with pytest.raises(ValueError, match="two settings"):
        rules.trend(table[table.x == 1.0])
    holed = table.copy()
    holed.loc[0, "value"] = np.nan  # one image unmeasured at one setting: that image is left out
    judged = rules.trend(holed.dropna())
    assert judged.n == 2 * 99 and judged.missing == 2  # image-seed pairs, as for an ordering


@pytest.mark.parametrize(
    "means,spread,expected",
    [
        ((0.0, 0.1, -0.1), 0.5, "reproduced"),  # no improvement, none beyond the margin possible
        ((-3.0, -2.5, -3.2), 0.5, "reproduced"),  # clearly worse is also no better
        ((0.8, 0.9, 0.7), 5.0, "partly"),  # the interval reaches past the margin
        ((1.2, 1.3, 1.1), 4.0, "not reproduced"),  # the mean is past it, the interval not wholly
        ((3.0, 3.2, 2.9), 0.5, "contradicted"),
    ],
)
def test_at_most_a_margin_of_improvement(means, spread, expected):
    """The rule for "A does not improve on B": the improvement of A over B stays within the margin."""
    assert rules.at_most(diffs(means, spread=spread), margin=1.0).verdict == expected


def test_a_trend_refuses_two_values_for_one_image_setting_and_seed():
    table = trend_table(1.0, spread=0.1)
    with pytest.raises(ValueError, match="two values"):
        rules.trend(pd.concat([table, table.iloc[:1]]))


@pytest.mark.parametrize(
    "effect,low,high,shown",
    [
        (16.43, 12.71, 20.0, "16.4 [12.7, 20.0]"),
        (0.0123, 0.001, 0.05, "0.0123 [0.0010, 0.0500]"),
        (250.3, 99.6, 401.0, "250 [100, 401]"),
        (-1.5, -3.25, 0.04, "-1.50 [-3.25, 0.04]"),
        (0.0, 0.0, 0.0, "0 [0, 0]"),
        (2.0, float("nan"), float("nan"), "2.00 [\u2014, \u2014]"),
    ],
)
def test_an_interval_shows_its_three_numbers_with_the_same_decimals(effect, low, high, shown):
    assert rules.effect_text(effect, low, high) == shown


def test_the_page_view_puts_the_verdict_first_and_the_interval_in_one_cell():
    verdicts = pd.DataFrame(
        {
            "claim": ["A beats B", "best of four"],
            "measure": ["acc", "counted in 2 of 3 seeds"],
            "effect": [1.23456, float("nan")],
            "low": [0.5, float("nan")],
            "high": [2.0, float("nan")],
            "n": [750.0, float("nan")],
            "seeds agreeing": ["3 of 3", "2 of 3"],
            "verdict": ["reproduced", "partly"],
        }
    )
    view = rules.page_view(verdicts)
    assert list(view.columns)[0] == "verdict" and view.loc["A beats B", "effect [95% interval]"] == "1.23 [0.50, 2.00]"
    assert view.loc["best of four", "effect [95% interval]"] == "counted in 2 of 3 seeds"
    assert view.loc["A beats B", "n"] == 750 and view.loc["best of four", "n"] == "—"
    assert "paper" not in view  # no magnitude among the rows
    with_paper = rules.page_view(verdicts.assign(paper=[35.0, float("nan")]))
    assert list(with_paper.columns)[:3] == ["verdict", "effect [95% interval]", "paper"]
    assert with_paper["paper"].tolist() == ["35", "—"]


@pytest.mark.parametrize("over,images_column", [("images", True), ("images", False), ("seeds", True)])
def test_the_bootstrap_equals_resampling_by_hand(over, images_column):
    """The bootstrap keeps its resamples as counts, drawn once per size; its interval must equal
    the textbook one: draw indices with replacement from the same generator, average, take the
    2.5 and 97.5 percentiles."""
    d = diffs((0.2, 0.5, 0.1), images=40, spread=1.0)
    if not images_column:
        d = d.drop(columns="image").iloc[:-3]  # seeds of unequal size: resampled within each seed
    mean, low, high, _ = rules.bootstrap(d, over=over, n_boot=500)
    rng = np.random.default_rng(rules.BOOTSTRAP_SEED)
    if over == "seeds":
        values = d.groupby("seed")["value"].mean().to_numpy()
        draws = values[rng.integers(0, len(values), (500, len(values)))].mean(axis=1)
    elif images_column:
        values = d.pivot(index="image", columns="seed", values="value").to_numpy()
        draws = values[rng.integers(0, len(values), (500, len(values)))].mean(axis=1).mean(axis=1)
    else:
        groups = [g["value"].to_numpy() for _, g in d.groupby("seed")]
        draws = sum(v[rng.integers(0, len(v), (500, len(v)))].mean(axis=1) for v in groups) / len(groups)
    assert (low, high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-12)
    assert mean == pytest.approx(d.groupby("seed")["value"].mean().mean())


@pytest.mark.parametrize(
    "means,paper,expected",
    [
        ((35.0, 34.0, 36.0), 35.0, "reproduced"),  # the paper's value inside the interval
        ((10.0, 12.0, 11.0), 35.0, "partly"),  # the direction holds, the size does not
        ((-10.0, -12.0, -11.0), 35.0, "contradicted"),  # the other way
        ((0.5, -0.5, 0.2), 35.0, "not reproduced"),  # no effect either way, nor the paper's
        ((-20.0, -21.0, -19.0), -20.0, "reproduced"),  # a claimed drop
        ((-5.0, -6.0, -4.0), -20.0, "partly"),
    ],
)
def test_magnitudes_in_each_of_the_four_outcomes(means, paper, expected):
    judged = rules.magnitude(diffs(means, spread=2.0), paper)
    assert judged.verdict == expected, judged
    assert judged.seeds_agreeing == (3 if expected in ("reproduced", "partly") else judged.seeds_agreeing)


def test_a_level_is_reproduced_only_when_the_papers_value_is_inside():
    """A level (an accuracy) has no direction: a value far below the paper's is not "partly"."""
    assert rules.magnitude(diffs((98.8, 98.7, 98.9), spread=1.0), 98.8, null=None).verdict == "reproduced"
    low = rules.magnitude(diffs((90.0, 91.0, 89.0), spread=1.0), 98.8, null=None)
    assert low.verdict == "not reproduced" and low.high < 98.8 and low.row()["seeds agreeing"] == "—"


def test_a_ratio_of_means_with_its_interval():
    """B's scores are A's halved, image by image: the ratio is 2 exactly, and the interval too."""
    rng = np.random.default_rng(5)
    a = pd.DataFrame([{"seed": s, "image": i, "a": 1 + rng.random()} for s in range(3) for i in range(100)])
    pairs = a.assign(b=a["a"] / 2)
    judged = rules.ratio(pairs, 2.0)
    assert judged.mean == pytest.approx(2.0) and judged.low == pytest.approx(2.0) and judged.high == pytest.approx(2.0)
    assert judged.verdict == "reproduced" and judged.n == 300 and judged.seeds_agreeing == 3
    far = rules.ratio(pairs.assign(b=pairs["a"] / (1.5 + 0.5 * rng.random(len(pairs)))), 116.0)
    assert far.verdict == "partly" and 1.5 < far.low < far.high < 2.0  # a reduction, not 116-fold
    assert rules.ratio(pairs.assign(b=pairs["a"] * 2), 116.0).verdict == "contradicted"


def test_paired_values_keep_both_models_side_by_side():
    table = pd.DataFrame(
        {"method": ["A", "A", "B", "B"], "seed": [0, 0, 0, 0], "image": [0, 1, 1, 0], "score": [1.0, 2.0, 5.0, 4.0]}
    )
    both = rules.paired_values(table, "A", "B").sort_values("image")
    assert both[["a", "b"]].to_numpy().tolist() == [[1.0, 4.0], [2.0, 5.0]]


def test_a_trend_does_not_depend_on_the_order_of_its_rows():
    """Rows setting by setting (not seed by seed) once scrambled the seeds' columns."""
    rows = [
        {"x": x, "seed": seed, "image": i, "value": mean + 0.01 * seed + 0.001 * i}
        for x, mean in ((1.0, 0.5), (2.0, 0.4), (3.0, 0.45))
        for seed in (0, 1)
        for i in range(20)
    ]
    table = pd.DataFrame(rows)
    judged = rules.trend(table)
    assert judged == rules.trend(table.sample(frac=1, random_state=0))
    assert judged.mean == pytest.approx(-0.5) and judged.seeds_agreeing == 0


def test_many_orderings_at_once_equal_the_rule_pair_by_pair():
    rng = np.random.default_rng(11)
    table = pd.DataFrame(
        [
            {"method": m, "seed": s, "image": i, "score": shift + rng.standard_normal()}
            for m, shift in (("A", 0.0), ("B", 0.3), ("C", 0.05), ("D", 0.3))
            for s in range(3)
            for i in range(60)
        ]
    )
    table.loc[(table.method == "D") & (table.image == 0) & (table.seed == 1), "score"] = np.nan  # D: one pair by one
    pairs = [("B", "A"), ("C", "A"), ("A", "B"), ("D", "A"), ("B", "C")]
    fast = rules.orderings(table.sample(frac=1, random_state=1), pairs)
    for a, b in pairs:
        slow = rules.ordering(rules.paired(table, a, b))
        got = fast[a, b]
        assert got.verdict == slow.verdict and (got.n, got.missing, got.seeds_agreeing) == (
            slow.n,
            slow.missing,
            slow.seeds_agreeing,
        )
        assert (got.mean, got.low, got.high) == pytest.approx((slow.mean, slow.low, slow.high), abs=1e-12)
    assert fast["B", "A"].verdict == "reproduced" and fast["A", "B"].verdict == "contradicted"


def test_a_tally_counts_every_verdict_in_the_order_of_the_levels():
    verdicts = ["contradicted", "partly", "reproduced", "partly", "not reproduced", "partly"]
    assert rules.tally(verdicts) == "**1** reproduced, **3** partly, **1** not reproduced and **1** contradicted"
    assert rules.tally(pd.Series(["contradicted", "reproduced", "contradicted"])) == (
        "**1** reproduced and **2** contradicted"
    )
    assert rules.tally(["partly"]) == "**1** partly" and rules.tally([]) == "none"
    with pytest.raises(ValueError, match="not a verdict level: maybe"):
        rules.tally(["reproduced", "maybe"])


def test_a_mean_over_one_seed_shows_no_spread():
    from robinterp.reports import mean_sd

    one = pd.Series([94.6])
    assert mean_sd(one.mean(), one.std()) == "94.6"  # pandas' sd of one value is NaN, not 0
    three = pd.Series([94.6, 94.6, 93.0])
    assert mean_sd(three.mean(), three.std()) == "94.1 ± 0.92"
