"""The budget ladder: each claim's verdict at every rung and its course; rungs continue training."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest

from robinterp import ladder
from robinterp.chapters import resolve_config
from robinterp.config import ConfigError

UNTRAINED_SEED = 977
"""A seed the estimate test counts as new: no test trains it."""


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["consistent", "consistent", "consistent"], "holds"),
        (["no meaningful difference", "no meaningful difference"], "holds"),
        (["inconclusive", "consistent", "consistent"], "emerges"),
        (["consistent", "inconclusive", "not judged"], "fades"),
        (["consistent", "inconsistent", "consistent"], "flips"),
        (["inconclusive", "inconsistent", "consistent"], "flips"),
        (["inconclusive", "consistent", "not judged"], "wavers"),
        (["inconclusive", "not judged", "inconclusive"], "unsettled"),
    ],
)
def test_a_claims_course_across_the_rungs(verdicts, expected):
    assert ladder.course(verdicts) == expected


def test_the_ladder_table_pairs_claims_by_their_words_and_their_order():
    one = pd.DataFrame({"claim": ["a", "b", "b"], "verdict": ["consistent", "inconclusive", "consistent"]})
    two = pd.DataFrame(
        {"claim": ["a", "b", "b", "c"], "verdict": ["consistent", "consistent", "consistent", "inconsistent"]}
    )
    table = ladder.ladder_table({1.0: one, 2.0: two})
    assert list(table.columns) == ["claim", "verdict 1x", "verdict 2x", "course"]
    assert table["course"].tolist() == ["holds", "emerges", "holds", "emerges"]  # c: not judged at 1x
    assert table.loc[3, "verdict 1x"] == "not judged"


@pytest.mark.parametrize("chapter", ["robust_models", "neuron_sensitivity", "robust_attribution", "synthesis"])
def test_a_rung_multiplies_every_training_budget_and_no_measure(chapter):
    config, _ = resolve_config(chapter, "default")
    assert ladder.rung_settings(config, 1) == {}
    doubled = ladder.rung_settings(config, 2)
    fields = ("pretrain_epochs", "finetune_epochs") if chapter == "neuron_sensitivity" else ("epochs",)
    assert {k: v for k, v in doubled.items() if k != "methods"} == {f: 2 * getattr(config, f) for f in fields}
    assert "roar_epochs" not in doubled  # ROAR's retraining is a measure's, not the models' budget
    own = {e.label: e.epochs for e in config.methods if e.epochs is not None}  # an entry's own epochs grow too
    assert all(doubled["methods"][label]["epochs"] == 2 * epochs for label, epochs in own.items())
    assert ("methods" in doubled) == bool(own)


@pytest.mark.parametrize("rungs", [[1], [2, 4], [1, 1], [1, 4, 2]])
def test_rungs_start_at_one_and_climb(rungs):
    with pytest.raises(ConfigError, match="rungs must start at 1 and increase"):
        ladder.check_rungs(rungs)


@pytest.mark.slow
def test_the_ladder_climbs_a_chapter_under_smoke_and_continues_its_models(shared_smoke_cache, monkeypatch, tmp_path):
    """End to end: robust models under smoke at 1x and 2x; every 2x model whose method's steps do
    not depend on the budget continued from its 1x model, and every claim has a course."""
    from robinterp.paths import build_root, cache_root
    from tests.conftest import run_cli

    result = run_cli("ladder", "robust_models", "--profile", "smoke", "--rungs", "1", "2")
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip().splitlines()[-1]
    assert path.endswith("results/smoke-ladder/robust_models/ladder.csv")
    table = pd.read_csv(path)
    plain = pd.read_csv(build_root() / "results" / "smoke" / "robust_models" / "verdicts.csv")  # rung 1x
    assert len(table) == len(plain) and set(table["course"]) <= set(ladder.COURSES)
    assert table["verdict 1x"].notna().all() and table["verdict 2x"].notna().all()
    smoke, _ = resolve_config("robust_models", "smoke")
    label = resolve_config("robust_models", "smoke", settings=ladder.rung_settings(smoke, 2))[1]
    keys = pd.read_csv(build_root() / "results" / label / "robust_models" / "training.csv")["cache_key"]
    metas = [json.loads((cache_root() / "models" / key / "meta.json").read_text())["metrics"] for key in keys]
    assert all(bool(m["continued_from"]) == (not m["budget_dependence"]) for m in metas)
    assert any(m["continued_from"] for m in metas)

    # every rung recorded what it cost; --check estimates from it: the ladder again trains nothing,
    # one more seed trains and evaluates that seed's two models at the measured rates
    from robinterp import estimate

    costs = [json.loads(p.read_text()) for p in sorted(build_root().glob("results/smoke*/robust_models/costs.json"))]
    assert len(costs) == 2 and all(c["run_seconds"] >= c["wall_seconds"] > 0 and c["entries"] for c in costs)
    again = estimate.run_estimate("robust_models", "smoke", rungs=(1, 2))
    assert again.models == 8 and again.cached == 8 and again.training == 0 and not again.unmeasured
    # a seed no other test trains (the smoke cache is shared by the run's tests)
    more = estimate.run_estimate("robust_models", "smoke", settings={"seeds": [0, 1, UNTRAINED_SEED]})
    assert (more.models, more.cached, more.continued) == (6, 4, 0) and not more.unmeasured
    runs = estimate.measured_runs()
    per_image_epoch = estimate.epoch_seconds(runs, runs[0].hardware)
    new = ladder_specs(smoke, seeds=[UNTRAINED_SEED]).values()
    expected = sum(
        s.epochs * s.train_size * statistics.median(per_image_epoch[estimate._speed_class(estimate._plain(s))])
        for s in new
    )
    assert more.training == pytest.approx(expected)
    assert more.evaluation == pytest.approx(2 * runs[-1].evaluation() / 4)  # per model of its plan
    assert more.overhead == pytest.approx(runs[-1].overhead())
    # the same runs' costs with the models gone from the cache: nothing counts as done any more
    monkeypatch.setenv("ROBINTERP_CACHE", str(tmp_path / "empty"))
    cold = estimate.run_estimate("robust_models", "smoke")
    assert (cold.models, cold.cached) == (4, 0) and cold.training > 0 and cold.evaluation > 0


def ladder_specs(config, seeds):
    import dataclasses

    from robinterp.experiments import common

    return common.method_grid(dataclasses.replace(config, seeds=tuple(seeds)))
