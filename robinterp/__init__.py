"""robinterp: adversarial robustness and saliency interpretability, one chapter per paper.

The package holds everything a chapter computes (data, models, attacks, training
methods, attributions, metrics, the cache and the papermill runner); the notebooks
under ``book/`` only narrate, set parameters and plot.

Where a new piece goes: a training method in ``robinterp/methods/``, an attack in
``robinterp/attacks/``, an explanation metric in ``robinterp/explanation_quality/``, a measure of
one model in ``robinterp/measures/`` (one module each, found by its folder's registry), a
chapter in ``robinterp/experiments/`` and ``robinterp/reports/`` with an entry in
``robinterp.chapters.CHAPTERS``; each folder's ``__init__`` docstring says how.
"""

__version__ = "0.1.0"


class RobinterpError(Exception):
    """An error the user can fix; its message is one line saying what and how."""
