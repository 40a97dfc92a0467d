"""Explanation metrics: every metric runs on a real model, scores are reproducible and equal
Quantus's (the reference), settings are stated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robinterp import RobinterpError
from robinterp import explanation_quality as eq
from robinterp.settings.metrics import SEVEN, MetricEntry, metric_table
from tests.test_attacks import toy_attack  # noqa: F401 (the toy attack module's fixture)


@pytest.fixture
def model_and_images(tiny_cnn, blobs):
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(tiny_cnn.parameters(), lr=1e-2)
    for xb, yb in blobs.batches(50, shuffle=True, seed=0):  # a few steps: predictions not constant
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(tiny_cnn(xb), yb).backward()
        optimizer.step()
    return tiny_cnn, blobs.images[:6], blobs.labels[:6]


def test_every_metric_scores_every_image_reproducibly_and_leaves_the_model_mode(model_and_images):
    model, x, y = model_and_images
    model.train()
    options = {"n_steps": 8}
    first = eq.scores(model, x, y, explainer_options=options, samples=3, seed=1)
    again = eq.scores(model, x, y, explainer_options=options, samples=3, seed=1)
    assert model.training
    assert set(first.metric) == set(SEVEN) and (first.groupby("metric").size() == 6).all()
    assert np.isfinite(first.score).all()
    assert first.score.tolist() == again.score.tolist()
    other_seed = eq.scores(model, x, y, ("max_sensitivity",), explainer_options=options, samples=3, seed=2)
    assert other_seed.score.tolist() != first[first.metric == "max_sensitivity"].score.tolist()


def test_a_metrics_scores_do_not_depend_on_the_metrics_scored_beside_it(model_and_images):
    """What lets the NsLoss chapter's sweep take its Table 5 scores from the seven-metric table."""
    model, x, y = model_and_images
    options = {"n_steps": 4}
    three = ("max_sensitivity", "faithfulness_estimate", "sparseness")
    every = eq.scores(model, x, y, explainer_options=options, samples=3, seed=1)
    alone = eq.scores(model, x, y, three, explainer_options=options, samples=3, seed=1)
    assert every[every.metric.isin(three)].reset_index(drop=True).equals(alone)


@pytest.mark.parametrize("explainer", ["gradient_shap", "smoothgrad", "random"])
def test_a_noisy_explainers_scores_follow_the_seed_not_what_drew_before(model_and_images, explainer):
    """captum's GradientSHAP draws from numpy's and torch's global generators, SmoothGrad and the
    random control from torch's: a cached step skipped before them must not change a table."""
    model, x, y = model_and_images
    metrics = ("max_sensitivity", "faithfulness_correlation")
    first = eq.scores(model, x, y, metrics, explainer=explainer, samples=2, seed=4)
    torch.rand(5), np.random.rand(5)
    again = eq.scores(model, x, y, metrics, explainer=explainer, samples=2, seed=4)
    assert first.equals(again)


def test_our_explain_func_is_robinterps_attribution_summed_over_channels(model_and_images):
    from robinterp import explain

    model, x, y = model_and_images
    ours = eq.quantus_explain_func(model.eval(), x.numpy(), y.numpy(), explainer="saliency")
    direct = explain.saliency(model, x.clone().requires_grad_(True), y).sum(1, keepdim=True)
    assert ours.shape == (6, 1, 28, 28) and np.allclose(ours, direct.numpy())


def test_sparseness_and_complexity_rank_a_peaked_map_above_a_flat_one():
    import quantus

    flat = np.full((1, 1, 28, 28), 0.5, dtype=np.float32) + np.linspace(0, 0.01, 784, dtype=np.float32).reshape(
        1, 1, 28, 28
    )
    peaked = np.zeros((1, 1, 28, 28), dtype=np.float32)
    peaked[0, 0, 14, 14] = 1.0
    x, y = np.random.rand(1, 1, 28, 28).astype(np.float32), np.array([0])
    for name in ("sparseness", "complexity"):
        spec = eq.get_metric(name)
        metric = getattr(quantus, spec.quantus_name)(disable_warnings=True, **spec.settings(3, 784, None))
        peaked_score = metric(model=None, x_batch=x, y_batch=y, a_batch=peaked.copy())[0]
        flat_score = metric(model=None, x_batch=x, y_batch=y, a_batch=flat.copy())[0]
        better_is_peaked = peaked_score > flat_score if spec.higher_is_better else peaked_score < flat_score
        assert better_is_peaked, name


