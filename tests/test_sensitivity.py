"""NsLoss and Jacobian regularization against the equations as written."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robinterp import RobinterpError
from robinterp.methods import get_method, jacobian_reg
from robinterp.methods import nsloss as sensitivity


class TinyNet(nn.Module):
    """Two hidden ReLU layers and logits: few enough neurons for a per-neuron loop."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1, self.act1 = nn.Linear(6, 5), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(5, 4), nn.ReLU()
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(self.act2(self.fc2(self.act1(self.fc1(self.flatten(x))))))


def per_neuron_nsloss(model, x, perturbed, eps_ns):
    """Equations 4 to 7 of Moshe et al., one neuron at a time, as printed."""

    def layers(inp):
        h1 = model.act1(model.fc1(model.flatten(inp)))
        h2 = model.act2(model.fc2(h1))
        return [h1, h2, model.out(h2)]

    with torch.no_grad():
        clean = layers(x)
        noisy = [layers(p) for p in perturbed]
    n, batch = len(perturbed), x.shape[0]
    total = 0.0
    for i, layer in enumerate(clean):
        size = layer.shape[1]
        for j in range(size):
            ma = sum(abs(float(layer[m, j])) for m in range(batch)) / batch  # (4)
            md = sum(abs(float(layer[m, j]) - float(noisy[k][i][m, j])) for k in range(n) for m in range(batch)) / (
                n * batch
            )  # (5)
            if ma > 0:
                total += md / (eps_ns * size * ma) * ma  # (6), (7)
            else:  # NS is undefined at MA = 0; its product with MA has the limit below
                total += md / (eps_ns * size)
    return total


def test_nsloss_equals_the_per_neuron_equations():
    torch.manual_seed(0)
    model, x = TinyNet(), torch.rand(7, 1, 2, 3)
    eps_ns, n = 0.3, 4
    fast, logits = sensitivity.neuron_sensitivity_loss(
        model, x, eps_ns=eps_ns, n=n, generator=torch.Generator().manual_seed(5)
    )
    perturbed = sensitivity.sphere_samples(x, eps_ns, n, torch.Generator().manual_seed(5))
    slow = per_neuron_nsloss(model, x, list(perturbed), eps_ns)
    assert float(fast.detach()) == pytest.approx(slow, rel=1e-5)
    assert torch.allclose(logits, model(x))


def test_each_neuron_set_counts_what_it_names():
    torch.manual_seed(0)
    model, x = TinyNet(), torch.rand(4, 1, 2, 3)
    values = {
        name: float(
            sensitivity.neuron_sensitivity_loss(
                model, x, eps_ns=0.2, n=3, neurons=name, generator=torch.Generator().manual_seed(1)
            )[0].detach()
        )
        for name in sensitivity.NEURON_SETS
    }
    assert values["activations_and_logits"] == pytest.approx(values["activations"] + values["logits"])
    with pytest.raises(RobinterpError, match="neurons must be one of"):
        sensitivity.neuron_sensitivity_loss(model, x, neurons="all")


def test_sphere_samples_lie_on_the_sphere_and_are_not_clipped():
    x = torch.rand(6, 1, 28, 28)
    points = sensitivity.sphere_samples(x, 0.7, 5, torch.Generator().manual_seed(0))
    assert points.shape == (5, 6, 1, 28, 28)
    norms = (points - x).flatten(2).norm(dim=2)
    assert torch.allclose(norms, torch.full_like(norms, 0.7), atol=1e-5)


def test_the_jacobian_estimate_converges_to_the_exact_frobenius_norm():
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(8, 5))  # J = W for every input
    exact = float(linear[1].weight.detach().pow(2).sum())
    x = torch.rand(4000, 1, 2, 4)  # the batch average is over 4000 independent projections
    estimate, _ = jacobian_reg.jacobian_frobenius_sq(
        linear, x, n_proj=1, create_graph=False, generator=torch.Generator().manual_seed(0)
    )
    assert float(estimate.detach()) == pytest.approx(exact, rel=0.05)
    few, _ = jacobian_reg.jacobian_frobenius_sq(
        linear, x[:2], n_proj=1, create_graph=False, generator=torch.Generator().manual_seed(0)
    )
    assert float(few.detach()) != pytest.approx(exact, rel=1e-3), "two projections cannot be exact"


