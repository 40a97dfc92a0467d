"""One rule for judging a claim, stated once, with an interval (keys no cache: presentation).

A claim compares two models measured on the same images and seeds. The input is the
paired difference d = A - B, signed so that d > 0 is the direction the paper claims
(for "lower is better" measures the caller passes B - A), one row per seed and image
(or one per seed for a measure that is one number per model).

- **Effect**: the mean over seeds of each seed's mean difference, and a 95% percentile
  bootstrap interval. ``over="images"``: test images are resampled, the same draw for every
  seed (every model of a chapter is measured on the same images, so an image's differences
  are correlated across seeds; resampling each seed apart would ignore that and give too
  narrow an interval); seeds measured on different images fall back to resampling within
  each seed. ``over="seeds"``, for one number per model: seeds are resampled (with 3 seeds
  this interval is little more than the range, and says so by being wide). Missing values
  (NaN, e.g. a correlation of a constant map) are left out and counted.
- **Ordering** ("A is sparser than B"): *reproduced* when every seed points the
  claimed way and the interval excludes 0; *partly* when the mean points the claimed
  way but the interval includes 0 or a seed disagrees; *not reproduced* when the mean
  points the other way; *contradicted* when the interval excludes 0 the other way.
- **Trend** ("alignment grows with eps"): the effect is Spearman's rank correlation between
  the setting (eps, lambda, epochs) and each setting's mean over images, per seed, then
  averaged over seeds; images are resampled as for an ordering, and the verdict is the
  ordering's with the correlation in place of the difference (> 0 is the claimed direction).
- **At most** ("distillation does not improve on standard training", within a margin m): the
  improvement d stays within m: *reproduced* when the interval's upper end and every seed's
  mean are at most m; *partly* when only the mean is; *not reproduced* when the mean exceeds
  m; *contradicted* when the whole interval does. Being worse is no improvement.
- **Magnitude** ("a 35-point gain", "98.8% clean accuracy"): the paper's value v beside our
  effect and its interval. For an effect (a difference, > 0 the claimed direction):
  *reproduced* when v lies inside the interval; *partly* when it does not but the interval
  excludes 0 on the claimed side (the direction holds, not the size); *contradicted* when the
  interval excludes 0 the other way; *not reproduced* otherwise. For a level (an accuracy, not a
  difference; ``null=None``) only *reproduced* (v inside) or *not reproduced*.
- **Ratio** ("116 times lower", "twice as good"): a magnitude whose effect is the ratio of two
  models' means (no effect: 1), per seed, averaged over seeds; images resampled as above.
- **Equivalence** ("accuracy unaffected", within a stated margin m): *reproduced* when
  the interval lies inside [-m, m] and so does every seed's mean; *partly* when the mean
  does but the interval or a seed leaves it; *not reproduced* when the mean is outside;
  *contradicted* when the whole interval is outside.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

LEVELS = ("reproduced", "partly", "not reproduced", "contradicted")
RESAMPLING = ("images", "seeds")
BOOTSTRAP_SEED = 20240601  # fixed so that a page's intervals are reproducible
ORDERING_RULE = (
    "An ordering is reproduced when the paired difference points the claimed way in "
    "every seed and its 95% bootstrap interval excludes 0; partly when its mean points "
    "that way but the interval includes 0 or a seed disagrees; not reproduced when the "
    "mean points the other way; contradicted when the interval excludes 0 the other way."
)
TREND_RULE = (
    "A trend is judged like an ordering, with Spearman's rank correlation between the "
    "setting and the measure (per seed, averaged over seeds) in place of the difference: "
    "reproduced when it has the claimed sign in every seed and its 95% bootstrap interval "
    "excludes 0."
)
AT_MOST_RULE = (
    "A claim of no improvement is reproduced when the 95% interval of the improvement and "
    "every seed's mean stay at or below the stated margin; partly when only the mean does; "
    "not reproduced when the mean exceeds it; contradicted when the whole interval does."
)
MAGNITUDE_RULE = (
    "A magnitude is reproduced when the paper's value lies inside our 95% bootstrap interval; "
    "an effect whose interval misses the paper's value is partly reproduced when the interval "
    "still excludes 0 on the claimed side (the direction holds, not the size), contradicted when "
    "it excludes 0 the other way and not reproduced otherwise; a level (an accuracy) is either "
    "reproduced or not."
)
EQUIVALENCE_RULE = (
    "An equivalence is reproduced when the 95% interval of the difference and every "
    "seed's mean lie within the stated margin; partly when only the mean does; not "
    "reproduced when the mean is outside; contradicted when the whole interval is."
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
    """A measured effect, its interval and the verdict of the rule."""

    mean: float
    low: float
    high: float
    n: int
    """Paired observations used: images times seeds, or seeds."""
    missing: int
    """Paired observations left out because a value was missing (NaN)."""
    seeds_agreeing: int
    seeds: int
    verdict: str
    directional: bool = True
    """False for a level (``magnitude`` with ``null=None``): no seed can point a way, and the
    row shows no seed count."""

    def interval(self, digits: int = 3) -> str:
        return effect_text(self.mean, self.low, self.high, digits)

    def row(self) -> dict[str, object]:
        return {
            "effect": self.mean,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "missing": self.missing,
            "seeds agreeing": f"{self.seeds_agreeing} of {self.seeds}" if self.directional else "—",
            "verdict": self.verdict,
        }


@functools.lru_cache(maxsize=64)
def _draws(seed: int, n_boot: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The bootstrap's resamples as counts, one (n_boot, size) array per size: how often each
    observation is drawn in each resample (so a resample's mean is ``counts @ values / size``),
    drawn in turn from one generator seeded by ``seed``. They depend on nothing else, so a page
    judging hundreds of claims on the same images draws them once (read-only: shared)."""
    rng = np.random.default_rng(seed)
    found = []
    for size in sizes:
        index = rng.integers(0, size, (n_boot, size)) + size * np.arange(n_boot)[:, None]
        counts = np.bincount(index.ravel(), minlength=n_boot * size).reshape(n_boot, size).astype(float)
        counts.flags.writeable = False
        found.append(counts)
    return tuple(found)


