"""The synthesis chapter: one protocol shared with the other chapters' caches, the benchmark's
marks and fronts on synthetic results whose answers are known, the budget check, and the
scoreboard read from saved verdict tables (and what it does when they are missing)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from robinterp import data, measures, robustness
from robinterp.attacks import AttackSpec
from robinterp.config import ConfigError
from robinterp.experiments import common, saliency_guided_training, scaat
from robinterp.experiments import synthesis as chapter
from robinterp.measures import attack, images
from robinterp.measures.attack import AttackSettings
from robinterp.reports import rules, scoreboard
from robinterp.reports import synthesis as report


def test_the_shared_protocol_reuses_the_sgt_and_scaat_chapters_models():
    """The chapter's budget promise: the models other chapters trained have the very same spec
    (so the same cache key) here."""
    ours = {spec for spec in chapter.specs(chapter.SynthesisConfig()).values()}
    sgt = common.method_grid(saliency_guided_training.SaliencyGuidedConfig())
    scaat_cfg = scaat.SCAATConfig()
    scaat_grid = common.method_grid(scaat_cfg)
    shared = {sgt[label, seed] for label in ("ST", "AT-FGSM", "SGT k=0.5", "SGA", "ASGT") for seed in (0, 1, 2)}
    shared |= {scaat_grid[label, seed] for label in ("PGD-AT", "SCAAT") for seed in (0, 1, 2)}
    assert shared <= ours
    assert len(ours) == 13 * 3


def test_the_larger_budget_multiplies_every_methods_epochs_on_its_seeds_only():
    cfg = chapter.SynthesisConfig(budget_factor=3.0, budget_seeds=(1,))
    larger = chapter.budget_specs(cfg)
    assert {seed for _, seed in larger} == {1}
    base = chapter.specs(cfg)
    assert all(spec.epochs == 3 * base[key].epochs for key, spec in larger.items())


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"methods": {"PGD": {"method": "pgd_at"}}}, "standard-training entry"),
        ({"budget_seeds": [7]}, "among seeds"),
        ({"epsilons": [0.1, 0.1]}, "lists 0.1 twice"),
        ({"budget_groups": []}, "at least 1 value"),
        ({"autoattack_parts": []}, "at least 1 value"),
    ],
)
def test_the_config_refuses_what_the_chapter_cannot_compare(changes, needle):
    with pytest.raises(ConfigError, match=needle):
        chapter.SynthesisConfig.from_mapping(changes)


def test_every_measure_has_a_direction_and_the_columns_follow_the_attacks_and_radii():
    cfg = chapter.SynthesisConfig(epsilons=(0.05, 0.2))
    names = [m.name for m in chapter.measures(cfg)]
    assert names[:3] == ["clean", "fgsm@0.05", "fgsm@0.2"] and "mifgsm@0.2" in names
    assert {"sparseness", "roar", "road_gap", "removal_gap", "alignment"} <= set(names)
    roar_measure = next(m for m in chapter.measures(cfg) if m.name == "roar")
    assert not roar_measure.higher_is_better and roar_measure.header.endswith("↓")


@pytest.mark.parametrize("early_stop", [True, False])
def test_per_image_robust_correctness_counts_as_robust_accuracy_does(early_stop, monkeypatch):
    """The attack measure's rows (``robinterp.measures.attack``) on given images."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x, y = torch.rand(20, 1, 4, 4), torch.arange(20) % 3
    monkeypatch.setattr(images, "eval_subset", lambda dataset, size, purpose: data.Split(x, y))
    bound = (AttackSpec.of("fgsm"), AttackSpec.of("pgd", steps=3))
    curves = robustness.robust_accuracy(model, x, y, attacks=bound, epsilons=(0.3, 0.1), seed=5, early_stop=early_stop)
    tidy = pd.concat(
        [
            attack.rows(
                model,
                AttackSettings("mnist", 20, spec, (0.1, 0.3), early_stop=early_stop),
                seed=5,
                model_key="",
                name="",
            ).assign(attack=spec.name)
            for spec in bound
        ]
    )
    totals = tidy.groupby(["attack", "eps"])["correct"].sum() / 100
    assert totals.to_dict() == curves.set_index(["attack", "eps"])["correct"].to_dict()


