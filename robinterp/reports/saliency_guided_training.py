"""Verdicts and the paper-numbers table of the chapter "Saliency-guided training" (Guesmi et al.)."""

from __future__ import annotations

import pandas as pd

from robinterp.configs.saliency_guided_training import SaliencyGuidedConfig
from robinterp.experiments import common
from robinterp.reports import effects, rules
from robinterp.titles import attack_title, dataset_title


def _at(curves: pd.DataFrame, attack: str, eps: float, label: str) -> pd.Series:
    rows = curves[(curves.attack == attack) & (curves.eps.round(6) == round(eps, 6)) & (curves.method == label)]
    return rows.set_index("seed")["accuracy"] * 100


def numbers_table(cfg: SaliencyGuidedConfig, curves: pd.DataFrame) -> pd.DataFrame:
    """Every number the paper quotes for MNIST beside ours (mean, sd over seeds)."""
    from robinterp.paper_numbers import PAPER_NUMBERS

    rows = []
    for ref in PAPER_NUMBERS.values():
        if ref.get("cite") != "guesmi2024asgt":
            continue
        ours = _at(curves, ref["attack"], ref["eps"], ref["method"])
        mean = ours.mean() if len(ours) else float("nan")
        rows.append(
            {
                "attack": attack_title(ref["attack"]),
                "eps": ref["eps"],
                "method": ref["method"],
                "paper": ref["value"],
                "ours": mean,
                "sd": ours.std(ddof=1) if len(ours) > 1 else float("nan"),
                "ours - paper": mean - ref["value"],
                "where": ref["where"],
            }
        )
    return pd.DataFrame(rows)


def faithfulness_gap(removal: pd.DataFrame, label: str) -> tuple[pd.Series, float]:
    """Per seed: accuracy (points) with features removed in random order minus in saliency order,
    at the removed fraction nearest 50% (the larger the gap, the more faithful the map), from the
    per-image removal table."""
    fractions = sorted(set(removal.removed.round(6)) - {0.0})
    if not fractions:
        return pd.Series(dtype=float), float("nan")
    at = min(fractions, key=lambda f: abs(f - 0.5))
    rows = removal[(removal.method == label) & (removal.removed.round(6) == at)]
    table = rows.pivot_table(index="seed", columns="ranking", values="correct", aggfunc="mean")
    return table["random"] - table["saliency"], at


def _robust_diff(robust: pd.DataFrame, a: str, b: str, attack: str, eps: float) -> pd.DataFrame:
    """A - B of per-image correctness (points) under ``attack`` at ``eps``, paired on images and seeds."""
    at = robust[(robust.attack == attack) & (robust.eps.round(6) == round(eps, 6))]
    return rules.paired(at, a, b, value="correct")


def _gap_diff(removal: pd.DataFrame, a: str, b: str, at: float) -> pd.DataFrame:
    """A's random-minus-saliency gap minus B's, per image and seed (points): each image's
    correctness in random order minus in saliency order, paired across the two models."""
    rows = removal[removal.removed.round(6) == round(at, 6)]
    wide = rows.pivot_table(index=["method", "seed", "image"], columns="ranking", values="correct")
    gap = (wide["random"] - wide["saliency"]).rename("gap").reset_index()
    return rules.paired(gap, a, b, value="gap")


def paper_radii(dataset: str) -> tuple[dict[str, float], str]:
    """The radii where the paper quotes numbers for ``dataset`` (``paper_numbers.GUESMI_RADII``):
    "pgd" the headline radius, "fgsm" the other; MNIST's for a data set the paper does not use,
    and a note saying so."""
    from robinterp.paper_numbers import GUESMI_RADII

    if dataset in GUESMI_RADII:
        return GUESMI_RADII[dataset], ""
    return GUESMI_RADII["mnist"], f" (the paper has no {dataset_title(dataset)}: its MNIST radii)"


