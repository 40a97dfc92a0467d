"""The smallest effect of interest of every measure a claim is judged on, stated once with why
(keys no cache: presentation).

The rule (``robinterp.reports.rules``) calls a claim *consistent* only when its interval lies
beyond this size in the claimed direction, and *no meaningful difference* when it lies inside
plus or minus this size: a difference smaller than it is one no reader of the papers would act
on, however certain. A size is absolute (in the measure's own units) or relative (a fraction of
the reference model's mean, for measures whose scale depends on the data and the network).
"""

from __future__ import annotations

import dataclasses
import decimal
import math


@dataclasses.dataclass(frozen=True)
class SmallestEffect:
    """The smallest difference on one measure that a claim about it must clear."""

    title: str
    """The measure as pages name it."""
    size: float
    """Absolute: in the measure's units. Relative: a fraction of the reference model's |mean|."""
    unit: str
    relative: bool
    why: str
    fraction_of: str = "the reference model's mean"
    """What a relative size is a fraction of."""

    def of(self, reference: float = math.nan) -> float:
        """The size in the measure's units; a relative size needs the reference model's mean."""
        if not self.relative:
            return self.size
        if not math.isfinite(reference) or reference == 0:
            raise ValueError(f"{self.title}: a relative smallest effect needs a nonzero reference mean")
        return self.size * abs(reference)

    def describe(self) -> str:
        if self.relative:
            return f"{self.size:g} of {self.fraction_of}"
        unit = self.unit[:-1] if self.size == 1 and self.unit.endswith("s") else self.unit
        return f"{self.size:g} {unit}".strip()


_ACCURACY_WHY = (
    "the papers report accuracies to 0.1 to 1 point and argue from gaps of several points; "
    "seed-to-seed spreads here are 1 to 7 points"
)
_SCALE_WHY = "its scale depends on the input size and the network, so a fixed number would mean nothing across chapters"
_CORRELATION_WHY = "a correlation ranges over [-1, 1]; 0.05 is 2.5% of that range"
_SHARE_WHY = "a share or a Gini index ranges over [0, 1]; 0.01 is 1% of that range"

EFFECTS = {
    "accuracy": SmallestEffect("accuracy (clean, robust, or after removal)", 1.0, "points", False, _ACCURACY_WHY),
    "alignment": SmallestEffect(
        "alignment (Etmann et al.: |<x, saliency>| / |saliency|)",
        0.05,
        "",
        True,
        "its scale is the images' norm (about 4 to 8 on MNIST and Fashion-MNIST), not a fixed range",
    ),
    "background_share": SmallestEffect("share of the absolute saliency off the object", 0.01, "", False, _SHARE_WHY),
    "sparseness": SmallestEffect("sparseness (Gini)", 0.01, "", False, _SHARE_WHY),
    "faithfulness_correlation": SmallestEffect("faithfulness correlation", 0.05, "", False, _CORRELATION_WHY),
    "faithfulness_estimate": SmallestEffect("faithfulness estimate", 0.05, "", False, _CORRELATION_WHY),
    "complexity": SmallestEffect(
        "complexity (entropy)",
        0.01,
        "",
        True,
        "entropy's range is ln(pixels), about 6.7 nats at 28x28, near the models' means, so 1% of the mean is "
        "about 1% of the range",
    ),
    "max_sensitivity": SmallestEffect("max-sensitivity", 0.05, "", True, _SCALE_WHY),
    "avg_sensitivity": SmallestEffect("avg-sensitivity", 0.05, "", True, _SCALE_WHY),
    "local_lipschitz": SmallestEffect("local Lipschitz estimate", 0.05, "", True, _SCALE_WHY),
    "time": SmallestEffect(
        "time per map",
        0.10,
        "",
        True,
        "timings on a shared machine vary by several percent from run to run; a tenth of the reference's time",
        "the slower map's time",
    ),
    "ratio": SmallestEffect(
        "a ratio of two models' means",
        0.10,
        "",
        True,
        "the papers quote ratios as whole percentages of single runs; 10% of the quoted ratio",
        "the paper's ratio",
    ),
}
"""The smallest effect of each measure, by the key a report passes (a metric's registry key, or
the kind of measure)."""

MEASURE_KEYS = {
    "removal_gap": "accuracy",
    "background_mass": "background_share",
    "roar": "accuracy",
    "correct": "accuracy",
}
"""Measures judged in another measure's units (the removal gap is a difference of accuracies)."""


def smallest(measure: str, reference: float = math.nan) -> float:
    """The smallest effect of interest of ``measure`` in its units (``reference``: the reference
    model's mean, for a relative size)."""
    key = MEASURE_KEYS.get(measure, measure)
    if key not in EFFECTS:
        raise KeyError(f"no smallest effect of interest is stated for {measure!r}; add it to effects.EFFECTS")
    return EFFECTS[key].of(reference)


def rounding(value: float) -> float:
    """Half a unit in the last printed place of a paper's number: 98.8 was anything in [98.75,
    98.85), so 0.05; 35 gives 0.5."""
    exponent = decimal.Decimal(repr(float(value))).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(int(exponent), 0) if isinstance(exponent, int) else 0.0


def band(measure: str, paper_value: float, reference: float = math.nan) -> float:
    """The half-width of the equivalence band around a paper's value: its rounding or the
    measure's smallest effect, whichever is larger."""
    return max(rounding(paper_value), smallest(measure, reference))
