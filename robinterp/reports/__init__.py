"""What each chapter concludes: verdicts and comparison tables, computed from its results.

Kept apart from ``robinterp.experiments`` on purpose: cache keys hash the code a
cached result imports, and nothing cached imports these modules, so rewording a
verdict or a table never retrains a model or recomputes a result.
"""

from __future__ import annotations


def seed_verdict(wins: int, n: int) -> str:
    """A claim "A beats B" over seeds: reproduced in every seed, partly in some, not in none."""
    if n == 0:
        return "not measured (label or eps absent)"
    return "reproduced" if wins == n else "partly" if wins > 0 else "not reproduced"