def roles(cfg: SaliencyGuidedConfig) -> dict[str, str]:
    """The chapter's label of each model the paper names, by the method that trains it: the
    first listed entry of each; "sgt" is the paper's SGT (the first SGT entry, k 0.3 on MNIST and
    0.1 on CIFAR-10), "sgt2" the second SGT entry (Figures 2 and 3 show two mask fractions), and
    "sgt k=0.3" and "sgt k=0.5" the SGT entries at the MNIST fractions the text compares."""
    found: dict[str, str] = {}
    for entry in cfg.methods:
        if entry.method == "sgt" and "sgt" in found:
            found.setdefault("sgt2", entry.label)
        found.setdefault(entry.method, entry.label)
        if entry.method == "sgt":
            found.setdefault(f"sgt k={entry.values.get('k'):g}", entry.label)
    return found


# the paper's orderings at one attack and radius: (claim's models by role, attack, radius key, source)
POINT_CLAIMS = (
    ("sgt", "standard", "pgd", "pgd", "guesmi2024asgt"),
    ("sgt", "standard", "fgsm", "fgsm", "guesmi2024asgt"),
    ("sgt", "standard", "pgd", "fgsm", "guesmi2024asgt"),
    ("sgt", "standard", "mifgsm", "fgsm", "guesmi2024asgt"),
    ("sgt k=0.3", "sgt k=0.5", "fgsm", "fgsm", "guesmi2024asgt"),
    ("asgt", "standard", "pgd", "pgd", "guesmi2024asgt"),
    ("asgt", "sgt", "pgd", "pgd", "guesmi2024asgt"),
    ("asgt", "fgsm_at", "pgd", "pgd", "guesmi2024asgt"),
    ("asgt", "sga", "pgd", "pgd", "guesmi2024asgt"),
    ("standard", "sgt", "pgd", "pgd", "karkehabadi2024sgt"),  # the contrary claim
)
# Figure 6: "ASGT ... focusing predominantly on the target object with fewer irrelevant features";
# "AT slightly outperforms ST": (less of the map off the object) A, B
FOCUS_CLAIMS = (("asgt", "standard"), ("asgt", "fgsm_at"), ("fgsm_at", "standard"))
# Figures 2 and 4 across the whole eps range: the pairs their curves order
RANGE_PAIRS = (
    ("sgt", "standard"),
    ("sgt2", "standard"),
    ("sgt k=0.3", "sgt k=0.5"),
    ("asgt", "standard"),
    ("asgt", "sgt"),
    ("asgt", "fgsm_at"),
    ("asgt", "sga"),
)


def _gate(robust: pd.DataFrame):
    """A claim's validity gate: why a claim about models A and B is not judged ("" when it is),
    from their clean accuracy per seed (radius 0 of the first attack)."""
    return rules.collapse_gate(rules.clean_rows(robust))


def _missing(found: dict[str, str], *names: str) -> str | None:
    gone = [name for name in names if name not in found]
    return f"not run (no {gone[0].replace('standard', 'ST')} model among the methods)" if gone else None


def _unmeasured(robust: pd.DataFrame, a: str, b: str, attack: str, eps: float) -> str | None:
    """Why A and B cannot be compared under ``attack`` at ``eps`` (None when they can)."""
    at = robust[(robust.attack == attack) & (robust.eps.round(6) == round(eps, 6))]
    if at.empty:
        return f"not run ({attack_title(attack)} at eps {eps:g} was not run)"
    absent = [label for label in (a, b) if not (at.method == label).any()]
    return f"not run (no results for {absent[0]})" if absent else None


