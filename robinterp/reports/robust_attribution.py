"""Verdicts and tables of the chapter "Robust attribution alignment" (Zeng et al. 2021), under
the shared rule of ``robinterp.reports.rules``.

ROAR is summarised per test image as the retrained models' accuracy averaged over the removed
fractions (0 to 100; lower: the ranking found the pixels the task needs, a more faithful map);
a map is named by its model, and "(map)" marks an alignment model's own map rather than its
vanilla saliency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from robinterp import paper_numbers
from robinterp.configs.robust_attribution import (
    PAPER_L2_RADII,
    PAPER_LINF_RADII,
    PAPER_STEPS,
    RobustAttributionConfig,
)
from robinterp.reports import effects, mean_sd, rules, titled
from robinterp.titles import norm_title

MAP_SUFFIX = " (map)"
ROAR_TITLE = "ROAR accuracy, mean over fractions (%)"
# the alignment the claims read: the true class's logit, as Etmann et al.'s code
ETMANN = "alignment (true class)"


def map_name(source: pd.Series, ranking: pd.Series) -> pd.Series:
    """The name of each ranking: its model's label, "(map)" added for a model's own map."""
    return source.where(ranking != "map", source + MAP_SUFFIX)


def roar_scores(roar: pd.DataFrame) -> pd.DataFrame:
    """Per map, seed and image: the retrained models' accuracy averaged over the fractions (tidy:
    method, seed, image, score)."""
    named = roar.assign(method=map_name(roar["source"], roar["ranking"]))
    return named.groupby(["method", "seed", "image"])["correct"].mean().rename("score").reset_index()


def roar_curves(roar: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of the retrained model per map, seed and fraction (tidy, accuracy in [0, 1])."""
    named = roar.assign(method=map_name(roar["source"], roar["ranking"]))
    curves = named.groupby(["method", "seed", "fraction"])["correct"].mean().div(100).rename("accuracy")
    return curves.reset_index().assign(
        removed=lambda t: t["fraction"], ranking=lambda t: np.where(t["method"] == "random", "random", "saliency")
    )


def road_scores(road: pd.DataFrame) -> pd.DataFrame:
    """Per map, seed and order: ROAD accuracy averaged over the fractions and images (%)."""
    named = road.assign(method=map_name(road["source"], road["ranking"]))
    return named.groupby(["method", "seed", "order"])["correct"].mean().rename("accuracy").reset_index()


def summary(
    cfg: RobustAttributionConfig,
    records: pd.DataFrame,
    roar: pd.DataFrame,
    road: pd.DataFrame,
    alignment: pd.DataFrame,
    robust: pd.DataFrame,
    labels: list[str],
) -> pd.DataFrame:
    """One row per map of the listed models (mean ± sd over seeds): clean accuracy, ROAR, ROAD
    most and least relevant first, Etmann alignment, PGD accuracy in L2 and Linf."""

    def cell(values: pd.Series) -> str:
        return mean_sd(values.mean(), values.std())

    roar_seed = roar_scores(roar).groupby(["method", "seed"])["score"].mean()
    road_seed = road_scores(road).set_index(["method", "seed", "order"])["accuracy"]
    align = alignment[alignment.measure == ETMANN].groupby(["method", "seed"])["score"].mean()
    clean = records.set_index(["method", "seed"])["test_accuracy"] * 100
    pgd = robust.assign(accuracy=100 * robust["accuracy"]).set_index(["method", "seed", "norm"])["accuracy"]
    rows = []
    for label in labels + ["random"]:
        if label == "random":  # the control: a ROAR accuracy and nothing else
            rows.append(
                {"map": "random (control)", titled(ROAR_TITLE, False): cell(roar_seed.xs("random", level="method"))}
            )
            continue
        for name in [label] + ([label + MAP_SUFFIX] if label in cfg.map_models() else []):
            pick = lambda s, key: s[s.index.get_level_values(0) == key]  # noqa: E731
            rows.append(
                {
                    "map": name,
                    "clean accuracy (%)": cell(pick(clean, label)),
                    titled(ROAR_TITLE, False): cell(pick(roar_seed, name)),
                    titled("ROAD MoRF (%)", False): cell(pick(road_seed, name).xs("morf", level="order")),
                    titled("ROAD LeRF (%)", True): cell(pick(road_seed, name).xs("lerf", level="order")),
                    "Etmann alignment": cell(pick(align, label)),
                    f"PGD-L2 {cfg.robust_l2_eps:g} (%)": cell(pick(pgd, label).xs("l2", level="norm")),
                    f"PGD-Linf {cfg.robust_linf_eps:g} (%)": cell(pick(pgd, label).xs("linf", level="norm")),
                }
            )
    return pd.DataFrame(rows).set_index("map").fillna("—")


