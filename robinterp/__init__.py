"""robinterp: adversarial robustness and saliency interpretability, one chapter per paper.

The package holds everything a chapter computes (data, models, attacks, training
methods, attributions, metrics, the cache and the papermill runner); the notebooks
under ``book/`` only narrate, set parameters and plot.

Where a new piece goes: a training method in ``robinterp/methods/`` (one module, found
by the registry), an attack in ``robinterp.attacks.ATTACKS``, an explanation metric in
``robinterp.explanation_quality.METRICS``, a chapter in ``robinterp/experiments/`` and
``robinterp/reports/`` with an entry in ``robinterp.runner.CHAPTERS``; each module's
docstring says how.
"""

__version__ = "0.1.0"


class RobinterpError(Exception):
    """An error the user can fix; its message is one line saying what and how."""