def per_image_table(values: dict[str, dict[int, list[float]]], measure: str = "clean") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"method": method, "seed": seed, "measure": measure, "image": i, "score": v}
            for method, seeds in values.items()
            for seed, scores in seeds.items()
            for i, v in enumerate(scores)
        ]
    )


def noisy(mean: float, rng: np.random.Generator, n: int = 200) -> list[float]:
    return (mean + rng.normal(0, 1, n)).tolist()


def test_a_columns_best_is_marked_only_when_the_rule_separates_it_from_the_second():
    rng = np.random.default_rng(0)
    base = [noisy(0, rng) for _ in range(3)]
    clear = per_image_table(
        {
            "A": {s: [v + 2 for v in base[s]] for s in range(3)},
            "B": {s: base[s] for s in range(3)},
            "C": {s: [v - 1 for v in base[s]] for s in range(3)},
        }
    )
    tied = per_image_table(
        {"A": {s: [v + 0.01 * (-1) ** s for v in base[s]] for s in range(3)}, "B": {s: base[s] for s in range(3)}},
        measure="sparseness",
    )
    measures = (
        chapter.Measure("clean", "clean", chapter.ROBUSTNESS, True),
        chapter.Measure("sparseness", "sparseness", chapter.INTERPRETABILITY, True),
    )
    shown, numbers = report.benchmark(pd.concat([clear, tied]), measures, ["B", "A", "C"])
    assert list(shown.index) == ["B", "A", "C"]  # the config's order, not the ranking
    assert shown.loc["A", "clean ↑"].endswith(report.SEPARATED)
    assert not shown.loc["A", "sparseness ↑"].endswith(report.SEPARATED)
    assert shown.loc["C", "sparseness ↑"] == "—"  # a method without the measure is a dash
    best = numbers[numbers.best].set_index("measure")
    assert best.loc["clean", "method"] == "A" and best.loc["clean", "versus"] == "B"
    # a collapsed A keeps its row and numbers but is neither best nor second: B is, over C
    shown, numbers = report.benchmark(pd.concat([clear, tied]), measures, ["B", "A", "C"], collapsed=["A"])
    assert not shown.loc["A", "clean ↑"].endswith(report.SEPARATED) and shown.loc["A", "clean ↑"] != "—"
    best = numbers[numbers.best].set_index("measure")
    assert (best.loc["clean", "method"], best.loc["clean", "versus"]) == ("B", "C")


def test_a_method_with_a_seed_below_the_floor_has_collapsed():
    records = pd.DataFrame(
        {"method": ["A", "A", "B", "B", "C"], "seed": [0, 1, 0, 1, 0], "test_accuracy": [0.9, 0.097, 0.8, 0.6, 0.49]}
    )
    assert report.collapsed_methods(records) == ["A", "C"]


def test_lower_is_better_columns_pick_the_smallest_mean():
    rng = np.random.default_rng(1)
    base = [noisy(10, rng) for _ in range(2)]
    table = per_image_table(
        {"A": {s: [v - 3 for v in base[s]] for s in range(2)}, "B": {s: base[s] for s in range(2)}}, measure="roar"
    )
    measure = chapter.Measure("roar", "ROAR", chapter.INTERPRETABILITY, False)
    _, numbers = report.benchmark(table, (measure,), ["A", "B"])
    assert numbers.set_index("method").loc["A", "separated"]


def test_the_interval_over_seeds_is_students_t():
    mean, half = report.over_seeds(pd.Series([1.0, 2.0, 3.0]))
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(report.over_seeds(pd.Series([4.0]))[1])


def test_the_pareto_front_keeps_exactly_the_undominated_points():
    x = pd.Series([1, 2, 3, 2, 0], index=list("abcde"))
    y = pd.Series([3, 2, 1, 1, 3], index=list("abcde"))
    assert list(report.pareto_front(x, y)) == [True, True, True, False, False]