def _resampled_means(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each resample's mean of ``values`` (along its first axis)."""
    return counts @ values / counts.shape[1]


def bootstrap(
    diff: pd.DataFrame, over: str = "images", n_boot: int = 2000, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float, float, pd.Series]:
    """(mean, low, high, per-seed means) of the paired differences ``diff`` (columns seed, value
    and, for ``over="images"``, image); rows with a missing value are left out."""
    if over not in RESAMPLING:
        raise ValueError(f"over must be one of {RESAMPLING}, got {over!r}")
    # rows in a fixed order (seed, then image), so that the resampling never depends on the
    # order in which the caller's rows came
    diff = diff.dropna(subset=["value"]).sort_values([c for c in ("seed", "image") if c in diff], kind="stable")
    if diff.empty:
        raise ValueError("no paired observations to judge")
    per_seed = diff.groupby("seed")["value"].mean()
    if over == "seeds" or diff.groupby("seed").size().max() == 1:
        values = per_seed.to_numpy()
        draws = _resampled_means(_draws(seed, n_boot, (len(values),))[0], values)
    else:
        grid = diff.pivot(index="image", columns="seed", values="value") if "image" in diff else None
        if grid is not None and not grid.isna().any().any():
            # the same images for every seed: resample images once per draw, for all seeds alike
            values = grid.to_numpy()
            draws = _resampled_means(_draws(seed, n_boot, (len(values),))[0], values).mean(axis=1)
        else:
            groups = [group["value"].to_numpy() for _, group in diff.groupby("seed")]
            counts_per_seed = _draws(seed, n_boot, tuple(len(values) for values in groups))
            draws = sum(_resampled_means(counts, values) for values, counts in zip(groups, counts_per_seed)) / len(
                groups
            )
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(per_seed.mean()), float(low), float(high), per_seed


def _counts(diff: pd.DataFrame) -> tuple[int, int]:
    valid = int(diff["value"].notna().sum())
    return valid, len(diff) - valid


def _directional(mean: float, low: float, high: float, every_seed_agrees: bool) -> str:
    """The verdict of an ordering or a trend from its effect (> 0 claimed) and interval."""
    if high < 0:
        return "contradicted"
    if mean <= 0:
        return "not reproduced"
    if low > 0 and every_seed_agrees:
        return "reproduced"
    return "partly"


def ordering(diff: pd.DataFrame, over: str = "images") -> Judgement:
    """The rule for "A beats B"; ``diff`` holds A - B signed so that > 0 is the claim."""
    mean, low, high, per_seed = bootstrap(diff, over)
    agreeing = int((per_seed > 0).sum())
    verdict = _directional(mean, low, high, agreeing == len(per_seed))
    return Judgement(mean, low, high, *_counts(diff), agreeing, len(per_seed), verdict)


def orderings(
    table: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    *,
    by: str = "method",
    value: str = "score",
    n_boot: int = 2000,
    seed: int = BOOTSTRAP_SEED,
) -> dict[tuple[str, str], Judgement]:
    """``ordering(paired(table, a, b, ...))`` for every pair (a, b) of one tidy table (columns
    ``by``, seed, image, ``value``), the same judgements (tested), computed at once: where the
    two models are measured on the same images in every seed with no value missing, each model's
    resampled means are computed once for all its pairs (a mean of differences is a difference of
    means); any other pair is judged one by one."""
    names = sorted({name for pair in pairs for name in pair})
    grids: dict[str, pd.DataFrame] = {}
    for name in names:
        rows = table[table[by] == name]
        if rows.duplicated(["seed", "image"]).any():
            raise ValueError(f"{name!r} has two rows for one seed and image: the pairing would be ambiguous")
        grids[name] = rows.pivot(index="image", columns="seed", values=value)
    shapes = {(tuple(g.index), tuple(g.columns)) for g in grids.values() if not g.isna().any().any()}
    resampled: dict[str, np.ndarray] = {}
    if len(shapes) == 1:
        ((images, _),) = shapes
        if len(images) > 1:
            counts = _draws(seed, n_boot, (len(images),))[0]
            resampled = {
                name: _resampled_means(counts, g.to_numpy()) for name, g in grids.items() if not g.isna().any().any()
            }
    judged = {}
    for a, b in pairs:
        if a in resampled and b in resampled:
            draws = (resampled[a] - resampled[b]).mean(axis=1)
            low, high = (float(v) for v in np.percentile(draws, [2.5, 97.5]))
            per_seed = grids[a].mean() - grids[b].mean()
            mean = float(per_seed.mean())
            agreeing = int((per_seed > 0).sum())
            verdict = _directional(mean, low, high, agreeing == len(per_seed))
            judged[a, b] = Judgement(mean, low, high, grids[a].size, 0, agreeing, len(per_seed), verdict)
        else:
            judged[a, b] = ordering(paired(table, a, b, by=by, value=value))
    return judged


def equivalence(diff: pd.DataFrame, margin: float, over: str = "images") -> Judgement:
    """The rule for "A is about as good as B" within ``margin`` (same units as ``diff``)."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    mean, low, high, per_seed = bootstrap(diff, over)
    agreeing = int((per_seed.abs() <= margin).sum())
    if low > margin or high < -margin:
        verdict = "contradicted"
    elif abs(mean) > margin:
        verdict = "not reproduced"
    elif -margin <= low and high <= margin and agreeing == len(per_seed):
        verdict = "reproduced"
    else:
        verdict = "partly"
    return Judgement(mean, low, high, *_counts(diff), agreeing, len(per_seed), verdict)


def _magnitude_verdict(low: float, high: float, paper_value: float, null: float | None) -> str:
    if low <= paper_value <= high:
        return "reproduced"
    if null is None:
        return "not reproduced"
    sides = (
        (low - null) * (1.0 if paper_value >= null else -1.0),
        (high - null) * (1.0 if paper_value >= null else -1.0),
    )
    if min(sides) > 0:
        return "partly"  # the whole interval on the paper's side of no effect
    if max(sides) < 0:
        return "contradicted"
    return "not reproduced"


def _agreeing(per_seed: pd.Series, paper_value: float, null: float | None) -> int:
    """Seeds whose own value lies on the paper's side of ``null`` (none for a level)."""
    if null is None:
        return 0
    claimed = 1.0 if paper_value >= null else -1.0
    return int(((per_seed - null) * claimed > 0).sum())


def magnitude(diff: pd.DataFrame, paper_value: float, null: float | None = 0.0, over: str = "images") -> Judgement:
    """The rule for "the effect is ``paper_value``": ``diff`` holds our effect per image (or per
    seed) in the paper's units, signed so that > 0 is the claimed direction; ``null`` is the value
    of no effect, None for a level (an accuracy), which has no direction. ``seeds agreeing``
    counts the seeds whose mean lies on the paper's side of ``null`` (for a level: none)."""
    mean, low, high, per_seed = bootstrap(diff, over)
    verdict = _magnitude_verdict(low, high, paper_value, null)
    agreeing = _agreeing(per_seed, paper_value, null)
    return Judgement(mean, low, high, *_counts(diff), agreeing, len(per_seed), verdict, directional=null is not None)


def ratio(pairs: pd.DataFrame, paper_value: float, n_boot: int = 2000, seed: int = BOOTSTRAP_SEED) -> Judgement:
    """The magnitude rule for "A's mean is ``paper_value`` times B's" (no effect: 1): ``pairs``
    has columns seed, image, a and b, every image measured in every seed (``paired_values``).
    Per seed the ratio of the two means over images, averaged over seeds; the interval resamples
    images, the same draw for every seed and both models."""
    pairs = pairs.dropna(subset=["a", "b"])
    numerator = pairs.pivot(index="image", columns="seed", values="a")
    denominator = pairs.pivot(index="image", columns="seed", values="b")
    complete = numerator.notna().all(axis=1) & denominator.notna().all(axis=1)
    if not complete.any():
        raise ValueError("no image is measured in every seed for both models")
    a, b = numerator[complete].to_numpy(), denominator[complete].to_numpy()
    counts = _draws(seed, n_boot, (len(a),))[0]
    draws = (_resampled_means(counts, a) / _resampled_means(counts, b)).mean(axis=1)
    low, high = (float(v) for v in np.percentile(draws, [2.5, 97.5]))
    per_seed = pd.Series(a.mean(0) / b.mean(0), index=numerator.columns)
    missing = int((~complete).sum()) * a.shape[1]
    verdict = _magnitude_verdict(low, high, paper_value, 1.0)
    return Judgement(
        float(per_seed.mean()), low, high, a.size, missing, _agreeing(per_seed, paper_value, 1.0), a.shape[1], verdict
    )


def _spearman(means: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Spearman's correlation of each row of ``means`` (..., settings) with ``x`` (ties averaged;
    0 where a row is constant)."""
    from scipy.stats import rankdata

    ranks = rankdata(means, axis=-1)
    ranks = ranks - ranks.mean(-1, keepdims=True)
    rx = rankdata(x) - rankdata(x).mean()
    scale = np.sqrt((ranks**2).sum(-1) * (rx**2).sum())
    return np.divide((ranks * rx).sum(-1), scale, out=np.zeros(ranks.shape[:-1]), where=scale > 0)


def trend(table: pd.DataFrame, n_boot: int = 2000, seed: int = BOOTSTRAP_SEED) -> Judgement:
    """The rule for "the measure grows with the setting": ``table`` has columns x (the setting),
    seed, image and value (signed so that growth is the claim), every image measured at every
    setting and seed. Needs at least two settings."""
    if table.duplicated(["seed", "x", "image"]).any():
        raise ValueError("two values for one image, setting and seed: the trend would be ambiguous")
    # columns seed-major, settings ascending: the reshape below relies on it (pivot keeps the
    # order in which the rows came)
    grid = table.pivot(index="image", columns=["seed", "x"], values="value").sort_index(axis=1)
    seeds = sorted(table["seed"].unique())
    xs = np.array(sorted(table["x"].unique()), dtype=float)
    if len(xs) < 2:
        raise ValueError("a trend needs at least two settings")
    complete = grid.dropna()  # an image must be measured at every setting and seed
    if complete.empty:
        raise ValueError("no image is measured at every setting and seed")
    missing = (len(grid) - len(complete)) * len(seeds)
    grid = complete
    values = grid.to_numpy().reshape(len(grid), len(seeds), len(xs))
    per_seed = pd.Series(_spearman(values.mean(0), xs), index=seeds)
    # images resampled once per draw, for every seed and setting alike: all draws' means in one
    # product and one ranking (a loop over the draws spent 1.6 s per trend in scipy's per-call
    # overhead); _draws gives the resamples the loop drew from the same generator
    n = len(values)
    counts = _draws(seed, n_boot, (n,))[0]
    samples = _resampled_means(counts, values.reshape(n, -1)).reshape(n_boot, len(seeds), len(xs))
    draws = _spearman(samples, xs).mean(-1)
    low, high = np.percentile(draws, [2.5, 97.5])
    mean = float(per_seed.mean())
    agreeing = int((per_seed > 0).sum())
    verdict = _directional(mean, float(low), float(high), agreeing == len(per_seed))
    return Judgement(mean, float(low), float(high), len(values) * len(seeds), missing, agreeing, len(seeds), verdict)


def at_most(diff: pd.DataFrame, margin: float, over: str = "images") -> Judgement:
    """The rule for "A does not improve on B" beyond ``margin``; ``diff`` holds the improvement of A
    over B (> 0: A better), in the units of ``margin``."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    mean, low, high, per_seed = bootstrap(diff, over)
    agreeing = int((per_seed <= margin).sum())
    if low > margin:
        verdict = "contradicted"
    elif mean > margin:
        verdict = "not reproduced"
    elif high <= margin and agreeing == len(per_seed):
        verdict = "reproduced"
    else:
        verdict = "partly"
    return Judgement(mean, low, high, *_counts(diff), agreeing, len(per_seed), verdict)


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


def tally(verdicts: Sequence[str] | pd.Series) -> str:
    """How many verdicts there are of each level, as markdown for prose, in the order of
    ``LEVELS`` and leaving out the levels with none: "**2** reproduced and **10** contradicted".
    Every verdict is counted (a sentence that names some levels only can add up short)."""
    counts = pd.Series(list(verdicts), dtype=object).value_counts()
    unknown = sorted(set(counts.index) - set(LEVELS))
    if unknown:
        raise ValueError(f"not a verdict level: {', '.join(map(str, unknown))}")
    parts = [f"**{counts[level]}** {level}" for level in LEVELS if level in counts]
    if len(parts) < 2:
        return parts[0] if parts else "none"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def page_view(verdicts: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A verdict table as a page shows it, narrow enough for the page: one row per claim, the
    verdict first, then the effect with its 95% interval in one cell, the paper's value where a row
    has one (magnitudes), n and the seeds agreeing (rows judged without an interval show what they
    counted instead)."""

    def effect(row: pd.Series) -> str:
        if pd.isna(row.get("effect")):
            return str(row.get("measure", "—"))
        return effect_text(row["effect"], row["low"], row["high"], digits)

    paper = {}
    if "paper" in verdicts and verdicts["paper"].notna().any():  # magnitudes: the paper's value beside ours
        paper["paper"] = ["—" if pd.isna(v) else f"{v:.{digits}g}" for v in verdicts["paper"]]
    return pd.DataFrame(
        {
            "verdict": verdicts["verdict"].to_list(),
            "effect [95% interval]": [effect(row) for _, row in verdicts.iterrows()],
            **paper,
            "n": [("—" if pd.isna(n) else int(n)) for n in verdicts.get("n", pd.Series(index=verdicts.index))],
            "seeds agreeing": verdicts.get("seeds agreeing", pd.Series("—", index=verdicts.index))
            .fillna("—")
            .to_list(),
        },
        index=pd.Index(verdicts["claim"].to_list(), name="claim"),
    )
