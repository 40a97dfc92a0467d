"""The shared verdict rule on synthetic data whose answer is known, and its calibration: under no
effect the rule gives a decisive verdict in at most 5% of comparisons, at every seed and image
count the profiles use."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robinterp.reports import effects, rules


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
        ((5.0, 5.2, 4.9, 5.1, 5.0), 0.5, rules.CONSISTENT),
        ((-5.0, -5.2, -4.9, -5.1, -5.0), 0.5, rules.INCONSISTENT),
        ((0.05, -0.05, 0.0, 0.02, -0.02), 0.2, rules.NO_DIFFERENCE),
        ((3.0, -1.0, 4.0), 0.5, rules.INCONCLUSIVE),
    ],
)
def test_an_ordering_in_each_of_the_four_levels(means, spread, expected):
    assert rules.ordering(diffs(means, spread=spread), smallest=1.0).verdict == expected


def test_seed_to_seed_spread_widens_the_interval_an_image_bootstrap_would_hide():
    """The SGT page's case: ASGT - AT-FGSM per seed 23.2, 20.8 and 5.2 points on 1000 images. Every
    seed points the claimed way, and an interval over images alone is about +-3 points; over
    the three networks it is about +-25, so the claim is inconclusive."""
    judged = rules.ordering(diffs((23.2, 20.8, 5.2), images=1000, spread=30.0), smallest=1.0)
    assert judged.seeds_agreeing == 3 and judged.verdict == rules.INCONCLUSIVE
    assert judged.high - judged.low > 40


def test_with_no_image_noise_the_interval_is_the_t_interval_over_per_seed_means():
    d = diffs((1.0, 2.0, 4.0, 3.0), images=20, spread=0.0)
    judged = rules.ordering(d, smallest=0.5)
    per_seed = np.array([1.0, 2.0, 4.0, 3.0])
    low, high = stats.t.interval(0.95, 3, loc=per_seed.mean(), scale=stats.sem(per_seed))
    assert (judged.low, judged.high) == pytest.approx((low, high))
    over_seeds = rules.ordering(d, smallest=0.5, over="seeds")
    assert (over_seeds.low, over_seeds.high) == pytest.approx((low, high)) and over_seeds.n == 80


def test_the_images_shared_by_every_seed_add_their_own_term():
    """Identical networks (no seed term) measured on the same noisy images: the per-seed means
    agree exactly, yet the test set's sampling remains, and the interval keeps it."""
    rng = np.random.default_rng(2)
    image_effect = rng.normal(1.0, 5.0, 400)
    d = pd.DataFrame([{"seed": s, "image": i, "value": v} for s in range(3) for i, v in enumerate(image_effect)])
    judged = rules.ordering(d, smallest=0.5)
    se = image_effect.std(ddof=1) / math.sqrt(len(image_effect))
    half = stats.t.ppf(0.975, 2) * se
    assert (judged.low, judged.high) == pytest.approx((image_effect.mean() - half, image_effect.mean() + half))


def test_one_seed_is_not_judged_and_says_why():
    judged = rules.ordering(diffs((5.0,), images=500, spread=0.1), smallest=1.0)
    assert judged.verdict == rules.NOT_JUDGED and "one seed" in judged.reason
    assert math.isnan(judged.low) and judged.mean == pytest.approx(5.0, abs=0.05)


def test_missing_values_are_left_out_counted_and_too_many_leave_a_claim_unjudged():
    d = diffs((5.0, 5.1, 4.9), images=100, spread=0.1)
    few = rules.ordering(d.assign(value=d["value"].where(d.index % 10 != 0)), smallest=1.0)
    assert few.missing == 30 and few.n == 270 and few.verdict == rules.CONSISTENT
    many = rules.ordering(d.assign(value=d["value"].where(d.index % 3 != 0)), smallest=1.0)
    assert many.verdict == rules.NOT_JUDGED and "undefined" in many.reason


