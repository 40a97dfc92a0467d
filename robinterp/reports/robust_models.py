"""Verdicts of the chapter "Robust models" (Madry et al.; Etmann et al.)."""

from __future__ import annotations

import pandas as pd

from robinterp.experiments.robust_models import RobustModelsConfig


def _verdict(measured: float, paper: float, close: float, partly: float) -> str:
    """reproduced within ``close`` points of the paper, partly within ``partly``, else not."""
    gap = abs(measured - paper)
    return "reproduced" if gap <= close else "partly" if gap <= partly else "not reproduced"


def first_trained_by(cfg: RobustModelsConfig, method: str) -> str | None:
    """The label of the first listed model trained by ``method`` (None when none is)."""
    return next((e.label for e in cfg.methods if e.method == method), None)


def claims(cfg: RobustModelsConfig, records: pd.DataFrame, curves: pd.DataFrame, align: pd.DataFrame) -> pd.DataFrame:
    """Each claim the chapter checks, the paper's value, ours (mean +- sd over seeds), a verdict.

    The claims are about the first listed standard and PGD-trained models; without one
    of them, the chapter's methods cannot be judged against Madry et al. and no row is
    made. Numbers are in percent. Thresholds: reproduced within 2 points (clean) or 5
    points (robust) of the paper, partly within 5 / 20 points.
    """
    from robinterp.paper_numbers import paper_number

    robust, standard_label = first_trained_by(cfg, "pgd_at"), first_trained_by(cfg, "standard")
    if robust is None or standard_label is None:
        return pd.DataFrame(columns=["claim", "source", "paper", "ours", "sd", "verdict"])
    rows = []
    clean = records[records.method == robust]["test_accuracy"] * 100
    ref = paper_number("madry_mnist_clean")
    rows.append(
        {
            "claim": "PGD training keeps clean accuracy high",
            "source": ref["cite"],
            "paper": ref["value"],
            "ours": clean.mean(),
            "sd": clean.std(ddof=1),
            "verdict": _verdict(clean.mean(), ref["value"], 2, 5),
        }
    )
    eps = max(cfg.epsilons)
    pgd = curves[(curves.attack == "pgd") & (curves.eps == eps)]
    robust_acc = pgd[pgd.method == robust]["accuracy"] * 100
    ref = paper_number("madry_mnist_pgd40_eps0.3")
    rows.append(
        {
            "claim": f"the PGD-trained model resists PGD at eps {eps}",
            "source": ref["cite"],
            "paper": ref["value"] if eps == 0.3 else float("nan"),
            "ours": robust_acc.mean(),
            "sd": robust_acc.std(ddof=1),
            "verdict": _verdict(robust_acc.mean(), ref["value"], 5, 20) if eps == 0.3 else "not comparable (other eps)",
        }
    )
    standard = pgd[pgd.method == standard_label]["accuracy"] * 100
    rows.append(
        {
            "claim": f"the standard model falls to near 0% under PGD at eps {eps}",
            "source": "madry2018pgd",
            "paper": float("nan"),
            "ours": standard.mean(),
            "sd": standard.std(ddof=1),
            "verdict": "reproduced" if standard.mean() < 10 else "not reproduced",
        }
    )
    wide = align.pivot(index="seed", columns="method", values="alignment")
    higher = int((wide[robust] > wide[standard_label]).sum())
    rows.append(
        {
            "claim": "robust models' saliency aligns better with the image (ours: ratio PGD / standard)",
            "source": "etmann2019connection",
            "paper": float("nan"),
            "ours": float((wide[robust] / wide[standard_label]).mean()),
            "sd": float((wide[robust] / wide[standard_label]).std(ddof=1)),
            "verdict": ("reproduced" if higher == len(wide) else "partly" if higher > 0 else "not reproduced")
            + f" (higher in {higher} of {len(wide)} seeds)",
        }
    )
    return pd.DataFrame(rows)
