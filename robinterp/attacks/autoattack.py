"""AutoAttack (Croce and Hein 2020), evaluation only: no training method runs it, so an edit
here retrains no model."""

from __future__ import annotations

import torch
from torch import nn

from robinterp import RobinterpError
from robinterp.attacks import Attack
from robinterp.attacks._steps import check, get_norm
from robinterp.models import eval_mode
from robinterp.settings.attacks import AutoAttackOptions
from robinterp.settings.choices import AUTOATTACK_PARTS


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    seed: int | torch.Tensor | None = None,
    early_stop: bool = True,
    version: str = "standard",
    parts: tuple[str, ...] | None = None,
) -> torch.Tensor:
    """AutoAttack (Croce and Hein 2020) through ``pyautoattack``, the official code packaged.

    ``version="standard"`` runs APGD-CE, APGD-T, FAB-T and Square in turn, each on
    the points the earlier ones did not break; ``parts`` runs a subset of them (for
    a CPU budget), each with the version's settings (restarts, target classes). Seeded
    (seed 0 when None): pyautoattack otherwise seeds from the clock. It always stops early
    (attacks only the points classified right, keeps any success): ``early_stop`` is accepted
    only so that every attack shares a signature.
    """
    check(eps)
    unit = get_norm(norm)
    if parts is not None and not parts:
        raise RobinterpError("AutoAttack parts must name at least one part, or be None for the version's own")
    unknown = [p for p in parts or () if p not in AUTOATTACK_PARTS]
    if unknown:
        raise RobinterpError(f"unknown AutoAttack part {unknown[0]!r}; choose from {', '.join(AUTOATTACK_PARTS)}")
    if eps == 0:
        return x.detach().clone()
    try:
        from pyautoattack import AutoAttack
    except ImportError:
        raise RobinterpError(
            "AutoAttack needs the pyautoattack package: pip install pyautoattack==0.2.0 (it is in requirements.txt)"
        ) from None
    with eval_mode(model):
        adversary = AutoAttack(
            model,
            norm={"linf": "Linf", "l2": "L2"}[unit.name],
            eps=eps,
            version=version,
            # one generator for the batch: the first image's seed when they come per image
            seed=0 if seed is None else int(seed if isinstance(seed, int) else seed.flatten()[0]),
            device=x.device,
        )
        if parts is not None:
            # Each part as the chosen version runs it: pyautoattack's "custom" version would run
            # APGD-CE and FAB with 5 restarts, not the standard version's one (5x the cost on the
            # points that resist), so the version's settings are kept and only the list changes.
            adversary.attacks_to_run = list(parts)
        x_adv, _ = adversary.run_standard_evaluation(x.detach(), y, batch_size=len(x))
    return x_adv.detach()


ATTACK = Attack("autoattack", autoattack, __name__, AutoAttackOptions, evaluation_only=True)