def test_a_gate_keeps_the_numbers_and_withholds_the_verdict():
    judged = rules.ordering(diffs((5.0, 5.1, 4.9)), smallest=1.0)
    assert judged.gated("") is judged
    gated = judged.gated("collapsed: X below 50% clean accuracy (seed 1)")
    assert gated.verdict == rules.NOT_JUDGED and gated.mean == judged.mean and gated.row()["reason"].startswith("coll")


def test_a_collapsed_model_is_named_with_its_seed():
    accuracy = pd.DataFrame({"method": ["A", "A", "B"], "seed": [0, 1, 0], "accuracy": [98.0, 9.7, 97.0]})
    assert rules.collapsed(accuracy, ["B"]) == ""
    assert rules.collapsed(accuracy, ["B", "A"]) == "collapsed: A below 50% clean accuracy (seed 1)"
    correct = pd.DataFrame({"method": ["A"] * 4, "seed": [0, 0, 1, 1], "correct": [100, 0, 100, 100]})
    assert rules.clean_accuracy(correct)["accuracy"].tolist() == [50.0, 100.0]


def test_equivalence_at_most_and_at_least():
    tight = diffs((0.1, -0.1, 0.0, 0.05), spread=0.5)
    assert rules.equivalence(tight, margin=1.0).verdict == rules.CONSISTENT
    assert rules.equivalence(diffs((-3.0, -3.2, -2.8), spread=0.5), margin=1.0).verdict == rules.INCONSISTENT
    assert rules.equivalence(diffs((0.5, 2.5, -1.0)), margin=1.0).verdict == rules.INCONCLUSIVE
    assert rules.at_most(tight, margin=1.0).verdict == rules.CONSISTENT
    assert rules.at_most(diffs((3.0, 3.2, 2.9)), margin=1.0).verdict == rules.INCONSISTENT
    assert rules.at_least(diffs((36.0, 36.2, 35.9)), 35.0, 0.5).verdict == rules.CONSISTENT
    assert rules.at_least(diffs((20.0, 21.0, 19.0)), 35.0, 0.5).verdict == rules.INCONSISTENT
    with pytest.raises(ValueError, match="margin must be > 0"):
        rules.equivalence(tight, margin=0.0)


@pytest.mark.parametrize(
    "means,paper,expected",
    [
        ((35.0, 35.2, 34.8, 35.1), 35.0, rules.CONSISTENT),  # inside the band of +-1 point
        ((10.0, 12.0, 11.0), 35.0, rules.INCONSISTENT),  # wholly outside it
        ((30.0, 40.0, 35.0), 35.0, rules.INCONCLUSIVE),  # too wide to say
    ],
)
def test_magnitudes_judged_against_a_band_around_the_papers_value(means, paper, expected):
    judged = rules.magnitude(diffs(means, spread=2.0), paper, effects.band("accuracy", paper))
    assert judged.verdict == expected, judged
    assert judged.smallest == 1.0


def test_a_ratio_of_means_with_its_interval():
    """B's scores are A's halved, image by image: the ratio is 2 exactly, and the interval too."""
    rng = np.random.default_rng(5)
    a = pd.DataFrame([{"seed": s, "image": i, "a": 1 + rng.random()} for s in range(3) for i in range(100)])
    pairs = a.assign(b=a["a"] / 2)
    judged = rules.ratio(pairs, 2.0, band=0.2)
    assert judged.mean == pytest.approx(2.0) and judged.low == pytest.approx(2.0) and judged.high == pytest.approx(2.0)
    assert judged.verdict == rules.CONSISTENT and judged.n == 300 and judged.seeds_agreeing == 3
    assert rules.ratio(pairs, 116.0, band=11.6).verdict == rules.INCONSISTENT