def grid_settings(cfg: RobustAttributionConfig) -> pd.DataFrame:
    """Each grid model's norm, radius and steps, and the supplement's setting it stands for: the
    k-th smallest radius of a norm stands for the paper's k-th, the k-th smallest step count for
    its k-th (no paper setting where the counts differ)."""
    rows = pd.DataFrame(
        [
            {"label": e.label, "norm": e.values["norm"], "eps": e.values["eps"], "steps": e.values["steps"]}
            for e in cfg.grid
        ]
    )
    paper_eps = {"l2": PAPER_L2_RADII, "linf": PAPER_LINF_RADII}
    mapped_eps, mapped_steps = [], []
    steps = sorted(rows["steps"].unique())
    for row in rows.itertuples():
        radii = sorted(rows.loc[rows.norm == row.norm, "eps"].unique())
        paper = paper_eps[row.norm]
        mapped_eps.append(paper[radii.index(row.eps)] if len(radii) == len(paper) else np.nan)
        mapped_steps.append(PAPER_STEPS[steps.index(row.steps)] if len(steps) == len(PAPER_STEPS) else np.nan)
    return rows.assign(paper_eps=mapped_eps, paper_steps=mapped_steps)


def _paper_eps_label(norm: str, eps: float) -> str:
    """A paper radius as the supplement writes it: L2 as a number, Linf in 255ths."""
    return "—" if pd.isna(eps) else f"{eps:g}" if norm == "l2" else f"{round(eps * 255)}/255"


def settings_table(settings: pd.DataFrame) -> pd.DataFrame:
    """The grid's settings as the page shows them: Linf radii of the paper in 255ths."""
    shown = settings.set_index("label").rename_axis("model")
    paper_eps = [_paper_eps_label(n, e) for n, e in zip(shown["norm"], shown["paper_eps"])]
    return shown.assign(
        norm=shown["norm"].map(norm_title),
        paper_eps=paper_eps,
        paper_steps=shown["paper_steps"].map(lambda t: "—" if pd.isna(t) else f"{int(t)}"),
    ).rename(columns={"paper_eps": "paper eps", "paper_steps": "paper steps"})


def radius_panel(cfg: RobustAttributionConfig, alignment: pd.DataFrame, robust: pd.DataFrame) -> pd.DataFrame:
    """Per grid model and seed: each alignment measure and its PGD accuracy (%) in its own norm,
    tidy (norm, eps, training attack, seed, measure, value), for the figure against the radius."""
    from robinterp.experiments.robust_attribution import ALIGNMENT_MEASURES

    per_model = alignment.groupby(["method", "seed", "measure"])["score"].mean()
    pgd = robust.set_index(["method", "seed", "norm"])["accuracy"].mul(100)
    rows = []
    for row in grid_settings(cfg).itertuples():
        for seed in cfg.grid_seeds:
            where = {
                "norm": norm_title(row.norm),
                "eps": row.eps,
                "training attack": f"{row.steps} steps",
                "seed": seed,
            }
            rows += [{**where, "measure": m, "value": per_model[row.label, seed, m]} for m in ALIGNMENT_MEASURES]
            rows.append(
                {
                    **where,
                    "measure": f"PGD-{norm_title(row.norm)} accuracy (%)",
                    "value": pgd[row.label, seed, row.norm],
                }
            )
    return pd.DataFrame(rows)