def test_settings_table_and_bad_names():
    table = eq.metric_settings(samples=10, n_features=784)
    assert len(table) == 7 and set(table.better) == {"higher", "lower"}
    row = table.set_index("metric").loc["faithfulness_estimate", "changed settings"]
    assert row["features_in_step"] == 28 and 784 % row["features_in_step"] == 0
    assert eq._evaluation.divisor_at_most(1024, 36) == 32
    with pytest.raises(RobinterpError, match="unknown explanation metric 'sparsity'"):
        eq.get_metric("sparsity")


def test_the_random_control_is_far_more_sensitive_than_integrated_gradients(model_and_images):
    model, x, y = model_and_images
    ig = eq.scores(model, x, y, ("max_sensitivity",), explainer_options={"n_steps": 8}, samples=3, noise=0.02)
    noise = eq.scores(model, x, y, ("max_sensitivity",), explainer="random", samples=3, noise=0.02)
    assert noise.score.mean() > 2 * ig.score.mean()
    table = eq.metric_settings(3, 784, noise=0.02).set_index("metric")["changed settings"]
    assert table["max_sensitivity"]["lower_bound"] == 0.02 and table["local_lipschitz"]["perturb_std"] == 0.02


# --- robinterp's implementation against Quantus, the reference ------------------------
# batch_size=4 splits the 6 images into Quantus batches of 4 and 2 and images_per_call=5
# cuts explainer calls and forward passes across them, so the draw order and the
# per-call normalisation are exercised. Scores agree up to float32 round-off: 1e-5
# relative (3e-7 seen), except the two faithfulness metrics: Pearson correlations over
# 3 runs or 28 steps of logit drops of about 0.1, whose float32 round-off (about 5e-7:
# a forward pass depends on the batch it is in) they amplify, and relative error means
# little for a correlation near 0: 3e-5 absolute (7e-6 seen).
TOLERANCE = {"faithfulness_correlation": {"atol": 3e-5}, "faithfulness_estimate": {"atol": 3e-5}}
IG_OPTIONS = {"n_steps": 4}


def both_implementations(model, x, y, metrics, **kwargs):
    tables = []
    for implementation in ("quantus", "robinterp"):
        torch.manual_seed(0)  # the random control draws from torch's global generator
        tables.append(
            eq.scores(
                model,
                x,
                y,
                metrics,
                samples=3,
                seed=1,
                batch_size=4,
                implementation=implementation,
                images_per_call=5,
                **kwargs,
            )
        )
    return tables


def assert_equal_scores(quantus_table, robinterp_table):
    assert quantus_table[["metric", "image"]].equals(robinterp_table[["metric", "image"]])
    for name, reference in quantus_table.groupby("metric").score:
        ours = robinterp_table.score[reference.index]
        np.testing.assert_allclose(ours, reference, **TOLERANCE.get(name, {"rtol": 1e-5}), err_msg=name)


@pytest.mark.parametrize("explainer,options", [("integrated_gradients", IG_OPTIONS), ("random", {})])
@pytest.mark.parametrize("metric", list(SEVEN))
def test_each_metric_equals_quantus_with_the_same_seed(model_and_images, metric, explainer, options):
    model, x, y = model_and_images
    quantus_table, robinterp_table = both_implementations(
        model, x, y, (metric,), explainer=explainer, explainer_options=options
    )
    assert np.isfinite(quantus_table.score).all()
    assert_equal_scores(quantus_table, robinterp_table)


@pytest.mark.parametrize("metric", list(SEVEN))
def test_each_metric_equals_quantus_on_colour_images(metric):
    """Three channels: attributions summed over them, broadcast back by the faithfulness
    metrics, the black baseline per image, features counted over all channels."""
    from robinterp import models

    torch.manual_seed(0)
    model = models.build("small_cnn", "cifar10", num_classes=10, shape=(3, 16, 16), width=4)
    x, y = torch.rand(6, 3, 16, 16), torch.arange(6) % 10
    quantus_table, robinterp_table = both_implementations(model, x, y, (metric,), explainer_options=IG_OPTIONS)
    assert np.isfinite(quantus_table.score).all()
    assert_equal_scores(quantus_table, robinterp_table)


@pytest.mark.parametrize("metric", ["max_sensitivity", "avg_sensitivity", "local_lipschitz"])
def test_a_changed_prediction_gives_nan_as_in_quantus(model_and_images, metric):
    """A setting an entry lists reaches both implementations (Quantus's constructor, robinterp's)."""
    model, x, y = model_and_images
    entry = MetricEntry.of(metric, return_nan_when_prediction_changes=True)
    quantus_table, robinterp_table = both_implementations(
        model, x, y, (entry,), explainer_options=IG_OPTIONS, noise=0.3
    )
    nan = quantus_table.score.isna()
    assert 0 < nan.sum() < len(nan), "the noise should change some predictions, not all"
    assert (robinterp_table.score.isna() == nan).all()
    assert_equal_scores(quantus_table, robinterp_table)


