"""One rule for judging a claim, stated once, with an interval (keys no cache: presentation).

The unit of inference is the trained network. A claim compares models measured on the same
images under several training seeds; the input is the paired difference d = A - B, signed so that
d > 0 is the direction the paper claims (for "lower is better" measures the caller passes B - A),
one row per seed and image (or one per seed for a measure that is one number per model).

- **Effect**: the mean over seeds of each seed's mean difference.
- **Interval** (95%): effect ± t(0.975, seeds - 1) x SE, with SE² = s²/S + SE²(images): s² the
  variance of the S per-seed means (training noise, and the images' noise that differs between
  seeds) and SE²(images) the squared standard error of the seed-averaged difference over images
  (the part of the test set's noise that every seed shares, from a two-way decomposition). The
  first term alone is the t-interval over per-seed means; the second adds the test set's sampling.
  The t quantile takes S - 1 degrees of freedom, so the interval is, if anything, a little wide.
  With one seed there is no training variance to estimate: the claim is *not judged*.
- **Smallest effect of interest** δ (``robinterp.reports.effects``), per measure, stated with why.
- **Levels**, one standard of evidence both ways: *consistent* when the interval lies beyond +δ
  (the claimed direction); *inconsistent* when it lies beyond -δ; *no meaningful difference* when
  it lies inside (-δ, +δ); *inconclusive* otherwise. *Consistent* and *inconsistent* are the
  decisive verdicts; under no effect each needs the interval to miss 0 by δ, so the rule gives
  them in well under 5% of no-effect comparisons (simulated in the tests and on the methods page).
- **Trend** ("alignment grows with eps"): per image and seed, the least-squares change of the
  measure from the first to the last setting (settings placed evenly by rank, so a geometric grid of
  lambdas counts each step alike); judged as an ordering of that change, with the measure's δ.
  A non-monotone wobble of a fraction of δ is not a trend.
- **At most** ("distillation does not improve on standard training beyond m"): *consistent* when
  the interval's upper end is at most m, *inconsistent* when its lower end exceeds m.
- **At least** ("over 35 points"): *consistent* when the interval's lower end reaches the paper's
  value less its rounding, *inconsistent* when the upper end falls short of it.
- **Equivalence** ("about as good as", "accuracy unaffected", within m) and **magnitude** ("a 35-
  point gain", "98.8% clean", v within a band b that covers the paper's rounding and δ):
  *consistent* when the interval lies inside the band, *inconsistent* when it lies wholly outside,
  *inconclusive* otherwise.
- **Ratio** ("116 times lower"): a magnitude whose effect is the ratio of two models' means per
  seed, averaged over seeds (no effect: 1); its image term by the delta method.
- **Validity gates** before any verdict: a claim is *not judged*, with the reason, when it rests on
  one seed, when more than ``MAX_MISSING`` of its values are undefined, or when a caller's gate
  (a collapsed model, a measure that does not beat its random control) says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from robinterp.titles import dataset_title

CONSISTENT = "consistent"
INCONSISTENT = "inconsistent"
NO_DIFFERENCE = "no meaningful difference"
INCONCLUSIVE = "inconclusive"
NOT_JUDGED = "not judged"
LEVELS = (CONSISTENT, NO_DIFFERENCE, INCONCLUSIVE, INCONSISTENT)
"""The verdicts the rule gives when it judges; ``NOT_JUDGED`` (with a reason) when it does not."""
DECISIVE = (CONSISTENT, INCONSISTENT)
CONFIDENCE = 0.95
MAX_MISSING = 0.2
"""A claim with more than this share of undefined values (a correlation of a constant map) is not
judged: what is left is no longer the measure on the test set."""
COLLAPSE_FLOOR = 50.0
"""Clean accuracy (%) below which a trained model counts as collapsed on a 10-class data set
(chance: 10%): its maps and its robustness say nothing about its method."""

ORDERING_RULE = (
    "An ordering is *consistent* with the paper when the 95% interval of the difference, over "
    "training seeds and test images, lies beyond the measure's smallest effect of interest in the "
    "claimed direction; *inconsistent* when it lies beyond it the other way; *no meaningful "
    "difference* when it lies within it; *inconclusive* otherwise."
)
TREND_RULE = (
    "A trend is judged as an ordering of the fitted change from the first to the last setting "
    "(least squares over the settings placed evenly), per image and seed, with the measure's "
    "smallest effect of interest."
)
AT_MOST_RULE = (
    "A claim of no improvement beyond a margin is *consistent* when the upper end of the 95% interval "
    "of the improvement is at most the margin, *inconsistent* when its lower end exceeds it."
)
MAGNITUDE_RULE = (
    "A magnitude is *consistent* when our 95% interval lies inside a band around the paper's value "
    "(its rounding or the measure's smallest effect of interest, whichever is wider), *inconsistent* "
    'when it lies wholly outside, *inconclusive* otherwise; "over X" is *consistent* when the '
    "interval's lower end reaches X."
)
EQUIVALENCE_RULE = (
    "An equivalence within a margin is *consistent* when the 95% interval of the difference lies "
    "inside plus or minus the margin, *inconsistent* when it lies wholly outside, *inconclusive* "
    "otherwise."
)
SEEDS_RULE = (
    "Every interval includes seed-to-seed variance (a t-interval over per-seed means, widened by the "
    "test set's sampling); a claim measured on one seed, on a collapsed model, or on a measure that "
    "does not beat its random control is *not judged*."
)


def effect_text(effect: float, low: float, high: float, digits: int = 3) -> str:
    """An effect and its 95% interval as a page shows them, "16.4 [12.7, 20.0]": all three with
    the decimals that give the largest of them ``digits`` significant digits, so that the ends of
    an interval read alike (3 significant digits each wrote that one "16.4 [12.7, 20]"); all
    zeros show as "0 [0, 0]". A missing end shows as a dash."""
    largest = max((abs(v) for v in (effect, low, high) if math.isfinite(v)), default=0.0)
    decimals = min(max(digits - 1 - math.floor(math.log10(largest)), 0), 6) if largest > 0 else 0

    def shown(value: float) -> str:
        return f"{value:.{decimals}f}" if math.isfinite(value) else "\u2014"

    return f"{shown(effect)} [{shown(low)}, {shown(high)}]"


@dataclasses.dataclass(frozen=True)
class Judgement:
    """A measured effect, its interval over seeds and images, and the verdict of the rule."""

    mean: float
    low: float
    high: float
    n: int
    """Paired observations used: images times seeds, or seeds."""
    missing: int
    """Paired observations left out because a value was missing (NaN)."""
    seeds_agreeing: int
    """Seeds whose own mean points the claimed way (for a band: lies inside it)."""
    seeds: int
    verdict: str
    smallest: float = math.nan
    """The smallest effect of interest (or the margin, or the band's half-width) it was judged by."""
    reason: str = ""
    """Why a claim is not judged (or, after ``holm``, why a decisive verdict did not stand)."""
    p: float = math.nan
    """For a decisive verdict, the smallest 1 - confidence at which the interval still gives it (its
    p-value: 0.05 or less, since the rule uses 95%); NaN otherwise. ``holm`` corrects on it."""
    resolution: float = math.nan
    """(t(0.975) + t(0.8)) x SE at this design: how far beyond a verdict's boundary a true effect must
    lie for the rule to reach that verdict 4 times in 5."""
    seeds_needed: float = math.nan
    """For an ordering, the seeds at which a true effect of twice the smallest effect would be called
    consistent 4 times in 5 (the seed term scaled, the images' term kept); infinite when no number
    of seeds up to ``MAX_SEEDS_NEEDED`` would (the test set's own noise is too large); NaN for other
    kinds of claim."""

    def interval(self, digits: int = 3) -> str:
        return effect_text(self.mean, self.low, self.high, digits)

    def row(self) -> dict[str, object]:
        return {
            "effect": self.mean,
            "low": self.low,
            "high": self.high,
            "smallest effect": self.smallest,
            "n": self.n,
            "missing": self.missing,
            "seeds agreeing": f"{self.seeds_agreeing} of {self.seeds}",
            "verdict": self.verdict,
            "reason": self.reason,
            "p": self.p,
            "resolution": self.resolution,
            "seeds needed": self.seeds_needed,
        }

    def gated(self, reason: str | None) -> Judgement:
        """This judgement not judged for ``reason`` (unchanged when there is none): the numbers
        stay on the page, the verdict does not count."""
        return self if not reason else dataclasses.replace(self, verdict=NOT_JUDGED, reason=reason, p=math.nan)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """The effect, its standard error over seeds and images, and the per-seed means."""

    mean: float
    se: float
    per_seed: np.ndarray
    n: int
    missing: int
    shared: float = 0.0
    """The part of SE² that every seed shares (the test set's term), which more seeds do not shrink."""

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    def bounds(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        if self.seeds < 2:
            return math.nan, math.nan
        # seeds - 1 degrees of freedom: Welch-Satterthwaite's, which grow where the test set's noise
        # dominates, gave 8-9% decisive verdicts under no effect at two seeds (simulated)
        half = _t(0.5 + confidence / 2, self.seeds - 1) * self.se
        return self.mean - half, self.mean + half

    def resolution(self, seeds: int | None = None) -> float:
        """(t(0.975) + t(0.8)) x SE, at ``seeds`` seeds (default: as measured) with the seed term
        scaled from the measured spread of the per-seed means and the shared term kept."""
        if self.seeds < 2:
            return math.nan
        seeds = seeds or self.seeds
        se2 = (self.se**2 - self.shared) * self.seeds / seeds + self.shared
        return (_t(0.5 + CONFIDENCE / 2, seeds - 1) + _t(POWER, seeds - 1)) * math.sqrt(max(se2, 0.0))


POWER = 0.8
"""The power at which a page says what the design can detect."""
MAX_SEEDS_NEEDED = 50


def _t(q: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


def estimate_grid(values: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(effect, SE, per-seed means) of an images x seeds array with no value missing: the rule's
    interval arithmetic, on which the calibration simulation runs as the pages do.

    A value is effect + seed term + image term + image-by-seed term. The variance of the per-seed
    means over seeds estimates the seed term and the image-by-seed term (over S); the image term,
    shared by every seed, comes from the two-way decomposition (images' mean square less the
    residual one, over S), so no part of the noise is counted twice."""
    per_seed = values.mean(axis=0)
    images, seeds = values.shape
    between = per_seed.var(ddof=1) / seeds if seeds > 1 else math.nan
    shared = 0.0
    if images > 1 and seeds > 1:
        row = values.mean(axis=1)
        residual = values - row[:, None] - per_seed[None, :] + values.mean()
        ms_images = seeds * row.var(ddof=1)
        ms_residual = (residual**2).sum() / ((images - 1) * (seeds - 1))
        shared = max(ms_images - ms_residual, 0.0) / seeds / images
    return float(per_seed.mean()), math.sqrt(between + shared), per_seed


def _shared_term(values: np.ndarray) -> float:
    """``estimate_grid``'s shared (image) term of SE² alone."""
    mean, se, per_seed = estimate_grid(values)
    seeds = values.shape[1]
    return max(se**2 - per_seed.var(ddof=1) / seeds, 0.0) if seeds > 1 else 0.0


def estimate(diff: pd.DataFrame, over: str = "images") -> Estimate:
    """The effect of the paired differences ``diff`` (columns seed, value and, per image, image);
    rows with a missing value are left out and counted. ``over="seeds"``: one number per seed
    (the image column, if any, is averaged first)."""
    if over not in ("images", "seeds"):
        raise ValueError(f"over must be 'images' or 'seeds', got {over!r}")
    valid = diff.dropna(subset=["value"])
    missing = len(diff) - len(valid)
    if valid.empty:
        raise ValueError("no paired observations to judge")
    per_seed = valid.groupby("seed")["value"].mean()
    if over == "seeds" or "image" not in valid or valid.groupby("seed").size().max() == 1:
        seeds = len(per_seed)
        se = per_seed.std(ddof=1) / math.sqrt(seeds) if seeds > 1 else math.nan
        return Estimate(float(per_seed.mean()), float(se), per_seed.to_numpy(), len(valid), missing)
    grid = valid.pivot(index="image", columns="seed", values="value")
    complete = grid.dropna()
    if len(complete) > 1:
        # the images measured in every seed (the same test images are shared by the seeds, so their
        # term is shared too); an image missing in one seed is left out in all, and counted
        values = complete.to_numpy()
        mean, se, seed_means = estimate_grid(values)
        return Estimate(mean, se, seed_means, complete.size, len(diff) - complete.size, _shared_term(values))
    # seeds measured on different images: each seed's own image term
    groups = [group["value"].to_numpy() for _, group in valid.groupby("seed")]
    seeds = len(groups)
    shared = sum(g.var(ddof=1) / len(g) for g in groups if len(g) > 1) / seeds**2
    between = per_seed.var(ddof=1) / seeds if seeds > 1 else math.nan
    return Estimate(
        float(per_seed.mean()), math.sqrt(between + shared), per_seed.to_numpy(), len(valid), missing, shared
    )


def level(low: float, high: float, smallest: float) -> str:
    """The verdict of a directional claim from its interval (> 0 the claimed direction)."""
    if low > smallest:
        return CONSISTENT
    if high < -smallest:
        return INCONSISTENT
    if -smallest < low and high < smallest:
        return NO_DIFFERENCE
    return INCONCLUSIVE


def at_least_level(low: float, high: float, threshold: float) -> str:
    """The verdict of "at least ``threshold``": the interval at or above it, wholly below it, or
    neither."""
    return CONSISTENT if low >= threshold else INCONSISTENT if high < threshold else INCONCLUSIVE


def band_level(low: float, high: float, lower: float, upper: float) -> str:
    """The verdict of an equivalence or a magnitude: the interval inside [lower, upper], wholly
    outside it, or neither."""
    if lower <= low and high <= upper:
        return CONSISTENT
    if high < lower or low > upper:
        return INCONSISTENT
    return INCONCLUSIVE


def _not_judged_reason(est: Estimate) -> str:
    if est.seeds < 2:
        return "one seed: training variance cannot be estimated"
    if not (math.isfinite(est.mean) and math.isfinite(est.se)):
        return "the effect or its interval is undefined (a mean of 0 in a ratio, say)"
    share = est.missing / (est.n + est.missing)
    if share > MAX_MISSING:
        return f"{100 * share:.0f}% of the values are undefined (limit {100 * MAX_MISSING:.0f}%)"
    return ""


def decisive_p(est: Estimate, verdict_of: Callable[[float, float], str], verdict: str) -> float:
    """The smallest 1 - confidence at which ``verdict_of`` still gives the decisive ``verdict``
    (bisection: a decisive verdict needs the interval inside a region, so a wider interval can
    only lose it); NaN for a verdict that is not decisive. Floored at 1e-15."""
    if verdict not in DECISIVE:
        return math.nan
    floor = 1e-15
    if verdict_of(*est.bounds(1 - floor)) == verdict:
        return floor
    # on log(1 - confidence): the rule's own level holds, the floor does not
    holds_at, fails_at = math.log(1 - CONFIDENCE), math.log(floor)
    for _ in range(50):
        middle = (holds_at + fails_at) / 2
        if verdict_of(*est.bounds(1 - math.exp(middle))) == verdict:
            holds_at = middle
        else:
            fails_at = middle
    return math.exp(holds_at)


def _seeds_needed(est: Estimate, smallest: float) -> float:
    """The fewest seeds at which the rule calls a true effect of 2 x ``smallest`` consistent with
    probability ``POWER`` (``Estimate.resolution`` at most ``smallest``)."""
    for seeds in range(2, MAX_SEEDS_NEEDED + 1):
        if est.resolution(seeds) <= smallest:
            return float(seeds)
    return math.inf


def _judged(est: Estimate, verdict_of, agreeing: int, smallest: float, directional: bool = False) -> Judgement:
    low, high = est.bounds()
    reason = _not_judged_reason(est)
    verdict = NOT_JUDGED if reason else verdict_of(low, high)
    p = math.nan if reason else decisive_p(est, verdict_of, verdict)
    needed = _seeds_needed(est, smallest) if directional and est.seeds > 1 and math.isfinite(est.se) else math.nan
    resolution = est.resolution() if math.isfinite(est.se) else math.nan
    return Judgement(
        est.mean, low, high, est.n, est.missing, agreeing, est.seeds, verdict, smallest, reason, p, resolution, needed
    )


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def ordering(diff: pd.DataFrame, smallest: float, over: str = "images") -> Judgement:
    """The rule for "A beats B"; ``diff`` holds A - B signed so that > 0 is the claim and
    ``smallest`` is the measure's smallest effect of interest in its units."""
    _check_positive("the smallest effect of interest", smallest)
    est = estimate(diff, over)
    return _judged(est, lambda lo, hi: level(lo, hi, smallest), int((est.per_seed > 0).sum()), smallest, True)


def orderings(
    table: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    smallest: float,
    *,
    by: str = "method",
    value: str = "score",
) -> dict[tuple[str, str], Judgement]:
    """``ordering(paired(table, a, b, ...), smallest)`` for every pair (a, b) of one tidy table
    (columns ``by``, seed, image, ``value``)."""
    return {(a, b): ordering(paired(table, a, b, by=by, value=value), smallest) for a, b in pairs}


def equivalence(diff: pd.DataFrame, margin: float, over: str = "images") -> Judgement:
    """The rule for "A is about as good as B" within ``margin`` (same units as ``diff``)."""
    _check_positive("margin", margin)
    est = estimate(diff, over)
    agreeing = int((np.abs(est.per_seed) <= margin).sum())
    return _judged(est, lambda lo, hi: band_level(lo, hi, -margin, margin), agreeing, margin)


def at_most(diff: pd.DataFrame, margin: float, over: str = "images") -> Judgement:
    """The rule for "A does not improve on B" beyond ``margin``; ``diff`` holds the improvement of A
    over B (> 0: A better), in the units of ``margin``."""
    _check_positive("margin", margin)
    est = estimate(diff, over)

    def verdict(low: float, high: float) -> str:
        return CONSISTENT if high <= margin else INCONSISTENT if low > margin else INCONCLUSIVE

    return _judged(est, verdict, int((est.per_seed <= margin).sum()), margin)


def at_least(diff: pd.DataFrame, paper_value: float, tolerance: float, over: str = "images") -> Judgement:
    """The rule for "the effect is over ``paper_value``" (the paper's rounding ``tolerance`` given
    to it): ``diff`` holds the effect, > 0 the claimed direction."""
    threshold = paper_value - tolerance
    est = estimate(diff, over)
    agreeing = int((est.per_seed >= threshold).sum())
    return _judged(est, lambda lo, hi: at_least_level(lo, hi, threshold), agreeing, tolerance)


def magnitude(diff: pd.DataFrame, paper_value: float, band: float, over: str = "images") -> Judgement:
    """The rule for "the effect (or level) is ``paper_value``", within ``band`` either side
    (``effects.band``: the paper's rounding or the measure's smallest effect)."""
    _check_positive("band", band)
    est = estimate(diff, over)
    agreeing = int((np.abs(est.per_seed - paper_value) <= band).sum())
    return _judged(est, lambda lo, hi: band_level(lo, hi, paper_value - band, paper_value + band), agreeing, band)


def ratio(pairs: pd.DataFrame, paper_value: float, band: float, at_least: bool = False) -> Judgement:
    """The magnitude rule for "A's mean is ``paper_value`` times B's" within ``band`` (with
    ``at_least``, "over ``paper_value`` times": the at-least rule, ``band`` its tolerance):
    ``pairs`` has columns seed, image, a and b (``paired_values``). Per seed the ratio of the two
    means over images, averaged over seeds; images measured in every seed for both models only."""
    _check_positive("band", band)
    pairs = pairs.dropna(subset=["a", "b"])
    numerator = pairs.pivot(index="image", columns="seed", values="a")
    denominator = pairs.pivot(index="image", columns="seed", values="b")
    complete = numerator.notna().all(axis=1) & denominator.notna().all(axis=1)
    if not complete.any():
        raise ValueError("no image is measured in every seed for both models")
    a, b = numerator[complete].to_numpy(), denominator[complete].to_numpy()
    seeds, images = a.shape[1], a.shape[0]
    a_bar, b_bar = a.mean(1), b.mean(1)
    # a model whose mean is 0 gives no ratio: not judged (``_judged``), without numpy's warning
    with np.errstate(divide="ignore", invalid="ignore"):
        per_seed = a.mean(0) / b.mean(0)
        # the test set's term by the delta method on the seed-averaged images (it holds the
        # image-by-seed noise the per-seed ratios hold too: counted twice, so a little wide)
        r = a_bar.mean() / b_bar.mean()
        shared = (a_bar - r * b_bar).var(ddof=1) / images / b_bar.mean() ** 2 if images > 1 else 0.0
    if not (np.isfinite(per_seed).all() and math.isfinite(shared)):
        reason = "a model's mean is 0: no ratio"
        return Judgement(math.nan, math.nan, math.nan, a.size, 0, 0, seeds, NOT_JUDGED, band, reason)
    between = per_seed.var(ddof=1) / seeds if seeds > 1 else math.nan
    est = Estimate(
        float(per_seed.mean()), math.sqrt(between + shared), per_seed, a.size, int((~complete).sum()) * seeds, shared
    )
    if at_least:
        threshold = paper_value - band
        agreeing = int((per_seed >= threshold).sum())
        return _judged(est, lambda lo, hi: at_least_level(lo, hi, threshold), agreeing, band)
    agreeing = int((np.abs(per_seed - paper_value) <= band).sum())
    return _judged(est, lambda lo, hi: band_level(lo, hi, paper_value - band, paper_value + band), agreeing, band)


def trend_changes(table: pd.DataFrame) -> pd.DataFrame:
    """Per image and seed, the least-squares change of ``value`` from the first to the last
    setting ``x`` (settings placed evenly by rank), as a diff for ``ordering``; ``table`` has
    columns x, seed, image and value, every image measured at every setting of its seed."""
    if table.duplicated(["seed", "x", "image"]).any():
        raise ValueError("two values for one image, setting and seed: the trend would be ambiguous")
    xs = np.array(sorted(table["x"].unique()), dtype=float)
    if len(xs) < 2:
        raise ValueError("a trend needs at least two settings")
    grid = table.pivot(index=["seed", "image"], columns="x", values="value").reindex(columns=xs)
    place = np.linspace(0.0, 1.0, len(xs))
    weights = (place - place.mean()) / ((place - place.mean()) ** 2).sum()
    complete = grid.notna().all(axis=1)
    change = pd.Series(np.nan, index=grid.index)
    change[complete] = grid[complete].to_numpy() @ weights
    return change.rename("value").reset_index()


def trend(table: pd.DataFrame, smallest: float) -> Judgement:
    """The rule for "the measure grows with the setting": ``table`` has columns x (the setting),
    seed, image and value (signed so that growth is the claim); the effect is the fitted change
    from the first setting to the last (``trend_changes``), in the measure's units."""
    changes = trend_changes(table)
    if changes["value"].isna().all():
        raise ValueError("no image is measured at every setting")
    return ordering(changes, smallest)


def paired_values(
    table: pd.DataFrame,
    a: str,
    b: str,
    *,
    by: str = "method",
    keys: tuple[str, ...] = ("seed", "image"),
    value: str = "score",
) -> pd.DataFrame:
    """A's and B's ``value`` matched on ``keys`` (columns seed, image, a and b), from a tidy table
    with one row per key and model."""
    left = table[table[by] == a].set_index(list(keys))[value]
    right = table[table[by] == b].set_index(list(keys))[value]
    if not (left.index.is_unique and right.index.is_unique):
        raise ValueError(f"{a!r} or {b!r} has two rows for one of {keys}: the pairing would be ambiguous")
    both = left.index.intersection(right.index)
    return pd.DataFrame({"a": left.loc[both], "b": right.loc[both]}).reset_index()


def paired(
    table: pd.DataFrame,
    a: str,
    b: str,
    *,
    by: str = "method",
    keys: tuple[str, ...] = ("seed", "image"),
    value: str = "score",
) -> pd.DataFrame:
    """A - B of ``value`` matched on ``keys`` (columns seed, image and value), from a tidy table
    with one row per key and model."""
    both = paired_values(table, a, b, by=by, keys=keys, value=value)
    diff = both.assign(value=both["a"] - both["b"])
    return diff[[k for k in ("seed", "image") if k in diff] + ["value"]]


# ---------------------------------------------------------------- validity gates


def collapsed(accuracy: pd.DataFrame, labels: Sequence[str], floor: float = COLLAPSE_FLOOR) -> str:
    """Why a claim about ``labels`` is not judged because a model collapsed ("" when none did):
    ``accuracy`` has columns method, seed and accuracy (clean, in %)."""
    for label in labels:
        rows = accuracy[accuracy["method"] == label]
        low = rows[rows["accuracy"] < floor]
        if len(low):
            seeds = ", ".join(str(s) for s in sorted(low["seed"]))
            return f"collapsed: {label} below {floor:g}% clean accuracy (seed {seeds})"
    return ""


def clean_rows(robust: pd.DataFrame) -> pd.DataFrame:
    """Each image's clean correctness once, from a robust-accuracy table with several attacks:
    radius 0 of its first attack (every attack starts from the same clean prediction of the same
    images, so the others would repeat each row and make a pairing ambiguous)."""
    clean = robust[robust["eps"] == 0]
    return clean[clean["attack"] == clean["attack"].iloc[0]] if len(clean) else clean


def clean_accuracy(correct: pd.DataFrame) -> pd.DataFrame:
    """Per model and seed, clean accuracy in % from a per-image table of correctness (columns method,
    seed and correct, in points: 0 or 100)."""
    return correct.groupby(["method", "seed"])["correct"].mean().rename("accuracy").reset_index()


def collapse_gate(clean: pd.DataFrame) -> Callable[..., str]:
    """From a per-image table of clean correctness (``clean_accuracy``'s input), the gate of a claim
    about some models: ``gate(*labels)`` says why it is not judged (``collapsed``), "" when it is."""
    accuracy = clean_accuracy(clean)
    return lambda *labels: collapsed(accuracy, labels)


# ---------------------------------------------------------------- claims and their sub-rows

HOLM_ALPHA = 1 - CONFIDENCE
CLAIM_RULE = (
    "A paper's claim is often judged on several rows (attacks, radii, metrics, data sets): its "
    "*sub-rows*. Within a claim, a sub-row's decisive verdict stands only if it survives Holm's "
    "correction over the claim's judged sub-rows (5% family-wise); the claim is *inconsistent* when a "
    "sub-row is, *consistent* when every judged sub-row is (no correction is needed for that), *no "
    "meaningful difference* when every one is, and *inconclusive* otherwise."
)


def holm(verdicts: pd.DataFrame, alpha: float = HOLM_ALPHA) -> pd.DataFrame:
    """A claim's sub-rows (columns verdict and p, as ``Judgement.row`` writes them) after Holm's
    step-down correction over its judged sub-rows: a decisive verdict whose p does not pass becomes
    *inconclusive*, with the reason. A decisive row without a p (a table saved before p was
    written) counts as p = 0.05, the most its 95% verdict allows."""
    frame = verdicts.copy()
    judged = frame["verdict"].isin(LEVELS)
    decisive = frame["verdict"].isin(DECISIVE)
    size = int(judged.sum())
    if size < 2 or not decisive.any():
        return frame
    p = pd.to_numeric(frame.get("p", pd.Series(math.nan, index=frame.index)), errors="coerce")
    p = p.where(~(decisive & p.isna()), alpha)
    order = p[decisive].sort_values(kind="stable").index
    passed = True
    for rank, index in enumerate(order):
        passed = passed and p[index] <= alpha / (size - rank)
        if not passed:
            frame.loc[index, "reason"] = (
                f"{frame.loc[index, 'verdict']} alone; not after Holm's correction over the claim's {size} "
                "judged sub-rows"
            )
            frame.loc[index, "verdict"] = INCONCLUSIVE
    return frame


def claim_verdict(sub_rows: pd.DataFrame) -> tuple[str, str, str]:
    """(verdict, reason, evidence) of a claim from its sub-rows as judged one by one: ``holm``,
    then ``summarise_claim``."""
    return summarise_claim(holm(sub_rows))


def summarise_claim(rows: pd.DataFrame) -> tuple[str, str, str]:
    """(verdict, reason, evidence) of a claim from sub-rows already corrected by ``holm``: see
    ``CLAIM_RULE``. The evidence counts their verdicts ("2 consistent, 1 inconclusive of 3"); the
    reason is given when no sub-row is judged."""
    verdicts = rows["verdict"]
    judged = verdicts[verdicts.isin(LEVELS)]
    counts = verdicts.value_counts()
    evidence = ", ".join(f"{counts[lv]} {lv}" for lv in (*LEVELS, NOT_JUDGED) if lv in counts)
    evidence = f"{evidence} of {len(rows)}" if len(rows) > 1 else evidence
    if judged.empty:
        reasons = rows.get("reason", pd.Series(dtype=object)).dropna().astype(str)
        reasons = [r for r in dict.fromkeys(reasons) if r]
        more = f" (and {len(reasons) - 1} other reason{'s' * (len(reasons) > 2)})" if len(reasons) > 1 else ""
        return NOT_JUDGED, (reasons[0] + more) if reasons else "no sub-row is judged", evidence
    if (judged == INCONSISTENT).any():
        return INCONSISTENT, "", evidence
    for verdict in (CONSISTENT, NO_DIFFERENCE):
        if (judged == verdict).all():
            return verdict, "", evidence
    return INCONCLUSIVE, "", evidence


# ---------------------------------------------------------------- calibration


def simulate_no_effect(
    seeds: int,
    images: int,
    *,
    effect: float = 0.0,
    seed_sd: float = 2.0,
    accuracy: float = 80.0,
    smallest: float = 1.0,
    shared_difficulty: float = 0.8,
    own_difficulty: float = 0.3,
    trials: int = 400,
    rng_seed: int = 20261207,
) -> dict[str, float]:
    """How often the ordering rule gives each verdict on simulated pairs of models compared by
    per-image correctness in points (0 or 100), as the chapters compare them: every trained network
    has an accuracy of its own (``accuracy`` plus a seed-to-seed spread of sd ``seed_sd`` points,
    A's networks ``effect`` points better on average); an image is right for a network with that
    probability, and images are hard or easy for every network alike (a shared Gaussian
    difficulty, weight ``shared_difficulty``) and, in part, for one model's networks only (a
    difficulty of the model's own, weight ``own_difficulty``, the same in every seed: the test
    set's term the interval must carry). ``effect=0``: no effect, where a decisive verdict is an
    error. Returns the share of each verdict and of decisive ones."""
    rng = np.random.default_rng(rng_seed)
    counts = dict.fromkeys((*LEVELS, NOT_JUDGED), 0)
    models = SimulatedModels(effect, seed_sd, accuracy, shared_difficulty, own_difficulty)
    for _ in range(trials):
        values = models.draw(rng, seeds, images)
        if seeds < 2:
            counts[NOT_JUDGED] += 1
            continue
        mean, se, _ = estimate_grid(values)
        low, high = Estimate(mean, se, np.zeros(seeds), values.size, 0).bounds()
        counts[level(low, high, smallest)] += 1
    rates = {k: v / trials for k, v in counts.items()}
    rates["decisive"] = rates[CONSISTENT] + rates[INCONSISTENT]
    return rates


@dataclasses.dataclass(frozen=True)
class SimulatedModels:
    """Two models compared by per-image correctness, as ``simulate_no_effect`` describes them."""

    effect: float = 0.0
    """Points of accuracy by which A's networks beat B's on average (0: no effect)."""
    seed_sd: float = 2.0
    """Seed-to-seed spread of a network's accuracy, in points."""
    accuracy: float = 80.0
    """B's mean accuracy, in points."""
    shared_difficulty: float = 0.8
    """Weight of a difficulty every network shares (images hard or easy for all alike)."""
    own_difficulty: float = 0.3
    """Weight of a difficulty of each model's own, the same in every seed."""

    def draw(self, rng: np.random.Generator, seeds: int, images: int) -> np.ndarray:
        """One comparison: images x seeds of per-image differences A - B, in points."""
        from scipy.special import ndtr

        keep = math.sqrt(max(1 - self.shared_difficulty**2 - self.own_difficulty**2, 0.0))
        difficulty = self.shared_difficulty * rng.standard_normal((images, 1))
        p_a = np.clip(self.accuracy + self.effect + self.seed_sd * rng.standard_normal(seeds), 0, 100) / 100
        p_b = np.clip(self.accuracy + self.seed_sd * rng.standard_normal(seeds), 0, 100) / 100
        own_a = self.own_difficulty * rng.standard_normal((images, 1))
        own_b = self.own_difficulty * rng.standard_normal((images, 1))
        a = ndtr(difficulty + own_a + keep * rng.standard_normal((images, seeds))) < p_a
        b = ndtr(difficulty + own_b + keep * rng.standard_normal((images, seeds))) < p_b
        return 100.0 * (a.astype(float) - b.astype(float))


def simulate_claims(
    sub_rows: int, seeds: int, images: int, *, smallest: float = 1.0, trials: int = 400, rng_seed: int = 20261207
) -> dict[str, float]:
    """How often ``claim_verdict`` gives each verdict to a claim whose ``sub_rows`` comparisons
    (``simulate_no_effect``'s, drawn independently) all have no effect: the share of claims per
    verdict, and of decisive ones (an error here)."""
    rng = np.random.default_rng(rng_seed)
    models = SimulatedModels()
    counts: dict[str, int] = {}
    for _ in range(trials):
        verdicts, ps = [], []
        for _ in range(sub_rows):
            values = models.draw(rng, seeds, images)
            mean, se, per_seed = estimate_grid(values)
            est = Estimate(mean, se, per_seed, values.size, 0)
            verdict = level(*est.bounds(), smallest)
            verdicts.append(verdict)
            ps.append(decisive_p(est, lambda lo, hi: level(lo, hi, smallest), verdict))
        verdict = claim_verdict(pd.DataFrame({"verdict": verdicts, "p": ps}))[0]
        counts[verdict] = counts.get(verdict, 0) + 1
    rates = {k: v / trials for k, v in counts.items()}
    rates["decisive"] = rates.get(CONSISTENT, 0.0) + rates.get(INCONSISTENT, 0.0)
    return rates


def chance_decisive(claims: int, seeds: int, images: int) -> str:
    """What a page says beside its verdicts: how many decisive verdicts its rule would give by
    chance for its number of claims, from ``simulate_no_effect`` at its seeds and images."""
    if seeds < 2:
        return f"With one seed the rule judges none of the {claims} claims."
    rate = simulate_no_effect(seeds, min(images, 2000))["decisive"]
    return (
        f"Were every one of the {claims} claims without effect, the rule would give at most "
        f"{0.05 * claims:.1f} decisive verdicts by chance (its bound, 5% a claim; simulated on accuracies "
        f"at {seeds} seeds and {min(images, 2000)} images, {100 * rate:.1f}%)."
    )


# ---------------------------------------------------------------- how pages show verdicts


def tally(verdicts: Sequence[str] | pd.Series) -> str:
    """How many verdicts there are of each level, as markdown for prose, in the order of
    ``LEVELS`` then not judged, leaving out the levels with none: "**2** consistent and **10**
    inconclusive". Every verdict is counted (a sentence that names some levels only can add up
    short); any other text (a claim not run) is counted as "not run"."""
    series = pd.Series(list(verdicts), dtype=object)
    series = series.where(series.isin([*LEVELS, NOT_JUDGED]), "not run")
    counts = series.value_counts()
    parts = [f"**{counts[lv]}** {lv}" for lv in (*LEVELS, NOT_JUDGED, "not run") if lv in counts]
    if len(parts) < 2:
        return parts[0] if parts else "none"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


DATA_SET = "data set"


def with_data_set(verdicts: pd.DataFrame, dataset: str | pd.Series) -> pd.DataFrame:
    """``verdicts`` with the data set each row was measured on, by its title, right after the claim:
    a row read on its own (a CSV, the scoreboard) names its data set as well as its models.
    ``dataset``: one registry key for every row, or one per row."""
    titles = dataset.map(dataset_title) if isinstance(dataset, pd.Series) else dataset_title(dataset)
    out = verdicts.drop(columns=DATA_SET, errors="ignore")
    out.insert(out.columns.get_loc("claim") + 1 if "claim" in out.columns else 0, DATA_SET, titles)
    return out


def page_view(verdicts: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A verdict table as a page shows it, narrow enough for the page: one row per claim, the
    verdict first (with the reason where it is not judged), the data set where the table names it,
    then the effect with its 95% interval
    in one cell, the smallest effect it was judged by, the paper's value where a row has one
    (magnitudes), n and the seeds agreeing."""

    def effect(row: pd.Series) -> str:
        if pd.isna(row.get("effect")):
            return str(row.get("measure", "—"))
        return effect_text(row["effect"], row["low"], row["high"], digits)

    def verdict(row: pd.Series) -> str:
        reason = row.get("reason")
        return f"{row['verdict']} ({reason})" if isinstance(reason, str) and reason else str(row["verdict"])

    paper = {}
    if "paper" in verdicts and verdicts["paper"].notna().any():  # magnitudes: the paper's value beside ours
        paper["paper"] = ["—" if pd.isna(v) else f"{v:.{digits}g}" for v in verdicts["paper"]]
    smallest = verdicts.get("smallest effect", pd.Series(np.nan, index=verdicts.index))
    data_set = {DATA_SET: verdicts[DATA_SET].to_list()} if DATA_SET in verdicts else {}
    return pd.DataFrame(
        {
            "verdict": [verdict(row) for _, row in verdicts.iterrows()],
            **data_set,
            "effect [95% interval]": [effect(row) for _, row in verdicts.iterrows()],
            "δ": ["—" if pd.isna(v) else f"{v:.{digits}g}" for v in smallest],
            **paper,
            "n": [("—" if pd.isna(n) else int(n)) for n in verdicts.get("n", pd.Series(index=verdicts.index))],
            "seeds agreeing": verdicts.get("seeds agreeing", pd.Series("—", index=verdicts.index))
            .fillna("—")
            .to_list(),
        },
        index=pd.Index(verdicts["claim"].to_list(), name="claim"),
    )


def chance_text(verdicts: pd.DataFrame) -> str:
    """``chance_decisive`` for a chapter's verdict table: its judged claims, at its largest seed
    count and its typical number of images per seed (from the ``n`` and ``seeds agreeing``
    columns)."""
    judged = verdicts[verdicts["verdict"].isin(LEVELS)]
    if judged.empty:
        return "The rule judged none of this page's claims."
    seeds = judged["seeds agreeing"].astype(str).str.extract(r"of (\d+)")[0].astype(float)
    most = int(seeds.max())
    images = int((judged["n"].astype(float) / seeds).median())
    return chance_decisive(len(judged), most, max(images, 1))


CALIBRATION_SEEDS = (2, 3, 5)
CALIBRATION_IMAGES = (250, 10000)
POWER_EFFECTS = (3.0, 5.0, 8.0)
"""True gains (points of accuracy) whose detection the methods page quotes, at seed sd 2 points."""


def calibration_table(trials: int = 400) -> pd.DataFrame:
    """The rule under no effect, at every seed and image count the calibration covers: the share
    of decisive verdicts (an error here) and of each level, in % (``simulate_no_effect``)."""
    rows = []
    for seeds in CALIBRATION_SEEDS:
        for images in CALIBRATION_IMAGES:
            rates = simulate_no_effect(seeds, images, trials=trials)
            boundary = simulate_no_effect(seeds, images, effect=1.0, trials=trials)
            rows.append(
                {
                    "seeds": seeds,
                    "images": images,
                    "decisive (%)": 100 * rates["decisive"],
                    "consistent at a true gain of δ (%)": 100 * boundary[CONSISTENT],
                    f"{NO_DIFFERENCE} (%)": 100 * rates[NO_DIFFERENCE],
                    f"{INCONCLUSIVE} (%)": 100 * rates[INCONCLUSIVE],
                }
            )
    return pd.DataFrame(rows)


def power_table(images: int = 1000, trials: int = 400) -> pd.DataFrame:
    """How often the rule calls a true gain *consistent* (seed sd 2 points, 1 point smallest
    effect), per seed count and gain, in %."""
    return pd.DataFrame(
        {
            f"{effect:g} points": [
                100 * simulate_no_effect(seeds, images, effect=effect, trials=trials)[CONSISTENT]
                for seeds in CALIBRATION_SEEDS
            ]
            for effect in POWER_EFFECTS
        },
        index=pd.Index(CALIBRATION_SEEDS, name="seeds"),
    )


CLAIM_SUB_ROWS = (1, 4, 7)


def claim_calibration_table(trials: int = 400, seeds: int = 3, images: int = 1000) -> pd.DataFrame:
    """Claims whose sub-rows all have no effect (``simulate_claims``): the share given a decisive
    verdict, in %, per number of sub-rows."""
    return pd.DataFrame(
        {
            "sub-rows of the claim": list(CLAIM_SUB_ROWS),
            f"decisive claims at {seeds} seeds, {images} images (%)": [
                100 * simulate_claims(rows, seeds, images, trials=trials)["decisive"] for rows in CLAIM_SUB_ROWS
            ],
        }
    )


def _markdown_table(frame: pd.DataFrame, digits: int = 1) -> str:
    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def methods_markdown(trials: int = 400) -> str:
    """The book's section "How claims are judged", computed when the book is built: the rule as
    prose, every measure's smallest effect of interest, the rule's calibration under no effect and
    its power (the introduction's ``robinterp-judging`` directive renders it)."""
    from robinterp.reports import effects

    sizes = pd.DataFrame(
        [{"measure": e.title, "smallest effect": e.describe(), "why": e.why} for e in effects.EFFECTS.values()]
    )
    power = power_table(trials=trials).reset_index()
    return "\n\n".join(
        [
            SEEDS_RULE,
            ORDERING_RULE,
            TREND_RULE,
            EQUIVALENCE_RULE,
            AT_MOST_RULE,
            MAGNITUDE_RULE,
            f"A model below {COLLAPSE_FLOOR:g}% clean accuracy on a seed has collapsed, and no claim about it "
            f"is judged; nor is a claim with more than {100 * MAX_MISSING:.0f}% of its values undefined, nor a "
            "removal claim (ROAR) where the measure cannot separate a standard model's saliency from random "
            "removal.",
            f"**Claims and their sub-rows.** {CLAIM_RULE} A chapter's page shows its rows as judged one by one; "
            "the scoreboard counts claims. Across claims the counts are descriptive (claims share trained "
            "models); each page says how many decisive verdicts chance alone would give. Where a claim is "
            "underpowered, the scoreboard says by how much: the seeds at which its least powered ordering "
            f"would call a true effect of twice its smallest effect *consistent* {POWER:.0%} of the time "
            "(the measured spread of the per-seed means scaled, the test set's term kept).",
            _markdown_table(claim_calibration_table(trials)),
            "**Smallest effects of interest** (`robinterp/reports/effects.py`):",
            _markdown_table(sizes),
            f"**Calibration.** Simulated pairs of models with no true difference (per-image correctness, each "
            f"network's accuracy varying from seed to seed with sd 2 points, images hard or easy for all alike; "
            f"{trials} simulated comparisons per row): the share of each verdict. A decisive verdict here is an "
            "error; the rule is built to give at most 5%, and the test suite fails if it gives more. The "
            "fourth column is the other null of a claim judged against its smallest effect δ: a true gain of "
            "exactly δ (1 point), called *consistent* at most 5% of the time.",
            _markdown_table(calibration_table(trials)),
            "**Power.** The share of simulated comparisons (1000 images) in which the rule calls a true gain "
            "*consistent*, with seed sd 2 points:",
            _markdown_table(power),
        ]
    )