def roar_road_points(cfg: RobustAttributionConfig, roar: pd.DataFrame, road: pd.DataFrame) -> pd.DataFrame:
    """Per map: its seed-mean ROAR accuracy and ROAD MoRF accuracy, and whether the chapter lists
    it (the grid's maps are the rest)."""
    scores = roar_scores(roar).groupby("method")["score"].mean().rename("roar").to_frame()
    morf = road_scores(road).query("order == 'morf'").groupby("method")["accuracy"].mean().rename("road")
    listed = set(cfg.labels()) | {label + MAP_SUFFIX for label in cfg.map_models()}
    points = scores.join(morf).dropna().reset_index()
    return points.assign(listed=points["method"].isin(listed))


def table1(cfg: RobustAttributionConfig, roar: pd.DataFrame) -> pd.DataFrame:
    """Table 1 analogue: per grid model, the retrained accuracy at each fraction (ours, grid
    seeds' mean) beside the supplement's for the setting it stands for."""
    settings = grid_settings(cfg)
    ours = (
        roar[roar.ranking == "saliency"].groupby(["source", "fraction"])["correct"].mean().rename("ours").reset_index()
    )
    paper = paper_numbers.zeng_table1().rename(columns={"accuracy": "paper", "steps": "paper_steps"})
    paper["paper_eps"] = paper["paper_eps"].round(6)
    merged = ours.merge(settings.rename(columns={"label": "source"}), on="source")
    merged["paper_eps"] = merged["paper_eps"].round(6)
    merged = merged.merge(paper, on=["norm", "paper_eps", "paper_steps", "fraction"], how="left")
    merged["paper eps"] = [_paper_eps_label(n, e) for n, e in zip(merged["norm"], merged["paper_eps"])]
    merged["paper steps"] = merged["paper_steps"].map(lambda t: "—" if pd.isna(t) else f"{int(t)}")
    wide = merged.pivot_table(
        index=["norm", "eps", "steps", "paper eps", "paper steps"],
        columns="fraction",
        values=["ours", "paper"],
        aggfunc="first",
    )
    wide.columns = [f"{int(round(100 * f))}% {who}" for who, f in wide.columns]
    order = [f"{int(round(100 * f))}% {who}" for f in sorted(set(merged["fraction"])) for who in ("ours", "paper")]
    return wide[[c for c in order if c in wide.columns]].rename_axis(
        ["norm", "eps", "steps", "paper eps", "paper steps"]
    )