def test_rank_agreement_turns_lower_is_better_measures_before_comparing():
    means = pd.DataFrame(
        {"sparseness": [1, 2, 3, 4], "complexity": [4, 3, 2, 1], "roar": [1, 2, 3, 4]}, index=list("abcd")
    )
    measures = (
        chapter.Measure("sparseness", "sparseness", chapter.INTERPRETABILITY, True),
        chapter.Measure("complexity", "complexity", chapter.INTERPRETABILITY, False),
        chapter.Measure("roar", "ROAR", chapter.INTERPRETABILITY, False),
        chapter.Measure("clean", "clean", chapter.ROBUSTNESS, True),
    )
    agreement = report.rank_agreement(means.assign(clean=[0, 0, 0, 0]), measures)
    assert list(agreement.columns) == ["sparseness", "complexity", "ROAR"]  # robustness left out
    assert agreement.loc["sparseness", "complexity"] == pytest.approx(1.0)
    assert agreement.loc["sparseness", "ROAR"] == pytest.approx(-1.0)
    pairs = report.distinct_pairs(agreement)
    assert len(pairs) == 3 and sorted(pairs.round(6).tolist()) == [-1.0, -1.0, 1.0]


def test_the_budget_check_counts_held_flipped_and_unsettled_orderings():
    rng = np.random.default_rng(2)
    base = [noisy(0, rng) for _ in range(3)]
    short = per_image_table(
        {
            "A": {s: [v + 3 for v in base[s]] for s in range(3)},
            "B": {s: base[s] for s in range(3)},
            "C": {s: [v - 3 for v in base[s]] for s in range(3)},
        }
    )
    later = [noisy(0, rng) for _ in range(3)]
    longer = per_image_table(
        {
            "A": {s: [v + 3 for v in later[s]] for s in range(3)},
            "B": {s: later[s] for s in range(3)},
            "C": {s: [v + 6 for v in later[s]] for s in range(3)},
        }
    )  # C overtakes both
    measure = chapter.Measure("clean", "clean", chapter.ROBUSTNESS, True)
    check = report.budget_check(short, longer, (measure,), ["A", "B", "C"]).iloc[0]
    # separated at first: A>B, A>C, B>C; later A>B holds, C now beats A and B
    assert (check["separated pairs"], check[report.HELD], check[report.FLIPPED]) == (3, 1, 2)
    # a larger budget on one seed cannot estimate training variance: nothing it checks is settled
    one_seed = report.budget_check(short, longer[longer.seed == 0], (measure,), ["A", "B", "C"]).iloc[0]
    assert (one_seed[report.HELD], one_seed[report.FLIPPED], one_seed[report.UNSETTLED]) == (0, 0, 3)
    assert check["rank correlation"] == pytest.approx(-0.5)
    without_c = report.budget_check(short, longer, (measure,), ["A", "B", "C"], collapsed=["C"]).iloc[0]
    assert (without_c["separated pairs"], without_c[report.HELD]) == (1, 1)  # only A > B is checked


def test_a_measure_on_which_every_method_ties_has_no_rank_correlation_and_no_warning():
    rng = np.random.default_rng(3)
    short = per_image_table({m: {0: noisy(0, rng)} for m in "ABC"})
    tied = noisy(0, rng)
    longer = per_image_table({m: {0: tied} for m in "ABC"})  # ROAR in a small run: all at chance
    measure = chapter.Measure("clean", "clean", chapter.ROBUSTNESS, True)
    with warnings.catch_warnings():
        # scipy's warning reached the terminal of the smoke book
        warnings.simplefilter("error", category=stats.ConstantInputWarning)
        check = report.budget_check(short, longer, (measure,), ["A", "B", "C"]).iloc[0]
    assert math.isnan(check["rank correlation"])


def test_cost_ratios_are_per_repeat_against_standard_training():
    timings = pd.DataFrame(
        {
            "method": ["standard", "PGD", "standard", "PGD"],
            "repeat": [0, 0, 1, 1],
            "seconds_per_batch": [1.0, 5.0, 2.0, 8.0],
        }
    )
    ratios = chapter.cost_ratios(timings, "standard")
    assert chapter.median_ratio(ratios).to_dict() == {"PGD": 4.5, "standard": 1.0}


def write_verdicts(root, profile, chapter_name, frame):
    path = scoreboard.verdict_path(root, profile, chapter_name)
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)