def trend_table(slope: float, seeds: int = 3, images: int = 100, spread: float = 1.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xs = (0.5, 1.0, 2.0, 4.0)
    return pd.DataFrame(
        [
            {"x": x, "seed": s, "image": i, "value": slope * k + spread * rng.standard_normal()}
            for s in range(seeds)
            for i in range(images)
            for k, x in enumerate(xs)
        ]
    )


def test_a_trend_is_the_fitted_change_over_the_settings_placed_evenly():
    """Values growing by one unit per setting (a geometric grid): the fitted change from the first
    to the last setting is 3 units, whatever the settings' own values."""
    judged = rules.trend(trend_table(1.0, spread=0.0), smallest=1.0)
    assert judged.mean == pytest.approx(3.0) and judged.verdict == rules.CONSISTENT
    assert rules.trend(trend_table(-1.0, spread=0.1), smallest=1.0).verdict == rules.INCONSISTENT


def test_a_small_non_monotone_wobble_is_no_trend():
    """Three settings, a rise of 0.4 then a fall: a 3-point rank correlation called this a trend."""
    rows = pd.DataFrame(
        [
            {"x": x, "seed": s, "image": i, "value": v + 0.05 * s}
            for s in range(3)
            for i in range(50)
            for x, v in zip((1, 10, 100), (0.0, 0.4, 0.3))
        ]
    )
    assert rules.trend(rows, smallest=1.0).verdict == rules.NO_DIFFERENCE


def test_a_trend_needs_two_settings_refuses_ambiguity_and_ignores_row_order():
    table = trend_table(0.5)
    with pytest.raises(ValueError, match="two settings"):
        rules.trend(table[table.x == 0.5], smallest=1.0)
    with pytest.raises(ValueError, match="ambiguous"):
        rules.trend(pd.concat([table, table.iloc[[0]]]), smallest=1.0)
    shuffled = table.sample(frac=1.0, random_state=3)
    assert rules.trend(shuffled, smallest=1.0) == rules.trend(table, smallest=1.0)


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
    with pytest.raises(ValueError, match="two rows for one of"):
        rules.paired(pd.concat([table, table.iloc[[0]]]), "A", "B")


def test_many_orderings_at_once_equal_the_rule_pair_by_pair():
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        [
            {"method": m, "seed": s, "image": i, "score": shift + rng.standard_normal()}
            for m, shift in (("A", 2.0), ("B", 0.0), ("C", 0.1))
            for s in range(3)
            for i in range(60)
        ]
    )
    pairs = [("A", "B"), ("A", "C"), ("C", "B")]
    many = rules.orderings(table, pairs, 0.5)
    for a, b in pairs:
        assert many[a, b] == rules.ordering(rules.paired(table, a, b), 0.5)


# ---------------------------------------------------------------- calibration


@pytest.mark.parametrize("seeds", rules.CALIBRATION_SEEDS)
@pytest.mark.parametrize("images", rules.CALIBRATION_IMAGES)
def test_under_no_effect_at_most_5_percent_of_verdicts_are_decisive(seeds, images):
    """The rule as shipped, on simulated models with no true difference whose accuracy varies from
    seed to seed (sd 2 points): a decisive verdict is an error, and it must be rare."""
    rates = rules.simulate_no_effect(seeds, images)
    assert rates["decisive"] <= 0.05, rates


def test_the_interval_alone_is_a_5_percent_test_so_the_smallest_effect_is_not_what_calibrates_it():
    """With a negligible smallest effect the rule is a plain two-sided test on the interval; it
    must hold its 5% too (within the simulation's error), else the margin would hide a bias."""
    rates = rules.simulate_no_effect(3, 1000, smallest=1e-9, trials=800)
    assert rates["decisive"] <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 800), rates


def test_at_the_smallest_effect_itself_consistent_comes_up_at_most_5_percent():
    """The boundary null of a minimum-effect test: a true gain exactly the smallest effect."""
    rates = rules.simulate_no_effect(5, 2000, effect=1.0, seed_sd=0.5)
    assert rates[rules.CONSISTENT] <= 0.05, rates


