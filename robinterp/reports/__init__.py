"""What each chapter concludes: verdicts and comparison tables, computed from its results.

Kept apart from ``robinterp.experiments`` on purpose: cache keys hash the code a
cached result imports, and nothing cached imports these modules, so rewording a
verdict or a table never retrains a model or recomputes a result.
"""

from __future__ import annotations
