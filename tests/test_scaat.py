"""SCAAT (the book's reconstruction): the per-pixel budget, its equivalence to PGD training at
gamma 0, the saliency normalisation, the background-mass measure, and the chapter's verdicts."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from robinterp import metrics, models, train
from robinterp.attacks import _steps
from robinterp.attacks import pgd as pgd_module
from robinterp.methods import get_method, scaat


def cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)


def test_the_per_pixel_budget_holds_elementwise_after_every_step_and_after_clipping(monkeypatch):
    model = cnn()
    x = torch.rand(6, 1, 28, 28)
    x[:, :, :4] = 0.0  # pixels at the lower edge of [0, 1], where clipping binds
    x[:, :, -4:] = 1.0
    y = torch.arange(6)
    budget = 0.3 * torch.rand(6, 1, 28, 28)
    budget[:, :, 10:12] = 0.0  # pixels that must not move at all
    iterates = []
    real_step = _steps.Linf.project

    def recording(delta, eps):
        projected = real_step(delta, eps)
        iterates.append(projected)
        return projected

    monkeypatch.setattr(_steps.Linf, "project", staticmethod(recording))
    x_adv = pgd_module.budget_pgd(model, x, y, budget=budget, steps=5, step_size=0.05)
    assert len(iterates) == 5
    for delta in iterates:
        assert ((delta.abs() - budget) <= 1e-7).all()
    moved = (x_adv - x).abs()
    assert ((moved - budget) <= 1e-6).all() and (moved[:, :, 10:12] == 0).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and (moved > 0).any()


def test_with_gamma_0_scaat_is_pgd_training_exactly():
    data = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    from robinterp.data import Split

    split = Split(*data)
    base = dict(model="small_cnn", width=4, epochs=1.0, batch_size=16, lr=3e-3, seed=5)
    a, b = cnn(), cnn()
    train.fit(
        a,
        split,
        train.TrainSpec(
            method="scaat",
            method_params=(("gamma", 0.0), ("clean_weight", 0.0), ("eps", 0.2), ("steps", 3), ("eps_warmup", 0.5)),
            **base,
        ),
    )
    train.fit(
        b,
        split,
        train.TrainSpec(method="pgd_at", method_params=(("eps", 0.2), ("steps", 3), ("eps_warmup", 0.5)), **base),
    )
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_with_gamma_above_0_the_most_salient_pixels_get_the_smallest_budget():
    model = cnn()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    params = get_method("scaat").make_params({"gamma": 1.0}, "test")
    radii = scaat.budget(model, x, y, params, eps=0.3)
    saliency = scaat.normalised_saliency(model, x, y)
    assert torch.allclose(radii, 0.3 * (1 - saliency).expand_as(x))
    flat_s, flat_r = saliency.flatten(1), radii.flatten(1)
    assert torch.equal(flat_r.argmin(1), flat_s.argmax(1))


def test_the_scaat_loss_attacks_inside_the_saliency_shaped_budget(monkeypatch):
    model = cnn()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    params = get_method("scaat").make_params({"gamma": 2.0, "eps": 0.2, "steps": 3, "eps_warmup": 0.0}, "test")
    seen = {}
    real = pgd_module.budget_pgd

    def recording(model_, x_, y_, **kw):
        seen.update(kw)
        seen["x_adv"] = real(model_, x_, y_, **kw)
        return seen["x_adv"]

    monkeypatch.setattr(scaat, "budget_pgd", recording)
    scaat.loss(model, x, y, params, progress=0.5)
    expected = 0.2 * (1 - scaat.normalised_saliency(model, x, y)) ** 2.0
    assert torch.allclose(seen["budget"], expected.expand_as(x))
    assert ((seen["x_adv"] - x).abs() <= expected + 1e-6).all()
    assert seen["step_size"] == pytest.approx(2.5 * 0.2 / 3)


def test_the_saliency_normalisation_lies_in_0_1_per_sample_with_both_ends_reached():
    model = cnn()
    x, y = torch.rand(5, 3, 28, 28), torch.arange(5)
    rgb = models.build("small_cnn", "cifar10", num_classes=10, shape=(3, 28, 28), width=4)
    for net, images in ((model, x[:, :1]), (rgb, x)):
        s = scaat.normalised_saliency(net, images, y)
        assert s.shape == (5, 1, 28, 28)
        assert torch.allclose(s.flatten(1).amin(1), torch.zeros(5))
        assert torch.allclose(s.flatten(1).amax(1), torch.ones(5))
    constant = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    torch.nn.init.zeros_(constant[1].weight)
    assert (scaat.normalised_saliency(constant, x[:, :1], y) == 0).all(), "a flat gradient has no salient pixel"


def test_the_margin_scale_is_in_0_1_and_smaller_for_wrong_predictions():
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2, bias=False))
    linear[1].weight.data = torch.eye(2) * 10
    x = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    scale = scaat.margin_scale(linear, x, torch.tensor([0, 1])).flatten()
    assert 0.99 < scale[0] <= 1 and 0 <= scale[1] < 0.01


def test_scaat_learns_and_backpropagates(blobs):
    model = cnn()
    history = train.fit(
        model,
        blobs,
        train.TrainSpec(
            model="small_cnn",
            width=4,
            method="scaat",
            method_params=(("eps", 0.1), ("steps", 2), ("adaptive", True)),
            epochs=3.0,
            batch_size=50,
            lr=3e-3,
        ),
    )
    assert history["loss"].iloc[-1] < history["loss"].iloc[0] and train.accuracy(model, blobs) > 0.5


def test_background_mass_on_a_hand_case():
    x = torch.zeros(2, 1, 2, 2)
    x[:, :, 0, 0] = 1.0  # one object pixel, three background pixels
    attribution = torch.tensor([[[[3.0, 1.0], [0.0, 0.0]]], [[[0.0, -2.0], [2.0, 0.0]]]])
    assert metrics.background_mass(attribution, x, threshold=0.1).tolist() == [0.25, 1.0]
    assert metrics.background_mass(torch.zeros_like(x), x).tolist() == [0.0, 0.0]


def test_per_image_removal_starts_at_the_clean_predictions_and_is_seeded(blobs, tiny_cnn):
    from robinterp import models

    x, y = blobs.images[:40], blobs.labels[:40]
    attribution = torch.rand_like(x)
    fractions = (0.0, 0.3, 0.6)
    correct = metrics.correct_after_removal(tiny_cnn, x, y, attribution, fractions, seed=3)
    assert correct.shape == (3, 40) and correct.dtype == torch.bool
    assert correct[0].tolist() == (models.predict(tiny_cnn, x) == y).tolist()  # nothing removed
    assert torch.equal(correct, metrics.correct_after_removal(tiny_cnn, x, y, attribution, fractions, seed=3))


def _chapter_tables(effect: float, seeds=(0, 1, 2), images: int = 60, noise: float = 0.01):
    """Synthetic per-image measures: SCAAT's sparseness is ST's plus ``effect``."""
    g = torch.Generator().manual_seed(0)
    rows, removal = [], []
    for seed in seeds:
        base = torch.rand(images, generator=g)
        for method, shift in (("ST", 0.0), ("SCAAT", effect)):
            noisy = base + shift + noise * torch.randn(images, generator=g)
            for metric in ("sparseness", "complexity", "background_mass", "faithfulness_correlation", "accuracy"):
                # accuracy in points, about 90% (a model near chance would not be judged)
                level = 90.0 if metric == "accuracy" else 0.0
                rows += [
                    {
                        "dataset": "mnist",
                        "method": method,
                        "seed": seed,
                        "metric": metric,
                        "image": i,
                        "score": level + float(v),
                    }
                    for i, v in enumerate(noisy)
                ]
            for ranking in ("saliency", "random"):
                removal += [
                    {
                        "dataset": "mnist",
                        "method": method,
                        "seed": seed,
                        "ranking": ranking,
                        "removed": d,
                        "image": i,
                        "correct": int(i % 2 == 0 or ranking == "random"),
                    }
                    for d in (0.0, 0.5)
                    for i in range(images)
                ]
    return pd.DataFrame(rows), pd.DataFrame(removal)


def test_the_chapters_claims_follow_the_shared_rule():
    from robinterp.configs.scaat import SCAATConfig
    from robinterp.reports import scaat as report

    cfg = SCAATConfig(extra_datasets=(), methods={"ST": {"method": "standard"}, "SCAAT": {"method": "scaat"}})
    measures, removal = _chapter_tables(effect=0.05)
    table = report.claims(cfg, measures, removal).set_index("measure")
    assert list(table.versus.unique()) == ["ST"], "baselines not among the methods are left out"
    assert table.loc["sparseness (Quantus, Gini)", "verdict"] == "consistent"
    # lower is better: a higher complexity is the opposite of the claim
    assert table.loc["complexity (Quantus, entropy)", "verdict"] == "inconsistent"
    assert table.loc["removal gap at 50% (points)", "verdict"] == "no meaningful difference"  # identical: 0
    accuracy = table.loc["clean accuracy (points)"]
    assert accuracy["verdict"] == "consistent" and abs(accuracy["effect"] - 0.05) < 0.01
    # a collapsed SCAAT model: nothing about it is judged
    collapsed = measures.assign(score=measures["score"].where(measures.metric != "accuracy", 9.0))
    assert set(report.claims(cfg, collapsed, removal)["verdict"]) == {"not judged"}


def test_renaming_the_baselines_changes_no_verdict():
    """Renaming ST to 'standard' in a config left the headline claims 'not measured': the baselines
    are found by the method that trains them."""
    from robinterp.configs.scaat import SCAATConfig
    from robinterp.reports import scaat as report
    from robinterp.reports import scoreboard

    measures, removal = _chapter_tables(effect=0.05)
    renamed = measures.assign(method=measures["method"].replace({"ST": "plain"}))
    renamed_removal = removal.assign(method=removal["method"].replace({"ST": "plain"}))
    methods = {"SCAAT": {"method": "scaat"}}
    ours = report.claims(
        SCAATConfig(extra_datasets=(), methods={"ST": {"method": "standard"}, **methods}), measures, removal
    )
    theirs = report.claims(
        SCAATConfig(extra_datasets=(), methods={"plain": {"method": "standard"}, **methods}), renamed, renamed_removal
    )
    assert theirs["versus"].unique().tolist() == ["plain"] and theirs["versus method"].unique().tolist() == ["standard"]
    assert theirs["verdict"].tolist() == ours["verdict"].tolist()
    paper = next(p for p in scoreboard.PAPERS if p.chapter == "scaat")
    assert len(paper.paper_rows(theirs)) == len(theirs)  # still the abstract's comparison on the scoreboard


def test_the_ablation_says_which_way_each_variant_moves_each_measure():
    from robinterp.configs.scaat import SCAATConfig
    from robinterp.reports import scaat as report

    cfg = SCAATConfig(
        extra_datasets=(),
        methods={"ST": {"method": "standard"}, "SCAAT": {"method": "scaat"}},
        ablation={"g0": {"method": "scaat", "gamma": 0.0}},
        ablation_seeds=(0, 1, 2),
    )
    measures, removal = _chapter_tables(effect=0.05)
    variant = measures[measures.method == "SCAAT"].assign(method="g0")
    variant["score"] += 0.02  # higher everywhere: better where higher is better, worse elsewhere
    measures = pd.concat([measures, variant])
    removal = pd.concat([removal, removal[removal.method == "SCAAT"].assign(method="g0")])
    table = report.ablation(cfg, measures, removal)["than SCAAT"].droplevel("variant")
    assert table["sparseness (Quantus, Gini) ↑"] == "better"
    assert table["complexity (Quantus, entropy) ↓"] == "worse"
    assert table["removal gap at 50% (points) ↑"] == "no meaningful difference"
    one_seed = dataclasses.replace(cfg, ablation_seeds=(0,))
    assert report.ablation(one_seed, measures, removal)["than SCAAT"].str.startswith("not judged (one seed").all()


def test_the_chapter_refuses_ablation_seeds_outside_its_seeds_and_a_missing_scaat_entry():
    from robinterp.config import ConfigError
    from robinterp.configs.scaat import SCAATConfig

    with pytest.raises(ConfigError, match=r"ablation_seeds \[5\] must be among seeds \[0, 1, 2, 3, 4\]"):
        SCAATConfig(ablation_seeds=(5,))
    with pytest.raises(ConfigError, match="methods must list a SCAAT entry"):
        SCAATConfig(methods={"ST": {"method": "standard"}})