@pytest.mark.parametrize(
    "method,params", [("nsloss", {"lam": 1.0, "eps_ns": 0.5, "n": 2}), ("jacobian_reg", {"lam": 0.1, "n_proj": 1})]
)
def test_the_regularized_losses_reach_every_weight(method, params):
    torch.manual_seed(0)
    model, x, y = TinyNet(), torch.rand(8, 1, 2, 3), torch.randint(0, 3, (8,))
    plain, _ = get_method("standard")(model, x, y, progress=0.0)
    loss, logits = get_method(method)(model, x, y, progress=0.0, **params)
    assert logits.shape == (8, 3) and loss.item() > plain.item()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_lambda_zero_is_log2_classes_over_the_mean_nsloss():
    torch.manual_seed(0)
    model = TinyNet()
    batches = [torch.rand(5, 1, 2, 3) for _ in range(3)]
    ns0, lam0 = sensitivity.lambda_zero(model, batches, num_classes=3, eps_ns=0.4, n=2, seed=9)
    generator = torch.Generator().manual_seed(9)
    expected = (
        sum(
            float(sensitivity.neuron_sensitivity_loss(model, b, eps_ns=0.4, n=2, generator=generator)[0].detach())
            for b in batches
        )
        / 3
    )
    assert ns0 == pytest.approx(expected) and lam0 == pytest.approx(math.log2(3) / expected)
    assert model.training, "the model's mode was not restored"


def test_bad_nsloss_settings_are_clear_errors():
    model, x = TinyNet(), torch.rand(2, 1, 2, 3)
    with pytest.raises(RobinterpError, match="eps_ns must be a finite number > 0"):
        sensitivity.neuron_sensitivity_loss(model, x, eps_ns=0.0)
    with pytest.raises(RobinterpError, match="n \\(perturbations per sample\\)"):
        sensitivity.neuron_sensitivity_loss(model, x, n=0)
    with pytest.raises(RobinterpError, match="has no activation modules"):
        sensitivity.neuron_sensitivity_loss(nn.Sequential(nn.Flatten(), nn.Linear(6, 3)), x)


def test_the_lambda_search_keeps_the_largest_lambda_whose_training_stays_below_a_random_guess(blobs):
    import copy

    from robinterp import models

    torch.manual_seed(0)
    standard = models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)
    optimizer = torch.optim.Adam(standard.parameters(), lr=1e-2)
    for xb, yb in blobs.batches(20, shuffle=True, seed=0):  # a "standard model" first
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(standard(xb), yb).backward()
        optimizer.step()
    chosen, trace = sensitivity.select_lambda(
        lambda: copy.deepcopy(standard),
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-2),
        lambda: blobs.batches(20, shuffle=True, seed=1),
        lam0=30.0,
        num_classes=10,
        eps_ns=0.5,
        n=2,
        iterations=3,
        spread=100.0,
        max_steps=2,
        window=3,
    )
    assert trace["lambda"].iloc[0] == 30.0 and trace.bracketed.all()
    bracket = trace[trace.phase == "bracket"]
    assert bracket.too_high.any() and not bracket.too_high.all()  # a bracket before any bisection
    assert (trace.phase == "bisect").sum() == 3 and list(trace.phase) == sorted(
        trace.phase, reverse=True
    )  # bracket first
    fine = trace[~trace.too_high]
    assert chosen == (fine["lambda"].max() if len(fine) else None)
    # after a too-high candidate the next is smaller, after a fine one larger
    for (_, a), (_, b) in zip(trace.iterrows(), trace.iloc[1:].iterrows()):
        assert (b["lambda"] < a["lambda"]) == bool(a["too_high"])
    # the bisection stays strictly inside the bracket
    low, high = bracket[~bracket.too_high]["lambda"].max(), bracket[bracket.too_high]["lambda"].min()
    assert trace[trace.phase == "bisect"]["lambda"].between(low, high, inclusive="neither").all()
    assert trace.threshold.iloc[0] == pytest.approx(0.95 * math.log(10))
    # a threshold no model reaches (log2 C read in nats): the search grows to its cap and stops,
    # and says it found no bracket
    chosen, never = sensitivity.select_lambda(
        lambda: copy.deepcopy(standard),
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-3),
        lambda: blobs.batches(50, shuffle=True, seed=1),
        lam0=1e-3,
        num_classes=10,
        eps_ns=0.5,
        n=2,
        iterations=3,
        spread=10.0,
        max_steps=2,
        window=2,
        random_guess_ce="log2",
    )
    assert list(never["lambda"]) == pytest.approx([1e-3, 1e-2, 1e-1]) and not never.bracketed.any()
    assert chosen == pytest.approx(1e-1) and set(never.phase) == {"bracket"}
    # the same search with the accuracy test (ours): a lambda that costs the training accuracy
    # more than the drop allowed is too high although the cross-entropy test never fires
    chosen, dropped = sensitivity.select_lambda(
        lambda: copy.deepcopy(standard),
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-2),
        lambda: blobs.batches(20, shuffle=True, seed=1),
        lam0=1e-3,
        num_classes=10,
        eps_ns=0.5,
        n=2,
        iterations=1,
        spread=1e5,
        max_steps=2,
        window=2,
        random_guess_ce="log2",
        accuracy_drop=10.0,
    )
    assert dropped.too_high.any() and (dropped[dropped.too_high].accuracy_drop > 10).all()
    assert (dropped[dropped.too_high].training_ce < dropped.threshold.iloc[0]).all()  # the CE test did not fire
    with pytest.raises(RobinterpError, match="random_guess_ce must be one of"):
        sensitivity.select_lambda(lambda: standard, lambda m: None, lambda: [], 1.0, 10, random_guess_ce="log10")