def _pair(scores: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """ROAR score of b minus a per seed and image: > 0 when a's map is the more faithful."""
    return rules.paired(scores, b, a)


def _paper_radius_gap(norm: str, steps: int) -> float:
    """The supplement's Table 1: mean ROAR accuracy at its largest minus its smallest radius."""
    table = paper_numbers.zeng_table1()
    rows = table[(table.norm == norm) & (table.steps == steps)]
    means = rows.groupby("paper_eps")["accuracy"].mean()
    return float(means.iloc[-1] - means.iloc[0])


def _paper_norm_gap() -> float:
    """The supplement's Table 1: mean ROAR accuracy of Linf minus L2 models (> 0: L2 better)."""
    table = paper_numbers.zeng_table1()
    means = table.groupby("norm")["accuracy"].mean()
    return float(means["linf"] - means["l2"])


def _roar_uninformative(scores: pd.DataFrame, references: list[str], delta: float) -> str:
    """Why ROAR claims are not judged ("" when they are): ROAR is informative here only when some
    listed model's saliency removes what the retrained model needs *consistently* more than the
    random control does (the ordering rule, one point of accuracy). Not the standard model's alone:
    that its plain gradient may be no better than random is one of the claims."""
    present = [r for r in references if r in set(scores.method)]
    if not present or "random" not in set(scores.method):
        return ""
    judged = {r: rules.ordering(_pair(scores, r, "random"), delta) for r in present}
    if any(j.verdict == rules.CONSISTENT for j in judged.values()):
        return ""
    best = max(judged, key=lambda r: judged[r].mean)
    return (
        f"ROAR does not beat its random control here (best: {best}'s saliency vs random removal, "
        f"{judged[best].verdict}, {judged[best].interval()} points)"
    )


def claims(
    cfg: RobustAttributionConfig,
    roar: pd.DataFrame,
    alignment: pd.DataFrame,
    cost: pd.DataFrame,
    records: pd.DataFrame,
) -> pd.DataFrame:
    """One row per claim of the supplement (and of the abstract on the alignment model): the
    effect (signed so that > 0 is the claimed direction; ROAR in points of accuracy), its 95%
    interval, n and the verdict, with the paper's number where it gives one. Claims whose models
    the config does not list are left out. ROAR claims are not judged where ROAR cannot separate
    the standard model's saliency from random removal (``_roar_uninformative``); no claim is judged
    on a model that collapsed (``records``: the training records, clean ``test_accuracy`` per
    method and seed; ``rules.collapsed``)."""
    accuracy = records.assign(accuracy=100 * records["test_accuracy"])[["method", "seed", "accuracy"]]
    scores = roar_scores(roar)
    standard, distilled = cfg.role("standard"), cfg.role("distillation")
    igr, aligned = cfg.role("input_grad_reg"), cfg.role("attribution_alignment")
    pgd = cfg.teacher_label(next(e for e in cfg.methods if e.label == aligned)) if aligned else None
    pgd = pgd or next((e.label for e in cfg.methods if e.method == "pgd_at"), None)
    rows = []
    delta = effects.smallest("roar")
    roar_gate = _roar_uninformative(scores, list(cfg.labels()), delta)

    def add(
        claim: str,
        where: str,
        measure: str,
        judged: rules.Judgement,
        paper: float = np.nan,
        gate: str = "",
        models: Sequence[str] = (),
    ) -> None:
        """One claim's row; ``models``: the trained models it compares (not judged if one collapsed)."""
        judged = judged.gated(gate or rules.collapsed(accuracy, models))
        rows.append({"claim": claim, "where": where, "measure": measure, "paper": paper, **judged.row()})

    if standard and pgd:
        add(
            "PGD training makes saliency more faithful than standard training (the premise)",
            "A3, Figure 1",
            f"ROAR of {standard} - {pgd} (points)",
            rules.ordering(_pair(scores, pgd, standard), delta),
            gate=roar_gate,
            models=(standard, pgd),
        )
    if standard and distilled:
        add(
            "distillation does not make the maps more faithful than standard training",
            "A3, Figure 1",
            f"ROAR of {standard} - {distilled} (points; > 0: {distilled} more faithful; at most {cfg.roar_margin:g})",
            rules.at_most(_pair(scores, distilled, standard), cfg.roar_margin),
            gate=roar_gate,
            models=(standard, distilled),
        )
        add(
            "... their ROAR is quite close to standard training's",
            "A3, Figure 1",
            # the same difference as the claim above (equivalence is symmetric): the two rows read alike
            f"ROAR of {standard} - {distilled} (points; within ±{cfg.roar_margin:g})",
            rules.equivalence(_pair(scores, distilled, standard), cfg.roar_margin),
            gate=roar_gate,
            models=(standard, distilled),
        )
        etmann_all = alignment[alignment.measure == ETMANN]
        if {standard, distilled} <= set(etmann_all.method):
            reference = float(etmann_all.loc[etmann_all.method == standard, "score"].mean())
            margin = effects.smallest("alignment", reference)
            add(
                "distillation does not align the saliency with the image",
                "A3, Figure 2",
                f"Etmann alignment, {distilled} - {standard} (at most {margin:.3g})",
                rules.at_most(rules.paired(etmann_all, distilled, standard), margin),
                models=(standard, distilled),
            )
    if standard and igr:
        add(
            "input-gradient regularization improves ROAR over standard training",
            "A3, Figure 1",
            f"ROAR of {standard} - {igr} (points)",
            rules.ordering(_pair(scores, igr, standard), delta),
            gate=roar_gate,
            models=(standard, igr),
        )
    if igr and pgd:
        add(
            "... but less than PGD training",
            "A3, Figure 1",
            f"ROAR of {igr} - {pgd} (points)",
            rules.ordering(_pair(scores, pgd, igr), delta),
            gate=roar_gate,
            models=(igr, pgd),
        )
    settings = grid_settings(cfg)
    grid_scores = scores[scores.seed.isin(cfg.grid_seeds)]
    for (norm, steps), group in settings.groupby(["norm", "steps"]):
        if group["eps"].nunique() < 2:
            continue
        small, large = group.sort_values("eps")["label"].iloc[[0, -1]]
        paper_steps = group["paper_steps"].iloc[0]
        paper = _paper_radius_gap(norm, int(paper_steps)) if not pd.isna(paper_steps) else np.nan
        add(
            f"ROAR barely depends on the PGD radius ({norm_title(norm)}, {steps} steps)",
            "B, Table 1",
            f"ROAR of {large} - {small} (points; within ±{cfg.roar_margin:g})",
            rules.equivalence(rules.paired(grid_scores, large, small), cfg.roar_margin),
            paper,
            roar_gate,
            models=tuple(group["label"]),
        )
    norms = {norm: set(group["label"]) for norm, group in settings.groupby("norm")}
    if {"l2", "linf"} <= set(norms):
        by_norm = grid_scores[grid_scores.method.isin(norms["l2"] | norms["linf"])].assign(
            norm=lambda t: np.where(t["method"].isin(norms["l2"]), "l2", "linf")
        )
        per_norm = by_norm.groupby(["norm", "seed", "image"])["score"].mean().rename("score").reset_index()
        add(
            "PGD-L2 models give slightly more faithful maps than PGD-Linf ones",
            "B, Table 1",
            "ROAR, mean of the Linf - of the L2 grid models (points)",
            rules.ordering(rules.paired(per_norm, "linf", "l2", by="norm"), delta),
            _paper_norm_gap(),
            roar_gate,
            models=tuple(norms["l2"] | norms["linf"]),
        )
    etmann = alignment[alignment.measure == ETMANN]
    for (norm, steps), group in settings.groupby(["norm", "steps"]):
        if group["eps"].nunique() < 2:
            continue
        eps = dict(zip(group["label"], group["eps"]))
        rows_ = etmann[etmann.method.isin(eps) & etmann.seed.isin(cfg.grid_seeds)]
        add(
            f"alignment grows with the PGD radius ({norm_title(norm)}, {steps} steps)",
            "B, Figure 4",
            "fitted change of Etmann alignment from the smallest to the largest radius",
            rules.trend(
                rows_.assign(x=rows_["method"].map(eps), value=rows_["score"]),
                effects.smallest(
                    "alignment", float(rows_.loc[rows_["method"].map(eps) == min(eps.values()), "score"].mean())
                ),
            ),
            models=tuple(group["label"]),
        )
    if aligned and pgd:
        add(
            "the alignment model's map is as faithful as its PGD-L2 teacher's saliency",
            "abstract",
            f"ROAR of {aligned}{MAP_SUFFIX} - {pgd} (points; within ±{cfg.roar_margin:g}; < 0: the map more faithful)",
            rules.equivalence(rules.paired(scores, aligned + MAP_SUFFIX, pgd), cfg.roar_margin),
            gate=roar_gate,
            models=(aligned, pgd),
        )
        add(
            "the alignment model's map is more faithful than its own post-hoc saliency",
            "abstract",
            f"ROAR of {aligned} - {aligned}{MAP_SUFFIX} (points)",
            rules.ordering(_pair(scores, aligned + MAP_SUFFIX, aligned), delta),
            gate=roar_gate,
            models=(aligned,),
        )
        if standard:
            add(
                "the alignment model's map is more faithful than a standard model's post-hoc saliency",
                "abstract",
                f"ROAR of {standard} - {aligned}{MAP_SUFFIX} (points)",
                rules.ordering(_pair(scores, aligned + MAP_SUFFIX, standard), delta),
                gate=roar_gate,
                models=(aligned, standard),
            )
        timed = cost[cost.model == aligned].pivot(index="repeat", columns="map", values="seconds_per_image")
        if not timed.empty:
            own, teacher = sorted(timed.columns, key=lambda c: not c.startswith("own"))
            diff = (1e3 * (timed[teacher] - timed[own])).rename("value").rename_axis("seed").reset_index()
            add(
                "... at a fraction of the cost per map",
                "abstract",
                "teacher's saliency - own map (ms per image; repeats in place of seeds)",
                rules.ordering(diff, effects.smallest("time", 1e3 * timed[teacher].mean()), over="seeds"),
            )
    return rules.with_data_set(pd.DataFrame(rows), cfg.dataset)


def cost_ratios(cost: pd.DataFrame) -> dict[str, float]:
    """Per alignment model: the median time of its own map over that of its teacher's saliency."""
    medians = cost.groupby(["model", "map"])["seconds_per_image"].median()
    ratios = {}
    for model, rows in medians.groupby(level="model"):
        own = next(m for m in rows.index.get_level_values("map") if m.startswith("own"))
        teacher = next(m for m in rows.index.get_level_values("map") if not m.startswith("own"))
        ratios[model] = float(rows[model, own] / rows[model, teacher])
    return ratios


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as the page shows them, narrow enough for it: the claim with where the paper
    makes it, the measure, the effect with its interval, the paper's number, the seeds that
    agree, the verdict and the data set (n and the bounds are in the saved table)."""
    return pd.DataFrame(
        {
            "claim [where]": [f"{c} [{w}]" for c, w in zip(verdicts["claim"], verdicts["where"])],
            "measure": verdicts["measure"],
            "effect [95% interval]": [
                rules.effect_text(e, lo, hi) for e, lo, hi in zip(verdicts["effect"], verdicts["low"], verdicts["high"])
            ],
            "paper": ["—" if pd.isna(p) else f"{p:.3g}" for p in verdicts["paper"]],
            "seeds": verdicts["seeds agreeing"],
            "verdict": verdicts["verdict"],
            rules.DATA_SET: verdicts[rules.DATA_SET],
        }
    ).set_index("claim [where]")


def retrain_count(roar: pd.DataFrame, records: pd.DataFrame) -> int:
    """Distinct networks ROAR retrained: a grid model with a listed model's spec is the same model
    and shares its retrainings."""
    keys = records.set_index(["method", "seed"])["cache_key"]
    model = [
        "random" if source == "random" else keys[source, seed] for source, seed in zip(roar["source"], roar["seed"])
    ]
    return int(roar.assign(model=model).groupby(["model", "seed", "ranking", "fraction"]).ngroups)


def leak_summary(leak: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) of a model trained on the removal masks alone, per map and class explained."""
    table = leak.groupby(["map", "target"], sort=False)["correct"].mean().unstack("target")
    return table.rename(columns={"none": "class-agnostic", "predicted": "predicted class", "true": "true class"})


def rank_agreement(roar: pd.DataFrame, road: pd.DataFrame) -> pd.DataFrame:
    """Do ROAD and ROAR order the maps alike? Spearman's correlation, over the maps both score,
    of the ROAR accuracy (lower: more faithful) with ROAD's MoRF accuracy (lower: more faithful)
    and with minus its LeRF accuracy (higher LeRF: more faithful), seed means."""
    roar_mean = roar_scores(roar).groupby("method")["score"].mean()
    road_mean = road_scores(road).groupby(["method", "order"])["accuracy"].mean().unstack("order")
    both = road_mean.join(roar_mean.rename("roar"), how="inner")
    return pd.DataFrame(
        {
            "ROAD order": ["MoRF", "LeRF", "LeRF - MoRF"],
            "Spearman with ROAR": [
                both["roar"].corr(both["morf"], method="spearman"),
                both["roar"].corr(-both["lerf"], method="spearman"),
                both["roar"].corr(-(both["lerf"] - both["morf"]), method="spearman"),
            ],
            "maps": len(both),
        }
    ).set_index("ROAD order")