def test_max_and_avg_sensitivity_explain_the_noisy_copies_once(model_and_images, monkeypatch):
    model, x, y = model_and_images
    calls = []
    explain_and_count = eq._evaluation.summed_attribution

    def counted(model, x, *args):
        calls.append(len(x))
        return explain_and_count(model, x, *args)

    monkeypatch.setattr(eq._evaluation, "summed_attribution", counted)
    kwargs = dict(explainer_options=IG_OPTIONS, samples=3, seed=1)
    apart = [eq.scores(model, x, y, (name,), **kwargs) for name in ("max_sensitivity", "avg_sensitivity")]
    images_explained_apart = sum(calls)
    calls.clear()
    together = eq.scores(model, x, y, ("max_sensitivity", "avg_sensitivity"), **kwargs)
    assert together.score.tolist() == apart[0].score.tolist() + apart[1].score.tolist()
    assert sum(calls) == 6 + 3 * 6 and images_explained_apart == 2 * (6 + 3 * 6)


def test_noisy_copies_are_explained_in_bounded_calls(model_and_images, monkeypatch):
    model, x, y = model_and_images
    calls = []
    explain_and_count = eq._evaluation.summed_attribution
    monkeypatch.setattr(
        eq._evaluation,
        "summed_attribution",
        lambda model, x, *args: calls.append(len(x)) or explain_and_count(model, x, *args),
    )
    eq.scores(
        model,
        x,
        y,
        ("local_lipschitz",),
        explainer_options=IG_OPTIONS,
        samples=4,
        seed=1,
        batch_size=2,
        images_per_call=5,
    )
    # the images (5 + 1), then per batch of 2 images two samples per chunk: 4 copies a call
    assert calls == [5, 1] + [4] * 6


def test_implementation_choices_and_unsupported_settings(model_and_images):
    model, x, y = model_and_images
    assert set(eq.registry()) == set(SEVEN)
    with pytest.raises(RobinterpError, match="unknown implementation 'numpy'; choose from robinterp, quantus"):
        eq.scores(model, x, y, ("complexity",), implementation="numpy")
    with eq.eval_mode(model):
        evaluation = eq.prepare_evaluation(model, x, y, explainer="saliency", explainer_options={})
    with pytest.raises(RobinterpError, match="does not take perturb_func"):
        eq.vectorized_scores(evaluation, "max_sensitivity", {"perturb_func": None})
    with pytest.raises(RobinterpError, match="normalise_axes"):
        eq.vectorized_scores(evaluation, "complexity", {"normalise_func_kwargs": {"normalise_axes": (2, 3)}})


# A whole metric written by a user, outside the package: the share of the attribution's mass in
# its top tenth of pixels (Quantus has no such class).
TOY_METRIC = '''
"""A toy explanation metric: the share of |attribution| in the top tenth of the pixels."""

import torch

from robinterp.explanation_quality import Evaluation, Metric


def top_mass(evaluation: Evaluation, *, share: float = 0.1) -> torch.Tensor:
    """The share of |attribution| in the ``share`` of pixels with the most of it."""
    a = evaluation.attributions.flatten(1).abs().double()
    k = max(1, int(share * a.shape[1]))
    return a.topk(k, dim=1).values.sum(1) / a.sum(1).clamp_min(1e-12)


def settings(samples, pixels, noise):
    return {}


METRIC = Metric(
    "top_mass", top_mass, __name__, quantus_name=None, higher_is_better=True, settings=settings, why="a toy"
)
'''


@pytest.fixture
def toy_metric(tmp_path, monkeypatch):
    """The toy metric module on sys.path and named for the registry."""
    from tests.conftest import user_module

    return user_module(tmp_path / "user_metrics", monkeypatch, "toy_top_mass", TOY_METRIC, eq.ENVIRONMENT)


