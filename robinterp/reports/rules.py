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
- **Equivalence** ("accuracy unaffected", within a stated margin m): *reproduced* when
  the interval lies inside [-m, m] and so does every seed's mean; *partly* when the mean
  does but the interval or a seed leaves it; *not reproduced* when the mean is outside;
  *contradicted* when the whole interval is outside.
"""

from __future__ import annotations

import dataclasses
import functools

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
EQUIVALENCE_RULE = (
    "An equivalence is reproduced when the 95% interval of the difference and every "
    "seed's mean lie within the stated margin; partly when only the mean does; not "
    "reproduced when the mean is outside; contradicted when the whole interval is."
)


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

    def interval(self, digits: int = 3) -> str:
        return f"{self.mean:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"

    def row(self) -> dict[str, object]:
        return {
            "effect": self.mean,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "missing": self.missing,
            "seeds agreeing": f"{self.seeds_agreeing} of {self.seeds}",
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
    diff = diff.dropna(subset=["value"])
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
    grid = table.pivot(index="image", columns=["seed", "x"], values="value")
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
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for i in range(n_boot):  # images resampled once per draw, for every seed and setting alike
        sample = values[rng.integers(0, len(values), len(values))].mean(0)
        draws[i] = _spearman(sample, xs).mean()
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
    left = table[table[by] == a].set_index(list(keys))[value]
    right = table[table[by] == b].set_index(list(keys))[value]
    if not (left.index.is_unique and right.index.is_unique):
        raise ValueError(f"{a!r} or {b!r} has two rows for one of {keys}: the pairing would be ambiguous")
    both = left.index.intersection(right.index)
    diff = (left.loc[both] - right.loc[both]).rename("value").reset_index()
    return diff[[k for k in ("seed", "image") if k in diff] + ["value"]]


def page_view(verdicts: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A verdict table as a page shows it, narrow enough for the page: one row per claim, the
    verdict first, then the effect with its 95% interval in one cell, n and the seeds agreeing
    (rows judged without an interval show what they counted instead)."""

    def effect(row: pd.Series) -> str:
        if pd.isna(row.get("effect")):
            return str(row.get("measure", "—"))
        return f"{row['effect']:.{digits}g} [{row['low']:.{digits}g}, {row['high']:.{digits}g}]"

    return pd.DataFrame(
        {
            "verdict": verdicts["verdict"].to_list(),
            "effect [95% interval]": [effect(row) for _, row in verdicts.iterrows()],
            "n": [("—" if pd.isna(n) else int(n)) for n in verdicts.get("n", pd.Series(index=verdicts.index))],
            "seeds agreeing": verdicts.get("seeds agreeing", pd.Series("—", index=verdicts.index))
            .fillna("—")
            .to_list(),
        },
        index=pd.Index(verdicts["claim"].to_list(), name="claim"),
    )
