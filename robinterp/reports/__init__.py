"""What each chapter concludes: verdicts and comparison tables, computed from its results.

Kept apart from ``robinterp.experiments`` on purpose: cache keys hash the code a
cached result imports, and nothing cached imports these modules, so rewording a
verdict or a table never retrains a model or recomputes a result.
"""

from __future__ import annotations

import math
import re

# how pages name the attacks (robinterp.attacks' registry keys are lower case)
ATTACK_TITLES = {"fgsm": "FGSM", "pgd": "PGD", "mifgsm": "MI-FGSM"}


def attack_title(name: str) -> str:
    """An attack's name as tables, claims and figures show it: "mifgsm" is MI-FGSM."""
    return ATTACK_TITLES.get(name, name.upper())


# how pages name the seven Quantus metrics (robinterp.explanation_quality.METRICS' keys) and clean
# accuracy: in the words of Moshe et al.'s text
METRIC_TITLES = {
    "max_sensitivity": "max-sensitivity",
    "avg_sensitivity": "avg-sensitivity",
    "local_lipschitz": "local Lipschitz estimate",
    "faithfulness_correlation": "faithfulness correlation",
    "faithfulness_estimate": "faithfulness estimate",
    "complexity": "complexity",
    "sparseness": "sparseness",
    "test_accuracy": "clean accuracy",
}


def metric_title(name: str) -> str:
    """A metric's name as tables, claims and figures show it: "max_sensitivity" is max-sensitivity."""
    return METRIC_TITLES.get(name, name.replace("_", " "))


_METRIC_KEY = re.compile(r"\b(" + "|".join(METRIC_TITLES) + r")\b")


def with_metric_titles(text: str) -> str:
    """``text`` with every metric's registry key written as its title: for sentences written
    with keys (a metric's documented settings, verdict tables saved before the pages used titles)."""
    return _METRIC_KEY.sub(lambda key: METRIC_TITLES[key.group(1)], text)


def titled(title: str, higher_is_better: bool) -> str:
    """A measure's column title with the direction that is better: "sparseness ↑"."""
    return f"{title} {'↑' if higher_is_better else '↓'}"


def mean_sd(mean: float, sd: float) -> str:
    """A table cell "mean ± sd" over seeds; the mean alone where there is one seed (its sd is
    undefined, and "± 0" would claim that the seeds agree)."""
    return f"{mean:.3g}" if math.isnan(sd) else f"{mean:.3g} ± {sd:.2g}"