class NormNet(nn.Module):
    """TinyNet with BatchNorm after the first layer."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1, self.bn, self.act1 = nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU()
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        return self.out(self.act1(self.bn(self.fc1(self.flatten(x)))))


def test_separate_passes_leave_batchnorms_running_statistics_to_the_clean_batch():
    torch.manual_seed(0)
    model, x = NormNet().train(), torch.rand(8, 1, 2, 3)
    clean_only = NormNet().train()
    clean_only.load_state_dict(model.state_dict())
    clean_only(x)  # what the running statistics are after one clean training pass
    joint = NormNet().train()
    joint.load_state_dict(model.state_dict())
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731 - the same copies for every call
    sensitivity.neuron_sensitivity_loss(joint, x, eps_ns=0.5, n=5, passes="joint", generator=gen())
    _, logits = sensitivity.neuron_sensitivity_loss(model, x, eps_ns=0.5, n=5, passes="auto", generator=gen())
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(model.bn, name), getattr(clean_only.bn, name)), name
    assert not torch.allclose(joint.bn.running_mean, clean_only.bn.running_mean)  # 5 parts perturbed
    assert model.bn.momentum == 0.1  # restored
    # the clean logits are the clean batch's alone, normalised by its own statistics
    reference = NormNet().train()
    reference.load_state_dict(joint.state_dict())
    assert torch.allclose(logits, reference(x), atol=1e-6)


def test_joint_and_separate_passes_agree_without_batchnorm_and_in_eval_mode():
    torch.manual_seed(1)
    x = torch.rand(6, 1, 2, 3)
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    for model in (TinyNet().train(), NormNet().eval()):
        joint, joint_logits = sensitivity.neuron_sensitivity_loss(model, x, n=3, passes="joint", generator=gen())
        apart, apart_logits = sensitivity.neuron_sensitivity_loss(model, x, n=3, passes="separate", generator=gen())
        assert float(joint.detach()) == pytest.approx(float(apart.detach()), rel=1e-5)
        assert torch.allclose(joint_logits, apart_logits, atol=1e-6)
    with pytest.raises(RobinterpError, match="passes must be one of"):
        sensitivity.neuron_sensitivity_loss(TinyNet(), x, passes="both")


def test_nsloss_zero_averages_training_and_validation_batches_as_the_paper_says():
    from robinterp import data
    from robinterp.experiments import neuron_sensitivity as chapter

    train = data.Split(torch.zeros(100, 1, 2, 3), torch.zeros(100, dtype=torch.long))
    validation = data.Split(torch.ones(100, 1, 2, 3), torch.zeros(100, dtype=torch.long))
    cfg = chapter.NeuronSensitivityConfig(lambda_batches=5, batch_size=10)
    batches = chapter.lambda_zero_batches(cfg, train, validation)
    assert [float(b.mean()) for b in batches] == [0.0, 0.0, 0.0, 1.0, 1.0]  # 3 from training, 2 from validation
    only_train = chapter.lambda_zero_batches(
        chapter.NeuronSensitivityConfig(lambda_batches=5, batch_size=10, lambda_batches_from="train"), train, validation
    )
    assert len(only_train) == 5 and all(float(b.mean()) == 0.0 for b in only_train)


def test_the_accuracy_course_shows_a_seed_that_collapses_beside_the_mean():
    import pandas as pd

    from robinterp.reports import neuron_sensitivity as report

    rows = [
        {"epoch": epoch, "seed": seed, "metric": "test_accuracy", "image": image, "score": right}
        for epoch, seed, rights in [
            (0, 0, [1, 1, 1, 0]),
            (0, 1, [1, 1, 1, 1]),
            (2, 0, [1, 1, 0, 0]),
            (2, 1, [0, 0, 0, 0]),
        ]
        for image, right in enumerate(rights)
    ]
    noise = [{"epoch": 2, "seed": 1, "metric": "sparseness", "image": 0, "score": 0.9}]
    course = report.accuracy_course(pd.DataFrame(rows + noise))
    assert course == {"first": 87.5, "last": 25.0, "last_lowest": 0.0, "last_highest": 50.0, "last_setting": 2.0}
