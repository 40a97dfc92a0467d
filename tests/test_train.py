"""Training methods and the loop: they learn, backpropagate, stop on NaN, are deterministic."""

from __future__ import annotations

import pytest
import torch

from robinterp import models, train
from robinterp.config import ConfigError
from robinterp.methods import get_method, registry
from robinterp.methods._schedules import ramped
from robinterp.settings.methods import PARAMS


def spec(**kw) -> train.TrainSpec:
    base = dict(model="small_cnn", width=4, epochs=3.0, batch_size=50, lr=3e-3, seed=0)
    return train.TrainSpec(**{**base, **kw})


def build(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)


@pytest.mark.parametrize(
    "method,params",
    [
        ("standard", ()),
        ("fgsm_at", (("eps", 0.1),)),
        ("pgd_at", (("eps", 0.1), ("steps", 2), ("eps_warmup", 0.3))),
        ("nsloss", (("lam", 0.1), ("eps_ns", 0.5), ("n", 2))),
        ("jacobian_reg", (("lam", 0.01),)),
        ("input_grad_reg", (("lam", 0.5),)),
        ("scaat", (("eps", 0.1), ("steps", 2))),
    ],
)
def test_every_method_learns_the_separable_problem(blobs, method, params):
    model = build()
    before = train.accuracy(model, blobs)
    history = train.fit(model, blobs, spec(method=method, method_params=params))
    assert list(history.columns[:4]) == ["epoch", "loss", "train_accuracy", "seconds"]
    assert len(history) == 3 and history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert train.accuracy(model, blobs) > max(0.5, before)


@pytest.mark.parametrize("method", ["standard", "fgsm_at", "pgd_at"])
def test_each_loss_backpropagates_to_every_weight(blobs, method):
    model = build()
    loss, logits = get_method(method)(model, blobs.images[:8], blobs.labels[:8], progress=0.5)
    loss.backward()
    assert logits.shape == (8, 10)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("epochs,batches", [(0.5, 2), (1.0, 4), (1.2, 5), (2.5, 10)])
def test_fractional_epochs_train_exactly_that_many_batches(blobs, monkeypatch, epochs, batches):
    import dataclasses

    seen = []
    standard = get_method("standard")

    def counting(model, x, y, params, *, progress):
        seen.append(progress)
        return standard.loss(model, x, y, params, progress=progress)

    monkeypatch.setitem(registry(), "counting", dataclasses.replace(standard, name="counting", loss=counting))
    monkeypatch.setitem(PARAMS, "counting", standard.params)  # declared, as a method of the package is
    history = train.fit(build(), blobs, spec(method="counting", epochs=epochs))  # 4 batches/epoch
    assert len(seen) == batches and seen == sorted(seen) and seen[0] == 0.0
    assert len(history) == -(-batches // 4)


def test_same_seed_gives_identical_weights(blobs):
    a, b = build(), build()
    train.fit(a, blobs, spec(method="pgd_at", method_params=(("eps", 0.1), ("steps", 2)), epochs=1.0))
    train.fit(b, blobs, spec(method="pgd_at", method_params=(("eps", 0.1), ("steps", 2)), epochs=1.0))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_diverging_run_stops_with_a_clear_message(blobs):
    with pytest.raises(train.TrainingError, match="loss became .* lower the learning rate"):
        train.fit(build(), blobs, spec(lr=1e12, optimizer="sgd"))


def test_eps_warmup_ramps_linearly():
    assert ramped(0.3, 0.0, 0.5) == 0.0
    assert ramped(0.3, 0.25, 0.5) == pytest.approx(0.15)
    assert ramped(0.3, 0.9, 0.5) == 0.3 and ramped(0.3, 0.0, 0.0) == 0.3


def test_method_params_have_one_spelling_so_equal_specs_hash_equal():
    from robinterp.codehash import stable_hash

    a = spec(method="pgd_at", method_params=(("steps", 2), ("eps", 1)))
    b = spec(method="pgd_at", method_params=(("eps", 1.0), ("steps", 2)))
    c = spec(method="pgd_at", method_params=(("eps", 1.0), ("steps", 2), ("norm", "linf")))
    assert a == b == c and stable_hash(a) == stable_hash(b) == stable_hash(c)
    assert a.params.eps == 1.0 and a.params.steps == 2 and a.params.step_size is None


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"method": "magic"}, "unknown training method 'magic'"),
        (
            {"method": "pgd_at", "method_params": (("epsilon", 0.3),)},
            "unknown key 'epsilon' for PGDATParams; did you mean 'eps'",
        ),
        ({"method": "pgd_at", "method_params": (("eps", -1.0),)}, "PGDATParams.eps = -1.0 is out of range"),
        ({"dataset": "imagenet"}, "is not one of 'mnist', 'fashion_mnist', 'cifar10', 'imagenette'"),
        ({"epochs": 0}, "epochs = 0.0 is out of range"),
        ({"optimizer": "adamw"}, "is not one of"),
        ({"batch_size": 12.5}, "must be an integer"),
        ({"method": "pgd_at", "method_params": (("eps", "big"),)}, "PGDATParams.eps must be a number"),
        ({"method": "pgd_at", "method_params": (("eps", 0.1), ("eps", 0.2))}, "twice"),
    ],
)
def test_bad_train_specs_are_one_line_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        spec(**kw)