def test_the_scoreboard_reads_every_schema_and_says_when_a_chapter_did_not_run(tmp_path):
    write_verdicts(
        tmp_path,
        "default",
        "saliency_guided_training",
        pd.DataFrame(
            {
                "claim": [
                    "SGT beats ST",
                    "SGT is more robust than ST across eps (PGD)",
                    "contrary: ST is more robust than SGT",
                ],
                "source": ["guesmi2024asgt", "guesmi2024asgt", "karkehabadi2024sgt"],
                "seeds where it holds": ["3 of 3", "3 of 3", "0 of 3"],
                "mean gap (points)": [13.07, 5.0, -13.07],
                "verdict": ["reproduced", "reproduced", "contradicted"],
            }
        ),
    )
    write_verdicts(
        tmp_path,
        "default",
        "scaat",
        pd.DataFrame(
            {
                "claim": ["sparser maps", "sparser maps"],
                "measure": ["sparseness", "sparseness"],
                "dataset": ["mnist", "mnist"],
                "versus": ["ST", "SGT"],
                "effect": [0.0812, 0.01],
                "low": [0.0734, -0.01],
                "high": [0.0891, 0.02],
                "verdict": ["reproduced", "partly"],
            }
        ),
    )
    write_verdicts(
        tmp_path,
        "paper",
        "scaat",
        pd.DataFrame(
            {
                "claim": ["sparser maps"],
                "measure": ["sparseness"],
                "dataset": ["mnist"],
                "versus": ["ST"],
                "effect": [0.05],
                "low": [-0.01],
                "high": [0.1],
                "verdict": ["partly"],
            }
        ),
    )
    board = scoreboard.scoreboard(tmp_path)
    sgt = board[board.paper.str.startswith("Guesmi") & (board.verdict != scoreboard.UNTESTABLE)]
    assert len(sgt) == 1, sgt  # the figures' range judgements and another paper's claim stay on the chapter's page
    sgt = sgt.iloc[0]
    assert (sgt["ours"], sgt["rule"], sgt["where"]) == ("13.1", scoreboard.SEED_RULE, "—")
    xu = board[board.paper.str.startswith("Xu") & (board.verdict != scoreboard.UNTESTABLE)]
    assert len(xu) == 1  # only the abstract's comparison with ordinary training is a headline claim
    assert xu.iloc[0]["ours"] == "0.0812 [0.0734, 0.0891]" and xu.iloc[0]["verdict (paper)"] == "partly"
    missing = board[board.paper.str.startswith("Moshe") & (board.verdict == scoreboard.NOT_RUN)]
    assert "robinterp run neuron_sensitivity" in missing.iloc[0]["claim"]
    assert (board.verdict == scoreboard.UNTESTABLE).sum() == len(scoreboard.NOT_TESTABLE)
    tally = scoreboard.tally(board)
    assert tally.loc["Xu et al. (SCAAT, reconstruction)", "reproduced"] == 1
    assert list(tally.index) == [paper.paper for paper in scoreboard.PAPERS]
    judged, untested = scoreboard.page_tables(board)
    assert list(judged.columns) == [*scoreboard.SHOWN, "verdict (paper)"]  # the paper profile ran for SCAAT
    assert len(untested) == len(scoreboard.NOT_TESTABLE) and list(untested.columns) == ["where", "why"]
    board_default_only = scoreboard.scoreboard(tmp_path, other="nothing")
    assert "verdict (nothing)" not in scoreboard.page_tables(board_default_only, other="nothing")[0].columns


def test_a_row_that_names_its_rule_keeps_it_on_the_scoreboard(tmp_path):
    write_verdicts(
        tmp_path,
        "default",
        "neuron_sensitivity",
        pd.DataFrame(
            {
                "claim": ["NsLoss is best of the four on most of the seven metrics", "NsLoss beats standard"],
                "measure": ["metrics where the rule separates NsLoss above all three others: 5 of 7", "x"],
                "effect": [float("nan"), 0.1],
                "low": [float("nan"), 0.05],
                "high": [float("nan"), 0.2],
                "rule": ["interval, per metric", float("nan")],
                "verdict": ["consistent", "inconclusive"],
            }
        ),
    )
    board = scoreboard.scoreboard(tmp_path)
    moshe = board[board.paper.str.startswith("Moshe") & (board.verdict != scoreboard.UNTESTABLE)]
    assert moshe["rule"].tolist() == ["interval, per metric", scoreboard.INTERVAL_RULE]