def test_an_image_only_interval_would_fail_the_same_calibration():
    """The rule before this one resampled images only; on the same simulation it called pure
    training noise decisive far more often than 5% (what the calibration guards against)."""
    rng = np.random.default_rng(0)
    decisive = 0
    for _ in range(100):
        p = np.clip(80 + 2 * rng.standard_normal((2, 5)), 0, 100) / 100
        values = 100.0 * ((rng.random((2000, 5)) < p[0]).astype(float) - (rng.random((2000, 5)) < p[1]))
        image_only = values.mean(axis=1).std(ddof=1) / math.sqrt(len(values))
        decisive += abs(values.mean()) > 1.96 * image_only
    assert decisive / 100 > 0.2


def test_the_power_the_methods_page_quotes():
    """The methods page quotes ``power_table``: with five seeds (sd 2 points) an 8-point gain is
    called consistent in at least 80% of simulated comparisons; with three, far less often."""
    power = rules.power_table(trials=200)
    assert power.loc[5, "8 points"] >= 80
    assert power.loc[3, "8 points"] < power.loc[5, "8 points"]
    assert power.loc[5, "3 points"] < power.loc[5, "8 points"]


def test_a_page_says_how_many_decisive_verdicts_chance_would_give():
    verdicts = pd.DataFrame(
        {
            "verdict": [rules.CONSISTENT, rules.INCONCLUSIVE, rules.NOT_JUDGED, "not run (no SGT model)"],
            "n": [750, 750, 250, float("nan")],
            "seeds agreeing": ["3 of 3", "2 of 3", "1 of 1", None],
        }
    )
    text = rules.chance_text(verdicts)
    assert "2 claims" in text and "3 seeds and 250 images" in text
    assert "one seed" in rules.chance_decisive(4, 1, 100)


def test_the_methods_section_lists_every_smallest_effect_and_the_calibration():
    text = rules.methods_markdown(trials=50)
    assert all(effect.title in text for effect in effects.EFFECTS.values())
    assert "| seeds | images | decisive (%)" in text and "**Power.**" in text


# ---------------------------------------------------------------- smallest effects and how pages show verdicts


def test_smallest_effects_absolute_relative_and_the_papers_rounding():
    assert effects.smallest("accuracy") == 1.0 and effects.smallest("removal_gap") == 1.0
    assert effects.smallest("max_sensitivity", -0.02) == pytest.approx(0.001)
    with pytest.raises(ValueError, match="reference mean"):
        effects.smallest("complexity")
    with pytest.raises(KeyError, match="no smallest effect"):
        effects.smallest("a toy metric")
    assert effects.rounding(98.8) == pytest.approx(0.05) and effects.rounding(35.0) == 0.5
    assert effects.rounding(0.0002) == pytest.approx(0.00005)
    assert effects.band("accuracy", 98.8) == 1.0 and effects.band("sparseness", 0.0002) == 0.01
    assert effects.smallest("alignment", 4.0) == pytest.approx(0.2)  # Etmann's alignment has the images' scale


@pytest.mark.parametrize(
    "effect,low,high,shown",
    [
        (16.4, 12.7, 20.0, "16.4 [12.7, 20.0]"),
        (0.0, 0.0, 0.0, "0 [0, 0]"),
        (0.01234, -0.002, 0.0301, "0.0123 [-0.0020, 0.0301]"),
        (2.0, float("nan"), float("nan"), "2.00 [\u2014, \u2014]"),
    ],
)
def test_an_interval_shows_its_three_numbers_with_the_same_decimals(effect, low, high, shown):
    assert rules.effect_text(effect, low, high) == shown


