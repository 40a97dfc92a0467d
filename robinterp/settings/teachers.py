"""Which model a method that learns from another trains as its teacher, without torch: the
derivation that the method's ``prepare`` trains (``robinterp.methods.attribution_alignment``)
and that a chapter's config checks its listed models against.

Unlike the rest of ``robinterp.settings`` this keys what it derives: the models trained with a
teacher depend on it (``robinterp.codehash`` follows it from the method's module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def alignment_teacher(params: Mapping[str, Any], epochs: float) -> tuple[str, tuple[tuple[str, Any], ...], float]:
    """Attribution alignment's teacher, given the student's parameters and epochs: (method, its
    parameters, epochs), PGD training in L2 on the student's data, architecture, seed and schedule."""
    teacher_epochs = params["teacher_epochs"] if params["teacher_epochs"] is not None else epochs
    return (
        "pgd_at",
        (
            ("eps", params["teacher_eps"]),
            ("eps_warmup", params["teacher_eps_warmup"]),
            ("norm", "l2"),
            ("steps", params["teacher_steps"]),
        ),
        teacher_epochs,
    )