def test_a_verdict_table_saved_with_metric_keys_in_its_claims_still_meets_the_new_one(tmp_path):
    """Verdict tables saved before the pages named metrics by title say "max_sensitivity"."""
    for profile, claim in (("default", "max-sensitivity"), ("paper", "max_sensitivity")):
        write_verdicts(
            tmp_path,
            profile,
            "neuron_sensitivity",
            pd.DataFrame(
                {
                    "claim": [f"NsLoss beats standard on {claim}", f"{claim.replace('max', 'avg')} falls with epoch"],
                    "effect": [0.1, 0.2],
                    "low": [0.05, -0.1],
                    "high": [0.2, 0.4],
                    "verdict": ["reproduced", "partly"],
                }
            ),
        )
    board = scoreboard.scoreboard(tmp_path)
    moshe = board[board.paper.str.startswith("Moshe") & (board.verdict != scoreboard.UNTESTABLE)]
    assert moshe["claim"].tolist() == ["NsLoss beats standard on max-sensitivity", "avg-sensitivity falls with epoch"]
    assert moshe["verdict (paper)"].tolist() == ["reproduced", "partly"]


def test_a_method_whose_seeds_land_apart_is_named_with_each_seeds_accuracy():
    records = pd.DataFrame(
        {
            "method": ["standard"] * 3 + ["NsLoss"] * 3,
            "seed": [0, 1, 2] * 2,
            "test_accuracy": [0.95, 0.94, 0.96, 0.93, 0.11, 0.92],
        }
    )
    assert report.spread_seeds(records) == "**NsLoss** (seeds 93.0, 11.0, 92.0%)"
    assert report.spread_seeds(records, points=90) == "none"


def test_the_budget_check_says_when_one_seed_leaves_it_silent():
    assert "one seed" in report.budget_note(1) and report.budget_note(2) == ""


def test_the_scoreboard_counts_claims_judged_from_their_sub_rows(tmp_path):
    """NsLoss's claim 1 on three metrics is one claim of three sub-rows: the one decisive row whose p
    does not survive Holm's correction over the three becomes inconclusive, with the reason, and the
    claim is inconclusive; a claim of one row keeps its verdict; the seeds an underpowered ordering
    needs are the most any of its sub-rows needs."""
    write_verdicts(
        tmp_path,
        "default",
        "neuron_sensitivity",
        pd.DataFrame(
            {
                "claim": [
                    "NsLoss beats standard on max-sensitivity",
                    "NsLoss beats standard on complexity",
                    "NsLoss beats standard on sparseness",
                    "clean accuracy falls with lambda (Table 5)",
                ],
                "effect": [0.3, 0.1, 0.02, 2.0],
                "low": [0.1, -0.1, 0.01, 1.0],
                "high": [0.5, 0.3, 0.03, 3.0],
                "seeds agreeing": ["3 of 3"] * 4,
                "verdict": [rules.CONSISTENT, rules.INCONCLUSIVE, rules.NO_DIFFERENCE, rules.CONSISTENT],
                "p": [0.03, float("nan"), float("nan"), 0.03],
                "seeds needed": [4.0, 12.0, float("inf"), 2.0],
            }
        ),
    )
    board = scoreboard.scoreboard(tmp_path)
    claims = scoreboard.claims(board)
    by_claim = claims.set_index("claim")
    one = by_claim.loc["NsLoss beats standard"]
    assert (one["verdict"], one["sub-rows"]) == (rules.INCONCLUSIVE, "1 no meaningful difference, 2 inconclusive of 3")
    assert one["seeds for 2δ"] == f">{rules.MAX_SEEDS_NEEDED}"
    row = board.set_index("claim").loc["NsLoss beats standard on max-sensitivity"]
    assert row["verdict"] == rules.INCONCLUSIVE and "Holm" in row["why"]
    trend = by_claim.loc["clean accuracy falls with lambda"]
    assert (trend["verdict"], trend["seeds for 2δ"]) == (rules.CONSISTENT, "2")
    assert by_claim.loc["Table 1's ROAR levels on CIFAR-10", "verdict"] == scoreboard.UNTESTABLE
    assert "not run" in set(claims["verdict"])  # the chapters with no results here
    assert scoreboard.tally(claims).loc["Moshe et al. (NsLoss)", rules.CONSISTENT] == 1
    text = scoreboard.underpowered_text(claims)
    assert (
        text.startswith("**1** of the 1 inconclusive claims are underpowered") and "no number of seeds up to 50" in text
    )
    shown = scoreboard.claim_table(claims)
    assert list(shown.columns) == list(scoreboard.CLAIM_SHOWN) and scoreboard.UNTESTABLE not in set(shown["verdict"])
    # the page's "more than the seeds its chapter trained": the judged orderings' "k of S", not the
    # synthesis's own seeds; a claim the column does not speak of (not judged, untestable) not counted
    assert scoreboard.seeds_text(claims) == "3"
    more = claims["claim"] == "clean accuracy falls with lambda"
    assert scoreboard.seeds_text(claims.assign(seeds=claims["seeds"].where(~more, 5.0))) == "3 to 5"
    untestable = claims["verdict"] == scoreboard.UNTESTABLE
    assert scoreboard.seeds_text(claims.assign(seeds=claims["seeds"].where(~untestable, 1.0))) == "3"
    assert scoreboard.seeds_text(claims[untestable]) == "—"