def test_the_page_view_puts_the_verdict_and_its_reason_first():
    verdicts = pd.DataFrame(
        {
            "claim": ["A beats B", "best of four", "C beats D"],
            "measure": ["acc", "counted in 2 of 7 metrics", "acc"],
            "effect": [1.23456, float("nan"), 5.0],
            "low": [0.5, float("nan"), float("nan")],
            "high": [2.0, float("nan"), float("nan")],
            "smallest effect": [1.0, float("nan"), 1.0],
            "n": [750.0, float("nan"), 250.0],
            "seeds agreeing": ["3 of 3", None, "1 of 1"],
            "verdict": [rules.INCONCLUSIVE, rules.CONSISTENT, rules.NOT_JUDGED],
            "reason": ["", "", "one seed: training variance cannot be estimated"],
        }
    )
    view = rules.page_view(verdicts)
    assert list(view.columns)[:3] == ["verdict", "effect [95% interval]", "δ"]
    assert view.loc["A beats B", "effect [95% interval]"] == "1.23 [0.50, 2.00]"
    assert view.loc["best of four", "effect [95% interval]"] == "counted in 2 of 7 metrics"
    assert view.loc["C beats D", "verdict"] == "not judged (one seed: training variance cannot be estimated)"
    assert view.loc["A beats B", "n"] == 750 and view.loc["best of four", "n"] == "—"
    with_paper = rules.page_view(verdicts.assign(paper=[35.0, float("nan"), float("nan")]))
    assert with_paper["paper"].tolist() == ["35", "—", "—"]


def test_a_tally_counts_every_verdict_in_the_order_of_the_levels():
    verdicts = [rules.INCONSISTENT, rules.CONSISTENT, rules.NOT_JUDGED, rules.CONSISTENT, "not run (no X)"]
    assert rules.tally(verdicts) == ("**2** consistent, **1** inconsistent, **1** not judged and **1** not run")
    assert rules.tally([rules.INCONCLUSIVE]) == "**1** inconclusive" and rules.tally([]) == "none"


def test_one_missing_value_leaves_its_image_out_in_every_seed_not_the_shared_term():
    """The same images in every seed share their term: a value missing in one seed must not turn
    the interval into one that treats the seeds' images as independent (S times too small a term)."""
    rng = np.random.default_rng(4)
    image_effect = rng.normal(0.0, 1.0, 500)
    d = pd.DataFrame(
        [
            {"seed": s, "image": i, "value": v + 0.1 * rng.standard_normal()}
            for s in range(3)
            for i, v in enumerate(image_effect)
        ]
    )
    full = rules.estimate(d)
    holed = rules.estimate(d.assign(value=d["value"].where(d.index != 7)))
    assert holed.se == pytest.approx(full.se, rel=0.05) and holed.missing == 3 and holed.n == 1497


def test_an_over_ratio_is_an_at_least_claim():
    rng = np.random.default_rng(6)
    a = pd.DataFrame([{"seed": s, "image": i, "a": 1 + rng.random()} for s in range(3) for i in range(100)])
    seven_times = a.assign(b=a["a"] / 7)
    assert rules.ratio(seven_times, 5.0, band=0.5).verdict == rules.INCONSISTENT  # "5 times" is not 7
    assert rules.ratio(seven_times, 5.0, band=0.5, at_least=True).verdict == rules.CONSISTENT  # "over 5"
    zero = a.assign(b=0.0)
    assert rules.ratio(zero, 5.0, band=0.5).verdict == rules.NOT_JUDGED


def test_a_decisive_verdicts_p_is_where_its_interval_reaches_the_boundary():
    """For an ordering the p the bisection finds is the t-test's against the smallest effect:
    2 x (1 - T(S-1)((mean - δ) / SE))."""
    d = diffs((3.0, 3.4, 2.8, 3.1), images=50, spread=0.0)
    judged = rules.ordering(d, smallest=1.0)
    per_seed = np.array([3.0, 3.4, 2.8, 3.1])
    expected = 2 * stats.t.sf((per_seed.mean() - 1.0) / stats.sem(per_seed), 3)
    assert judged.verdict == rules.CONSISTENT and judged.p == pytest.approx(expected, rel=1e-6)
    assert math.isnan(rules.ordering(diffs((3.0, -1.0, 4.0)), smallest=1.0).p)  # inconclusive: no p
    assert math.isnan(judged.gated("collapsed").p)