def claims(
    cfg: SaliencyGuidedConfig,
    robust: pd.DataFrame,
    removal: pd.DataFrame | None = None,
    focus: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The paper's orderings (and Karkehabadi et al.'s contrary one) at the radii where the paper
    quotes numbers for the chapter's data set (``paper_radii``), under the book's rule
    (``rules.ordering``): the per-image difference A - B of robust correctness, paired on the same
    test images and seeds, its mean and 95% interval over seeds and images. With the removal
    table, Ismail et al.'s claim that SGT's saliency is more faithful than ST's, on the
    random-minus-saliency gap at 50% removed; with the focus table (``map_focus``), Figure 6's
    claims on the share of each map that lies off the object."""
    found = roles(cfg)
    radii, note = paper_radii(cfg.dataset)
    gate = _gate(robust)
    accuracy_effect = effects.smallest("accuracy")
    rows = []
    for a, b, attack, radius, source in POINT_CLAIMS:
        eps = radii[radius]
        la, lb = found.get(a, a), found.get(b, b)
        prefix = "contrary: " if source == "karkehabadi2024sgt" else ""
        base = {
            "claim": f"{prefix}{la} is more robust than {lb} ({attack_title(attack)}, eps {eps:g}{note})",
            "source": source,
            "measure": f"{attack_title(attack)} accuracy at {eps:g}, {la} - {lb} (points)",
        }
        listed = common.attack_label(cfg, attack) or attack  # the listed attack of that kind
        missing = _missing(found, a, b) or _unmeasured(robust, la, lb, listed, eps)
        if missing:
            rows.append({**base, "verdict": missing})
            continue
        judged = rules.ordering(_robust_diff(robust, la, lb, listed, eps), accuracy_effect)
        rows.append({**base, **judged.gated(gate(la, lb)).row()})
    sgt, standard = found.get("sgt"), found.get("standard")
    if removal is not None and sgt and standard:
        _, at = faithfulness_gap(removal, sgt)
        if at == at:  # a fraction other than 0 was removed
            rows.append(
                {
                    "claim": f"{sgt}'s saliency is more faithful than {standard}'s (random - saliency accuracy "
                    f"gap, {100 * at:.0f}% removed)",
                    "source": "ismail2021sgt",
                    "measure": f"gap of {sgt} - gap of {standard} (points)",
                    **rules.ordering(_gap_diff(removal, sgt, standard, at), accuracy_effect)
                    .gated(gate(sgt, standard))
                    .row(),
                }
            )
    if focus is not None:
        for a, b in FOCUS_CLAIMS:
            la, lb = found.get(a, a), found.get(b, b)
            base = {
                "claim": f"{la}'s saliency dwells less off the object than {lb}'s (Figure 6)",
                "source": "guesmi2024asgt",
                "measure": f"share of |saliency| off the object, {lb} - {la} (> 0: {la} more focused)",
            }
            missing = _missing(found, a, b)
            if missing:
                rows.append({**base, "verdict": missing})
                continue
            diff = rules.paired(focus, lb, la, value="background_share")
            judged = rules.ordering(diff, effects.smallest("background_share"))
            rows.append({**base, **judged.gated(gate(la, lb)).row()})
    return rules.with_data_set(pd.DataFrame(rows), cfg.dataset)


def range_claims(cfg: SaliencyGuidedConfig, robust: pd.DataFrame) -> pd.DataFrame:
    """Figures 2 and 4 across the whole eps range, per attack: A more robust than B on each
    image's mean correctness over the chapter's nonzero radii (the area under its curve, up to
    the radius step), paired on images and seeds, under ``rules.ordering``. One row per pair and
    attack; columns claim, attack, source, measure and the judgement's."""
    found = roles(cfg)
    gate = _gate(robust)
    attacked = robust[robust.eps > 0]
    radii = sorted(attacked.eps.round(6).unique())
    area = attacked.groupby(["method", "seed", "attack", "image"])["correct"].mean().rename("area").reset_index()
    rows = []
    for a, b in RANGE_PAIRS:
        la, lb = found.get(a, a), found.get(b, b)
        for attack in sorted(area.attack.unique()):
            base = {
                "claim": f"{la} is more robust than {lb} across eps",
                "attack": attack,
                "source": "guesmi2024asgt",
                "measure": f"mean {attack_title(attack)} accuracy over eps {', '.join(f'{r:g}' for r in radii)}, "
                f"{la} - {lb} (points)",
            }
            here = area[area.attack == attack]
            absent = [label for label in (la, lb) if not (here.method == label).any()]
            missing = _missing(found, a, b) or (f"not run (no results for {absent[0]})" if absent else None)
            if missing:
                rows.append({**base, "verdict": missing})
                continue
            diff = rules.paired(here, la, lb, value="area")
            judged = rules.ordering(diff, effects.smallest("accuracy"))
            rows.append({**base, **judged.gated(gate(la, lb)).row()})
    return rules.with_data_set(pd.DataFrame(rows), cfg.dataset)


