"""What each chapter concludes: verdicts and comparison tables, computed from its results.

Kept apart from ``robinterp.experiments`` on purpose: cache keys hash the code a
cached result imports, and nothing cached imports these modules, so rewording a
verdict or a table never retrains a model or recomputes a result.
"""

from __future__ import annotations

import math


def titled(title: str, higher_is_better: bool) -> str:
    """A measure's column title with the direction that is better: "sparseness ↑"."""
    return f"{title} {'↑' if higher_is_better else '↓'}"


def mean_sd(mean: float, sd: float) -> str:
    """A table cell "mean ± sd" over seeds; the mean alone where there is one seed (its sd is
    undefined, and "± 0" would claim that the seeds agree)."""
    return f"{mean:.3g}" if math.isnan(sd) else f"{mean:.3g} ± {sd:.2g}"