def test_holm_keeps_the_decisive_rows_that_pass_its_steps_and_says_why_the_others_fail():
    rows = pd.DataFrame(
        {
            "verdict": [rules.CONSISTENT, rules.CONSISTENT, rules.INCONSISTENT, rules.INCONCLUSIVE, rules.NOT_JUDGED],
            "p": [0.001, 0.03, 0.012, math.nan, math.nan],
            "reason": ["", "", "", "", "one seed"],
        }
    )
    fixed = rules.holm(rows)  # 4 judged rows: 0.001 <= 0.05/4, 0.012 <= 0.05/3, 0.03 > 0.05/2
    assert fixed["verdict"].tolist() == [
        rules.CONSISTENT,
        rules.INCONCLUSIVE,
        rules.INCONSISTENT,
        rules.INCONCLUSIVE,
        rules.NOT_JUDGED,
    ]
    assert "Holm" in fixed.loc[1, "reason"] and "4 judged sub-rows" in fixed.loc[1, "reason"]
    one = rules.holm(rows.iloc[[1]])  # a claim with one row needs no correction
    assert one["verdict"].tolist() == [rules.CONSISTENT]
    # a decisive row saved without its p counts as p = 0.05: it survives alone, not beside others
    assert rules.holm(pd.DataFrame({"verdict": [rules.CONSISTENT] * 2}))["verdict"].tolist() == [rules.INCONCLUSIVE] * 2


@pytest.mark.parametrize(
    "verdicts,expected",
    [
        ((rules.CONSISTENT, rules.CONSISTENT), rules.CONSISTENT),
        ((rules.CONSISTENT, rules.INCONCLUSIVE), rules.INCONCLUSIVE),
        ((rules.CONSISTENT, rules.INCONSISTENT), rules.INCONSISTENT),
        ((rules.NO_DIFFERENCE, rules.NO_DIFFERENCE, rules.NOT_JUDGED), rules.NO_DIFFERENCE),
        ((rules.NO_DIFFERENCE, rules.CONSISTENT), rules.INCONCLUSIVE),
        ((rules.NOT_JUDGED, rules.NOT_JUDGED), rules.NOT_JUDGED),
    ],
)
def test_a_claims_verdict_from_its_sub_rows(verdicts, expected):
    rows = pd.DataFrame({"verdict": verdicts, "p": [1e-6] * len(verdicts), "reason": ["one seed"] * len(verdicts)})
    verdict, reason, evidence = rules.claim_verdict(rows)
    assert verdict == expected
    assert (reason == "one seed") == (expected == rules.NOT_JUDGED)
    assert evidence.endswith(f"of {len(verdicts)}")


@pytest.mark.parametrize("sub_rows,seeds,images", [(4, 2, 250), (4, 3, 10000), (7, 5, 250), (7, 3, 2000)])
def test_under_no_effect_a_claim_of_several_sub_rows_is_decisive_at_most_5_percent(sub_rows, seeds, images):
    rates = rules.simulate_claims(sub_rows, seeds, images, trials=300)
    assert rates["decisive"] <= 0.05, rates


def test_the_seeds_a_comparison_needs_to_detect_twice_its_smallest_effect():
    """Seed means spread with sd 2 points and no image noise: the resolution at S seeds is
    (t(0.975) + t(0.8)) x 2 / sqrt(S); it reaches δ = 2 points first at 10 seeds."""
    per_seed = 5.0 + 2.0 * np.array([-1.0, 1.0, 0.0]) / np.std([-1.0, 1.0, 0.0], ddof=1)
    judged = rules.ordering(diffs(per_seed, images=20, spread=0.0), smallest=2.0)
    expected = next(
        s for s in range(2, 60) if (stats.t.ppf(0.975, s - 1) + stats.t.ppf(0.8, s - 1)) * 2.0 / math.sqrt(s) <= 2.0
    )
    assert judged.seeds_needed == expected == 10
    noisy = rules.ordering(diffs((0.0, 0.1, -0.1), images=20, spread=100.0), smallest=0.5)
    assert math.isinf(noisy.seeds_needed)  # the images' term alone is wider than δ: no number of seeds does it
    assert math.isnan(rules.equivalence(diffs(per_seed, images=20, spread=0.0), margin=2.0).seeds_needed)
