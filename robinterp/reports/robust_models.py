"""Verdicts of the chapter "Robust models" (Madry et al.; Etmann et al.) under the book's rule
(``robinterp.reports.rules``), on per-image tables paired across models on the same images."""

from __future__ import annotations

import pandas as pd

from robinterp.configs.robust_models import RobustModelsConfig
from robinterp.experiments import common
from robinterp.reports import effects, rules
from robinterp.titles import attack_title


def first_trained_by(cfg: RobustModelsConfig, method: str) -> str | None:
    """The label of the first listed model trained by ``method`` (None when none is)."""
    return next((e.label for e in cfg.methods if e.method == method), None)


def accuracy_by_attack(cfg: RobustModelsConfig, summary: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd accuracy from ``book.mean_sd``'s table of one radius, a row per model in the
    order the config lists them and a column per attack in the order the sweep runs them, each
    named as the papers write it (MI-FGSM, not mifgsm); any other model or attack in ``summary``
    follows, never dropped."""
    table = summary.pivot(index="method", columns="attack", values="mean ± sd")
    listed = [e.label for e in cfg.methods if e.label in table.index]
    swept = [e.label for e in cfg.attacks if e.label in table.columns]
    labels = listed + [m for m in table.index if m not in listed]
    attacks = swept + [a for a in table.columns if a not in swept]
    # no name over the columns: the attacks' titles say what they are, and the table keeps one
    # header row ("method" in its corner) instead of pandas' second row for the index name
    return table.reindex(index=labels, columns=attacks).rename(columns=attack_title).rename_axis(columns=None)


def _correct(robust: pd.DataFrame, label: str, attack: str, eps: float) -> pd.DataFrame:
    """Per image and seed: right (0 or 100) under ``attack`` at ``eps`` (eps 0: clean)."""
    rows = robust[(robust.method == label) & (robust.attack == attack) & (robust.eps.round(6) == round(eps, 6))]
    return rows[["seed", "image"]].assign(value=rows["correct"].to_numpy(float))


def claims(cfg: RobustModelsConfig, robust: pd.DataFrame, align: pd.DataFrame) -> pd.DataFrame:
    """Each claim the chapter checks, the paper's value where it gives one, and the verdict of the
    book's rule; from the per-image robustness table (``robust_per_image``) and the per-image
    alignment table (``alignment_per_image``).

    The claims are about the first listed standard and PGD-trained models; without one of them
    no row is made. Madry et al.'s numbers are levels (the magnitude rule, a band of the paper's
    rounding or one point of accuracy); "near 0%" is ``at_most`` the chapter's ``near_zero``
    points; the comparisons are orderings with the measure's smallest effect of interest. A claim
    about a model that collapsed (``rules.collapsed``) is not judged.
    """
    from robinterp.paper_numbers import paper_number

    robust_label, standard = first_trained_by(cfg, "pgd_at"), first_trained_by(cfg, "standard")
    pgd = common.attack_label(cfg, "pgd")  # the listed attack the claims about PGD are judged under
    if robust_label is None or standard is None or pgd is None:
        return rules.with_data_set(
            pd.DataFrame(columns=["claim", "source", "measure", "paper", "verdict"]), cfg.dataset
        )
    eps = max(cfg.epsilons)
    collapsed = rules.collapse_gate(robust[(robust.attack == pgd) & (robust.eps == 0)])
    gate = {label: collapsed(label) for label in (robust_label, standard)}
    both = gate[robust_label] or gate[standard]
    accuracy_effect = effects.smallest("accuracy")
    rows = []
    ref = paper_number("madry_mnist_clean")
    rows.append(
        {
            "claim": "PGD training keeps clean accuracy high",
            "source": ref["cite"],
            "measure": f"{robust_label}'s clean accuracy on the attacked images (%)",
            "paper": ref["value"],
            **rules.magnitude(
                _correct(robust, robust_label, pgd, 0.0), ref["value"], effects.band("accuracy", ref["value"])
            )
            .gated(gate[robust_label])
            .row(),
        }
    )
    ref = paper_number("madry_mnist_pgd40_eps0.3")
    claim = f"the PGD-trained model resists PGD at eps {eps:g}"
    measured = _correct(robust, robust_label, pgd, eps)
    if round(eps, 6) == 0.3:
        band = effects.band("accuracy", ref["value"])
        judged = rules.magnitude(measured, ref["value"], band).gated(gate[robust_label]).row()
        rows.append({"claim": claim, "source": ref["cite"], "paper": ref["value"], **judged})
    else:
        rows.append(
            {"claim": claim, "source": ref["cite"], "verdict": f"not run (the paper's eps is 0.3, ours {eps:g})"}
        )
    rows[-1]["measure"] = f"{robust_label}'s accuracy under PGD at eps {eps:g} (%)"
    rows.append(
        {
            "claim": f"the PGD-trained model is more robust than the standard one (PGD, eps {eps:g})",
            "source": "madry2018pgd",
            "measure": f"PGD accuracy at {eps:g}, {robust_label} - {standard} (points)",
            **rules.ordering(
                rules.paired(
                    robust[(robust.attack == pgd) & (robust.eps.round(6) == round(eps, 6))],
                    robust_label,
                    standard,
                    value="correct",
                ),
                accuracy_effect,
            )
            .gated(both)
            .row(),
        }
    )
    rows.append(
        {
            "claim": f"the standard model falls to near 0% under PGD at eps {eps:g} (at most {cfg.near_zero:g}%)",
            "source": "madry2018pgd",
            "measure": f"{standard}'s accuracy under PGD at eps {eps:g} (%)",
            **rules.at_most(_correct(robust, standard, pgd, eps), cfg.near_zero).gated(gate[standard]).row(),
        }
    )
    rows.append(
        {
            "claim": "robust models' saliency aligns better with the image",
            "source": "etmann2019connection",
            "measure": f"alignment, {robust_label} - {standard}",
            **rules.ordering(
                rules.paired(align, robust_label, standard, value="alignment"),
                effects.smallest("alignment", float(align.loc[align.method == standard, "alignment"].mean())),
            )
            .gated(both)
            .row(),
        }
    )
    return rules.with_data_set(pd.DataFrame(rows), cfg.dataset)