def test_the_scoreboard_before_any_paper_chapter_ran_says_so(tmp_path):
    """The synthesis run on its own (no chapter's verdicts yet): a row per paper saying how to make
    them, the claims no profile tests, and no traceback at the end of the chapter's run."""
    board = scoreboard.scoreboard(tmp_path)
    claims = scoreboard.claims(board)
    assert set(claims["verdict"]) == {scoreboard.NOT_RUN, scoreboard.UNTESTABLE}
    assert (claims["verdict"] == scoreboard.NOT_RUN).sum() == len(scoreboard.PAPERS)
    assert scoreboard.seeds_text(claims) == "—"
    assert scoreboard.underpowered_text(claims).startswith("No inconclusive claim")


class RecordingSettings:
    """A measure's settings that record the fields read from them."""

    def __init__(self, settings) -> None:
        self._settings, self.read = settings, set()

    def __getattr__(self, name: str):
        self.read.add(name)
        return getattr(self._settings, name)


@pytest.mark.parametrize("explainer", ["saliency", "integrated_gradients"])
@pytest.mark.parametrize("group", list(chapter.benchmark_measures.GROUPS))
def test_every_measure_reads_exactly_the_settings_that_key_it(group, explainer, tiny_cnn):
    """Every measure of the benchmark is cached per model under its keyed settings; run on a tiny
    model, it must read no field it is not keyed by (or a changed value would be served stale, as
    ``attack_early_stop`` was under the former hand-kept field lists) and every keyed field (or a
    field it ignores would recompute it)."""
    cfg = chapter.SynthesisConfig(
        train_size=64,
        explainer=explainer,
        ig_steps=2,
        eval_size=4,
        autoattack_size=2,
        quantus_size=2,
        quantus_samples=2,
        faithfulness_size=4,
        alignment_size=4,
        roar_train_size=32,
        roar_test_size=4,
        roar_epochs=0.1,
        attacks={"fgsm": {"attack": "fgsm"}, "pgd": {"attack": "pgd", "steps": 2}},
    )
    for settings, _ in chapter.benchmark_measures.GROUPS[group](cfg, 0):
        unit = measures.measure_of(settings)
        recording = RecordingSettings(settings)
        unit.rows(tiny_cnn.eval(), recording, seed=0, model_key="tiny-key", name="tiny")
        keyed = set(measures.keyed(settings))
        unkeyed = {f.name for f in dataclasses.fields(settings)} - keyed  # may be read: they change no number
        assert recording.read - unkeyed == keyed, unit.name
