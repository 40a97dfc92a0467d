"""robinterp: adversarial robustness and saliency interpretability, one chapter per paper.

The package holds everything a chapter computes (data, models, attacks, training
methods, attributions, metrics, the cache and the papermill runner); the notebooks
under ``book/`` only narrate, set parameters and plot.
"""

__version__ = "0.1.0"


class RobinterpError(Exception):
    """An error the user can fix; its message is one line saying what and how."""