def test_a_listed_entry_is_scored_under_its_label_with_its_settings(model_and_images, toy_metric):
    model, x, y = model_and_images
    listed = metric_table(
        {
            "sparseness": {"metric": "sparseness"},
            "top tenth": {"metric": "top_mass"},
            "top half": {"metric": "top_mass", "share": 0.5},
        }
    )
    table = eq.scores(model, x, y, listed, explainer="saliency", seed=1)
    assert list(table.metric.unique()) == ["sparseness", "top tenth", "top half"]
    by_label = table.set_index(["metric", "image"]).score
    assert (by_label["top tenth"] < by_label["top half"]).all() and (by_label["top half"] <= 1).all()
    # an entry's label and settings change nothing of another entry's scores
    alone = eq.scores(model, x, y, ("sparseness",), explainer="saliency", seed=1)
    assert alone.score.tolist() == by_label["sparseness"].tolist()
    with pytest.raises(RobinterpError, match="has no Quantus class; use implementation='robinterp'"):
        eq.scores(model, x, y, listed, explainer="saliency", implementation="quantus")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"metric": "sparsity"}, "unknown explanation metric 'sparsity'"),
        ({"metric": "max_sensitivity", "lowerbound": 0.1}, "has no setting 'lowerbound'; it takes nr_samples"),
        ({"metric": "max_sensitivity", "abs": "yes"}, "abs must be like its default False, got 'yes'"),
        ({"metric": "max_sensitivity", "lower_bound": [0.1]}, "lower_bound must be like its default 0.2"),
        ("sparseness", "must be a mapping with a 'metric' name"),
    ],
)
def test_a_bad_metric_entry_is_one_line_naming_it(entry, message):
    from robinterp.config import ConfigError

    with pytest.raises(ConfigError, match=message) as error:
        metric_table({"m": entry})
    assert "metrics['m']" in str(error.value) and "\n" not in str(error.value)


def test_a_metric_module_keys_only_the_rows_of_entries_that_list_it():
    """Editing one metric's module recomputes only its rows: the quality measure is keyed by the
    listed metrics' modules (and what they import), never by a metric it does not score."""
    from robinterp import measures
    from robinterp.codehash import PACKAGE, module_closure
    from robinterp.measures.quality import QualitySettings

    def files(*metrics) -> set[str]:
        settings = QualitySettings("mnist", 4, metrics)
        unit = measures.measure_of(settings)
        roots = (unit.module, *unit.code(settings))
        return {p.relative_to(PACKAGE).as_posix() for p in module_closure(PACKAGE, roots)}

    sparse = files("sparseness")
    assert "explanation_quality/sparseness.py" in sparse and "explanation_quality/_evaluation.py" in sparse
    assert not {f"explanation_quality/{name}.py" for name in SEVEN if name != "sparseness"} & sparse
    assert "explanation_quality/max_sensitivity.py" in files("sparseness", "max_sensitivity")


@pytest.mark.slow
def test_a_toy_metric_and_a_toy_attack_listed_in_a_config_reach_the_tables_the_page_and_the_synthesis(
    toy_metric,
    toy_attack,  # noqa: F811
    tmp_path,
    shared_smoke_cache,
):
    """The units promise for metrics and attacks: two new modules and two config entries, nothing
    else; the NsLoss page runs under the smoke profile with both and its tables follow the lists."""
    import json
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from robinterp.experiments import synthesis
    from robinterp.paths import build_root
    from robinterp.profiles import profile_overrides
    from tests.conftest import REPO

    metrics = {**MetricEntry.to_config(metric_table()), "top tenth": {"metric": "top_mass"}}
    attacks = {"pgd": {"attack": "pgd", "steps": 2}, "random sign": {"attack": "random_sign"}}
    settings = {**profile_overrides("smoke", "neuron_sensitivity"), "metrics": metrics, "attacks": attacks}
    config = tmp_path / "toys.yml"
    config.write_text(yaml.safe_dump({"neuron_sensitivity": settings}))
    result = subprocess.run(
        [sys.executable, "-m", "robinterp", "run", "neuron_sensitivity", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = build_root() / "results" / "config-toys" / "neuron_sensitivity"
    quality = pd.read_csv(results / "explanation_quality.csv")
    assert set(quality.metric) == {*SEVEN, "top tenth"}
    per_model = quality.groupby(["method", "seed", "metric"]).size().unstack()
    assert (per_model["top tenth"] == per_model["sparseness"]).all()  # every model, every image
    robust = pd.read_csv(results / "robust_accuracy.csv")
    assert {"pgd", "random sign"} <= set(robust.attack)
    page = json.loads((build_root() / "executed" / "config-toys" / "neuron_sensitivity.ipynb").read_text())
    shown = json.dumps([c.get("outputs", []) for c in page["cells"] if c["cell_type"] == "code"])
    assert "top tenth" in shown and "random sign" in shown  # in the quality and robustness tables

    columns = {m.name: m for m in synthesis.measures(synthesis.SynthesisConfig(metrics=metrics, attacks=attacks))}
    assert columns["top tenth"].metric == "top_mass" and columns["top tenth"].higher_is_better
    assert "random sign@0.1" in columns