def range_view(judged: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``range_claims`` as the page shows it: one row per claim with the data set it was measured
    on, one column per attack, each cell the verdict and the effect with its interval."""

    def cell(row: pd.Series) -> str:
        if pd.isna(row.get("effect")):
            return str(row["verdict"])
        return f"{row['verdict']}: {rules.effect_text(row['effect'], row['low'], row['high'], digits)}"

    shown = judged.assign(cell=[cell(row) for _, row in judged.iterrows()])
    view = shown.pivot(index="claim", columns="attack", values="cell")
    view = view.reindex(list(dict.fromkeys(judged["claim"]))).rename(columns=attack_title)
    view.insert(0, rules.DATA_SET, judged.drop_duplicates("claim").set_index("claim")[rules.DATA_SET])
    return view.rename_axis(columns=None)


def magnitudes(cfg: SaliencyGuidedConfig, robust: pd.DataFrame) -> pd.DataFrame:
    """The gains the paper quotes for the chapter's data set (``paper_numbers.GUESMI_GAINS``)
    beside ours: the per-image difference of robust correctness (points), under the magnitude
    rule (``rules.magnitude``, a band of the paper's rounding or a point); a gain of "over X" is
    ``rules.at_least``. A claim about a collapsed model is not judged."""
    from robinterp.paper_numbers import GUESMI_GAINS

    found = roles(cfg)
    gate = _gate(robust)
    radii, _ = paper_radii(cfg.dataset)
    rows = []
    for (dataset, a, b, attack, radius), points, at_least, where in GUESMI_GAINS:
        if dataset != cfg.dataset:
            continue
        eps = radii[radius]
        la, lb = found.get(a, a), found.get(b, b)
        base = {
            "claim": f"{la} gains {'over ' if at_least else ''}{points:.3g} points on {lb} "
            f"({attack_title(attack)}, eps {eps:g})",
            "source": "guesmi2024asgt",
            "where": where,
            "measure": f"{attack_title(attack)} accuracy at {eps:g}, {la} - {lb} (points)",
            "paper": points,
        }
        listed = common.attack_label(cfg, attack) or attack  # the listed attack of that kind
        missing = _missing(found, a, b) or _unmeasured(robust, la, lb, listed, eps)
        if missing:
            rows.append({**base, "verdict": missing})
            continue
        diff = _robust_diff(robust, la, lb, listed, eps)
        if at_least:
            judged = rules.at_least(diff, points, effects.rounding(points))
        else:
            judged = rules.magnitude(diff, points, effects.band("accuracy", points))
        rows.append({**base, **judged.gated(gate(la, lb)).row()})
    if not rows:  # the paper quotes no gain on this data set
        return rules.with_data_set(
            pd.DataFrame(columns=["claim", "source", "where", "measure", "paper", "verdict"]), cfg.dataset
        )
    return rules.with_data_set(pd.DataFrame(rows), cfg.dataset)


def verdict_table(point: pd.DataFrame, gains: pd.DataFrame, ranges: pd.DataFrame) -> pd.DataFrame:
    """The chapter's saved verdicts (what the scoreboard reads): the point claims, the gains, and
    the range claims with their attack in the claim's text (each with its data set already)."""
    ranged = ranges.assign(claim=ranges["claim"] + " (" + ranges["attack"].map(attack_title) + ")").drop(
        columns="attack"
    )
    return pd.concat([point, gains, ranged], ignore_index=True)