def test_every_data_set_and_model_of_the_registries_makes_a_spec():
    from robinterp import data

    for name in data.DATASETS:
        assert train.TrainSpec(dataset=name).dataset == name
    for name in models.MODELS:
        assert train.TrainSpec(model=name).model == name


def test_the_recorded_accuracy_is_measured_on_accuracy_size_test_images_shared_by_all_models(blobs):
    """The smoke profile's shortcut: the cache records accuracy on a seeded subset of the test set,
    the same subset for every model; the size keys the entry (the record differs)."""
    test = blobs.subset(None, 0)
    whole, part = spec(epochs=0.5), spec(epochs=0.5, accuracy_size=7)
    model, meta = train.trained_model(part, blobs, test)
    subset = test.subset(7, train.ACCURACY_SUBSET_SEED)
    assert meta["metrics"]["test_accuracy"] == train.accuracy(model, subset)
    assert len(subset) == 7 and subset.labels.tolist() == test.subset(7, train.ACCURACY_SUBSET_SEED).labels.tolist()
    other, other_meta = train.trained_model(whole, blobs, test)
    assert other_meta["key"] != meta["key"]
    assert torch.equal(next(other.parameters()), next(model.parameters()))  # the same training
    assert other_meta["metrics"]["test_accuracy"] == train.accuracy(other, test)


def _train_twice(monkeypatch, tmp_path, blobs, shorter: float, longer: float, **changes):
    """The longer run after the shorter one in one cache, and the longer run alone in a fresh
    one: (its model and metadata after the shorter, alone)."""
    runs = {}
    for name, budgets in (("continued", (shorter, longer)), ("direct", (longer,))):
        monkeypatch.setenv("ROBINTERP_CACHE", str(tmp_path / name))
        for epochs in budgets:
            model, meta = train.trained_model(spec(epochs=epochs, **changes), blobs, blobs)
        runs[name] = (model, meta)
    return runs["continued"], runs["direct"]


@pytest.mark.parametrize(("shorter", "longer"), [(1.0, 2.0), (0.5, 1.5)])
def test_a_longer_run_continues_the_cached_shorter_one_bit_for_bit(monkeypatch, tmp_path, blobs, shorter, longer):
    """1 + 1 resumed epochs are 2 direct epochs, to the bit (and half an epoch + one: the resumed
    run finishes an unfinished epoch): PGD training draws random starts, so the generator's state
    is restored too, with Adam's moments and the data order."""
    changes = {"method": "pgd_at", "method_params": (("eps", 0.1), ("steps", 2), ("eps_warmup", 0.0))}
    (continued, meta), (direct, direct_meta) = _train_twice(monkeypatch, tmp_path, blobs, shorter, longer, **changes)
    assert meta["metrics"]["continued_from"] is not None and direct_meta["metrics"]["continued_from"] is None
    first, second = continued.state_dict(), direct.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in second)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in meta["metrics"]["history"]]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in direct_meta["metrics"]["history"]]
    assert len(strip) == 2 and meta["metrics"]["test_accuracy"] == direct_meta["metrics"]["test_accuracy"]


def test_a_schedule_over_the_whole_budget_is_never_continued_and_says_why(monkeypatch, tmp_path, blobs):
    changes = {"method": "pgd_at", "method_params": (("eps", 0.1), ("steps", 2), ("eps_warmup", 0.5))}
    (_, meta), _ = _train_twice(monkeypatch, tmp_path, blobs, 1.0, 2.0, **changes)
    assert meta["metrics"]["continued_from"] is None
    assert meta["metrics"]["budget_dependence"].startswith("its eps warm-up lasts 0.5 of the whole training")
    assert train.RESUME_FILE not in meta["files"]  # never continued, so no loop state is kept


def test_a_run_that_can_be_continued_keeps_its_loop_state(monkeypatch, tmp_path, blobs):
    monkeypatch.setenv("ROBINTERP_CACHE", str(tmp_path))
    _, meta = train.trained_model(spec(epochs=1.0), blobs, blobs)
    assert not meta["metrics"]["budget_dependence"] and train.RESUME_FILE in meta["files"]


def test_a_method_that_does_not_state_its_budget_dependence_trains_from_scratch(monkeypatch):
    import dataclasses

    from robinterp import methods

    standard = get_method("standard")
    monkeypatch.setattr(
        methods, "_discover", lambda names: {"standard": dataclasses.replace(standard, budget_dependence=None)}
    )
    assert "does not state whether its steps depend" in train.budget_dependence(spec())
