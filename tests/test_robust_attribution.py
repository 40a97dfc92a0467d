"""The Zeng et al. chapter: its config's checks, the radius mapping, Table 1 beside the paper's,
and the verdicts on synthetic results whose answers are known."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from robinterp import data, data_sources, paper_numbers, roar
from robinterp.config import ConfigError
from robinterp.experiments import common
from robinterp.experiments import robust_attribution as chapter
from robinterp.reports import robust_attribution as report


def test_the_radius_mapping_scales_linf_by_the_customary_radius_and_l2_also_by_the_root_of_the_size():
    mapping = chapter.radius_mapping(0.1, 28 * 28).set_index(["norm", "paper_eps"])["eps"]
    assert mapping["linf", 8 / 255] == pytest.approx(0.1)
    assert mapping["linf", 16 / 255] == pytest.approx(0.2)
    assert mapping["l2", 1.5] == pytest.approx(1.5 * 0.1 / (8 / 255) * math.sqrt(784 / 3072), abs=0.005)
    same = chapter.radius_mapping(8 / 255, 32 * 32 * 3).set_index(["norm", "paper_eps"])["eps"]
    assert same["l2", 2.5] == 2.5 and same["linf", 4 / 255] == pytest.approx(4 / 255, abs=1e-3)


def test_the_default_grid_stands_for_every_setting_of_table_1():
    settings = report.grid_settings(chapter.RobustAttributionConfig())
    assert len(settings) == len(paper_numbers.ZENG_TABLE1) == 14
    assert set(zip(settings.norm, settings.paper_eps.round(6), settings.paper_steps)) == {
        (norm, round(eps, 6), steps) for norm, eps, steps in paper_numbers.ZENG_TABLE1
    }


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"methods": {"A": {"method": "attribution_alignment", "teacher_eps": 1.0}}}, "teacher"),
        ({"grid": {"G": {"method": "standard"}}}, "must be pgd_at"),
        ({"methods": {"random": {"method": "standard"}}}, "labelled 'random'"),
        ({"grid_seeds": [5]}, "among seeds"),
    ],
)
def test_the_config_refuses_what_the_chapter_cannot_compare(changes, needle):
    with pytest.raises(ConfigError, match=needle):
        chapter.RobustAttributionConfig.from_mapping(changes)


def test_the_alignment_models_teacher_is_its_listed_pgd_l2_entry():
    cfg = chapter.RobustAttributionConfig()
    aligned = next(e for e in cfg.methods if e.method == "attribution_alignment")
    assert cfg.teacher_label(aligned) == "PGD-L2"
    # an alignment model with its own schedule has another teacher than the listed one
    longer = {
        "PGD-L2": {"method": "pgd_at", "norm": "l2", "eps": 2.42, "steps": 5, "eps_warmup": 0.25},
        "alignment": {"method": "attribution_alignment", "epochs": 2.0},
    }
    with pytest.raises(ConfigError, match="teacher"):
        chapter.RobustAttributionConfig.from_mapping({"methods": longer})
    longer["PGD-L2"]["epochs"] = 2.0
    assert (
        chapter.RobustAttributionConfig.from_mapping({"methods": longer}).teacher_label(
            chapter.RobustAttributionConfig.from_mapping({"methods": longer}).methods[1]
        )
        == "PGD-L2"
    )
    grid_twin = next(e for e in cfg.grid if e.label == "L2 eps 2.42 (5 steps)")
    assert grid_twin.values == next(e for e in cfg.methods if e.label == "PGD-L2").values


def _correct(share: int, images: int = 1000) -> list[int]:
    """Per image 100 or 0: the same images right for every model with the same share."""
    return [100 if (i * 37) % 100 < share else 0 for i in range(images)]


def synthetic(cfg, random_share: int = 90):
    """ROAR, alignment, cost and training tables whose verdicts are known (every seed of ``cfg``
    alike, every model at 90% clean accuracy)."""
    shares = {
        "standard": 80,
        "distillation": 80,
        "input-grad reg": 60,
        "PGD-L2": 40,
        "alignment": 50,
        "random": random_share,
    }
    grid = report.grid_settings(cfg)
    shares.update({row.label: 50 if row.norm == "l2" else 70 for row in grid.itertuples()})
    shares["PGD-L2"] = 40
    rows = []
    for seed in cfg.seeds:
        for source, share in shares.items():
            if source in set(grid.label) - {"L2 eps 2.42 (5 steps)"} and seed not in cfg.grid_seeds:
                continue
            rankings = {"saliency": share} if source != "random" else {"random": share}
            if source == "alignment":
                rankings["map"] = 40  # as faithful as its teacher, PGD-L2
            for ranking, value in rankings.items():
                for fraction in cfg.roar_fractions:
                    rows += [
                        {
                            "source": source,
                            "seed": seed,
                            "ranking": ranking,
                            "fraction": fraction,
                            "image": i,
                            "correct": c,
                        }
                        for i, c in enumerate(_correct(value))
                    ]
    roar = pd.DataFrame(rows)
    alignment = pd.DataFrame(
        [
            {"method": row.label, "seed": seed, "measure": report.ETMANN, "image": i, "score": row.eps * (1 + i / 200)}
            for row in grid.itertuples()
            for seed in cfg.grid_seeds
            for i in range(50)
        ]
    )
    cost = pd.DataFrame(
        [
            {"model": "alignment", "map": name, "repeat": r, "seconds_per_image": s + 1e-6 * r}
            for r in range(4)
            for name, s in (("own map (alignment model)", 1e-4), ("vanilla saliency (its PGD-L2 teacher)", 3e-4))
        ]
    )
    labels = cfg.labels() + list(report.grid_settings(cfg)["label"])
    records = pd.DataFrame([{"method": m, "seed": s, "test_accuracy": 0.9} for m in labels for s in cfg.seeds])
    return roar, alignment, cost, records


THREE_SEEDS = {"seeds": [0, 1, 2]}


def test_the_verdicts_on_results_whose_answers_are_known():
    cfg = chapter.RobustAttributionConfig.from_mapping(THREE_SEEDS)
    verdicts = report.claims(cfg, *synthetic(cfg)).set_index("claim")
    grid = verdicts.index.str.contains("radius|PGD-L2 models")
    assert set(verdicts.verdict[~grid]) == {"consistent"}, verdicts[["measure", "effect", "verdict"]]
    # the grid trains one seed: its claims are shown, not judged
    assert set(verdicts.verdict[grid]) == {"not judged"} and verdicts.reason[grid].str.startswith("one seed").all()
    assert verdicts.loc["distillation does not make the maps more faithful than standard training", "effect"] == 0
    # the two distillation claims read one difference, in one direction
    better = synthetic(cfg)[0]
    better.loc[better.source == "distillation", "correct"] = 0  # its removal leaves nothing: as faithful as can be
    distilled = report.claims(cfg, better, *synthetic(cfg)[1:]).set_index("claim")["effect"]
    assert distilled["... their ROAR is quite close to standard training's"] == pytest.approx(80)
    assert distilled["distillation does not make the maps more faithful than standard training"] == pytest.approx(80)
    assert verdicts.loc["the alignment model's map is more faithful than its own post-hoc saliency", "effect"] == 10
    # ROAR that cannot tell any listed model's saliency from random removal judges nothing
    # (random removal leaves 30%: every map's removal leaves more, none beats the control)
    unjudged = report.claims(cfg, *synthetic(cfg, random_share=30)).set_index("claim")
    roar_claims = unjudged.measure.str.startswith("ROAR")
    assert (unjudged.verdict[roar_claims] == "not judged").all()
    assert unjudged.reason[roar_claims & ~grid].str.startswith("ROAR does not beat its random control").all()
    assert verdicts.loc[
        "input-gradient regularization improves ROAR over standard training", "effect"
    ] == pytest.approx(20)
    assert verdicts.loc["... but less than PGD training", "effect"] == pytest.approx(20)
    assert verdicts.loc["PGD-L2 models give slightly more faithful maps than PGD-Linf ones", "effect"] == pytest.approx(
        20
    )
    # the paper's effects, from Table 1: L2 beats Linf there too, and its Linf gap exceeds our margin
    assert verdicts.loc["PGD-L2 models give slightly more faithful maps than PGD-Linf ones", "paper"] > 0
    assert verdicts.loc["ROAR barely depends on the PGD radius (L∞, 5 steps)", "paper"] == pytest.approx(
        (90.75 + 86.15 + 81.15 + 71.66 - 88.13 - 84.68 - 78.39 - 67.54) / 4
    )


def test_no_claim_is_judged_on_a_model_that_collapsed():
    cfg = chapter.RobustAttributionConfig.from_mapping(THREE_SEEDS)
    roar, alignment, cost, records = synthetic(cfg)
    records.loc[(records.method == "distillation") & (records.seed == 1), "test_accuracy"] = 0.11
    verdicts = report.claims(cfg, roar, alignment, cost, records).set_index("claim")
    about = verdicts.measure.str.contains("distillation")  # the claims that compare the distilled model
    assert (verdicts.verdict[about] == "not judged").all()
    assert verdicts.reason[about].str.startswith("collapsed: distillation below 50% clean accuracy (seed 1)").all()
    assert (verdicts.verdict[~about & ~verdicts.index.str.contains("radius|PGD-L2 models")] == "consistent").all()


def test_a_map_worse_than_the_standard_models_is_inconsistent_and_missing_models_drop_their_claims():
    cfg = chapter.RobustAttributionConfig.from_mapping(THREE_SEEDS)
    roar, alignment, cost, records = synthetic(cfg)
    worse = roar.copy()
    worse.loc[(worse.source == "alignment") & (worse.ranking == "map"), "correct"] = 100
    verdicts = report.claims(cfg, worse, alignment, cost, records).set_index("claim")
    assert (
        verdicts.loc["the alignment model's map is more faithful than a standard model's post-hoc saliency", "verdict"]
        == "inconsistent"
    )
    fewer = chapter.RobustAttributionConfig.from_mapping({"methods": {"standard": {"method": "standard"}}})
    claims = report.claims(fewer, roar, alignment, cost, records)["claim"]
    assert not claims.str.contains("distillation|alignment model").any() and claims.str.contains("radius").any()


def test_table_1_puts_the_papers_accuracy_beside_ours_for_the_setting_each_stands_for():
    cfg = chapter.RobustAttributionConfig()
    roar = synthetic(cfg)[0]
    table = report.table1(cfg, roar)
    row = table.xs(("l2", 2.42, 5), level=["norm", "eps", "steps"])
    assert row["20% paper"].iloc[0] == 88.4 and row["80% paper"].iloc[0] == 63.74  # L2 1.5, 20 steps
    assert row.index.get_level_values("paper steps")[0] == "20"
    assert set(table.index.get_level_values("norm")) == {"l2", "linf"}  # keys, as every saved table has them
    assert row["20% ours"].iloc[0] == pytest.approx(50)
    assert list(table.columns[:2]) == ["20% ours", "20% paper"]


def test_the_paper_settings_stop_with_the_data_layers_message_before_training(tmp_path, monkeypatch):
    from robinterp import chapters, data
    from robinterp.paths import cache_root

    monkeypatch.setenv("ROBINTERP_DATA", str(tmp_path))
    monkeypatch.setattr(
        data_sources, "torchvision_download", lambda spec, root: (_ for _ in ()).throw(OSError("offline"))
    )
    cfg, _ = chapters.resolve_config("robust_attribution", profile="paper")
    assert (cfg.dataset, cfg.model, len(cfg.grid)) == ("cifar10", "resnet18", 14)
    with pytest.raises(data.DataError, match="cifar10: missing .*no offline source exists"):
        chapter.train_all(cfg)
    assert not (cache_root() / "models").exists() or not any((cache_root() / "models").iterdir())


def test_the_saliency_ranking_explains_the_predicted_or_the_true_class(fitted_tiny_cnn, blobs):
    from robinterp import explain, models

    x, y = blobs.images[:8], (blobs.labels[:8] + 1) % 10  # labels the model does not predict
    predicted = roar.saliency_ranking(fitted_tiny_cnn, "predicted").attribute(x, y)
    true = roar.saliency_ranking(fitted_tiny_cnn, "true").attribute(x, y)
    assert torch.allclose(predicted, explain.explain(fitted_tiny_cnn, x, models.predict(fitted_tiny_cnn, x).clone()))
    assert torch.allclose(true, explain.explain(fitted_tiny_cnn, x, y)) and not torch.allclose(true, predicted)


def test_a_grid_model_equal_to_a_listed_one_counts_its_retrainings_once():
    cfg = chapter.RobustAttributionConfig()
    roar_results = synthetic(cfg)[0]
    keyed = [
        (label, seed)
        for label, seed in roar_results[["source", "seed"]].drop_duplicates().itertuples(index=False)
        if label != "random"
    ]
    records = pd.DataFrame(
        [
            {
                "method": label,
                "seed": seed,
                "cache_key": "twin" if label in ("PGD-L2", "L2 eps 2.42 (5 steps)") and seed == 0 else f"{label}{seed}",
            }
            for label, seed in keyed
        ]
    )
    per_source = roar_results.groupby(["source", "seed", "ranking", "fraction"]).ngroups
    assert report.retrain_count(roar_results, records) == per_source - len(cfg.roar_fractions)


def test_roar_retrains_on_the_first_images_of_the_chapters_own_training_subset(monkeypatch):
    full = data.Split(torch.arange(100.0).reshape(100, 1, 1, 1), torch.zeros(100, dtype=torch.long))
    monkeypatch.setattr(common.data, "load", lambda dataset, split: full)
    chapter_images = full.subset(40, 3).images
    cfg = chapter.RobustAttributionConfig.from_mapping({"train_size": 40, "roar_train_size": 10})
    spec, split = common.roar_retraining(cfg, 3)
    assert torch.equal(split.images, chapter_images[:10])
    assert (spec.train_size, spec.method, spec.epochs, spec.seed) == (10, "standard", cfg.roar_epochs, 3)
    # None or more than the chapter has: the chapter's own subset, keyed as such
    for size in (None, 60):
        cfg = chapter.RobustAttributionConfig.from_mapping({"train_size": 40, "roar_train_size": size})
        spec, split = common.roar_retraining(cfg, 3)
        assert spec.train_size == 40 and torch.equal(split.images, chapter_images)
