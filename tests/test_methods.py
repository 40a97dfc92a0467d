"""Training methods as units: the registry, their parameters, chapters listing them as data,
a method added from outside the package, and the dry-run check of every shipped config."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from robinterp import chapters, runner
from robinterp.config import ConfigError, field_docs
from robinterp.methods import ENVIRONMENT, MethodEntry, get_method, method_table, registry
from robinterp.profiles import PROFILES
from tests.conftest import REPO, user_module

# A whole training method written by a user, outside the package: ~30 lines with docstrings.
TOY_METHOD = textwrap.dedent('''
    """A toy training method: cross-entropy on inputs with Gaussian noise added."""

    import dataclasses

    import torch
    import torch.nn.functional as F

    from robinterp.config import Config, param
    from robinterp.methods import Method


    @dataclasses.dataclass(frozen=True)
    class GaussianNoiseParams(Config):
        sigma: float = param(0.1, low=0)
        """Standard deviation of the noise added to every pixel (ours)."""


    def loss(model, x, y, params, *, progress):
        """Cross-entropy on x + N(0, sigma^2), clipped to [0, 1]."""
        noisy = (x + params.sigma * torch.randn_like(x)).clamp(0, 1)
        logits = model(noisy)
        return F.cross_entropy(logits, y), logits


    METHOD = Method("gaussian_noise", GaussianNoiseParams, loss, "cross-entropy on noisy inputs")
''')


@pytest.fixture
def toy_method(tmp_path, monkeypatch):
    """The toy module on sys.path (and PYTHONPATH, for kernels) and named for the registry."""
    return user_module(tmp_path / "user_methods", monkeypatch, "toy_noise_method", TOY_METHOD, ENVIRONMENT)


def test_the_registry_is_built_from_the_modules():
    names = set(registry())
    assert {"standard", "fgsm_at", "pgd_at", "sgt", "sga", "asgt", "nsloss", "jacobian_reg"} <= names
    for name, method in registry().items():
        (module,) = method.modules
        assert module.startswith("robinterp.methods.") and sys.modules[module].__file__.endswith(".py")
        assert method.name == name and method.summary


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_method_has_the_shared_signature_and_documented_parameters(name):
    method = get_method(name)
    names = list(inspect.signature(method.loss).parameters)
    assert names[:5] == ["model", "x", "y", "params", "progress"]
    assert inspect.signature(method.loss).parameters["progress"].kind is inspect.Parameter.KEYWORD_ONLY
    # only a method that prepares a context takes more, and exactly what it prepares
    assert names[5:] == ([] if method.prepare is None else names[5:]) and (method.prepare or not names[5:])
    assert dataclasses.is_dataclass(method.params) and method.params.__dataclass_params__.frozen
    docs = field_docs(method.params)
    assert [f.name for f in dataclasses.fields(method.params) if not docs.get(f.name)] == []


def test_an_unknown_method_is_a_one_line_error_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown training method 'nslos' \(did you mean 'nsloss'\?\)"):
        get_method("nslos")


def test_method_entries_round_trip_through_their_yaml_form_and_normalise_spelling():
    table = method_table(
        {
            "A": {"method": "pgd_at", "eps": 1, "steps": 2},
            "B": {"method": "pgd_at", "steps": 2, "eps": 1.0, "norm": "linf", "epochs": 3},
        }
    )
    assert table[0].params == table[1].params and table[1].epochs == 3.0
    assert MethodEntry.to_config(table) == {
        "A": {"method": "pgd_at", "eps": 1.0, "steps": 2},
        "B": {"method": "pgd_at", "eps": 1.0, "steps": 2, "epochs": 3.0},
    }
    assert MethodEntry.from_config("methods", MethodEntry.to_config(table)) == table
    assert table[0].describe() == "eps=1.0, steps=2"
    assert table[0].with_params(eps=0.5).values["eps"] == 0.5


def test_a_method_named_in_the_environment_joins_the_registry_and_trains(toy_method, blobs):
    from robinterp import models, train

    method = get_method("gaussian_noise")
    assert method.modules == ("toy_noise_method",)
    assert train.model_code(train.TrainSpec(method="gaussian_noise")) == ("robinterp.train", "toy_noise_method")
    torch.manual_seed(0)
    model = models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)
    history = train.fit(
        model,
        blobs,
        train.TrainSpec(
            model="small_cnn",
            width=4,
            method="gaussian_noise",
            method_params=(("sigma", 0.05),),
            epochs=2.0,
            batch_size=50,
            lr=3e-3,
        ),
    )
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]


def test_a_method_reusing_another_modules_loss_is_registered_and_keyed_by_both(tmp_path, monkeypatch):
    (tmp_path / "reusing_method.py").write_text(
        textwrap.dedent('''
        import dataclasses

        from robinterp.config import Config
        from robinterp.methods import Method
        from robinterp.methods.standard import loss


        @dataclasses.dataclass(frozen=True)
        class Params(Config):
            """No parameters."""


        METHOD = Method("plain_again", Params, loss, "standard training under another name")
    ''')
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENVIRONMENT, "reusing_method")
    assert get_method("plain_again").modules == ("reusing_method", "robinterp.methods.standard")
    assert get_method("standard") is registry()["standard"], "the imported loss is no second method"


def test_a_missing_method_module_in_the_environment_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT, "no_such_module_here")
    with pytest.raises(ConfigError, match=f"module 'no_such_module_here' does not import \\({ENVIRONMENT} names it"):
        registry()


def _shipped_configs():
    """(kind, source, chapter): every profile for every chapter, every config file for the chapters
    it has a section for (a file is refused for the others)."""
    import yaml

    found = [("profile", p, chapter) for p in PROFILES for chapter in chapters.CHAPTERS]
    for path in sorted((REPO / "book" / "configs").glob("*.yml")):
        found += [("config", path, chapter) for chapter in yaml.safe_load(path.read_text())]
    return found


@pytest.mark.parametrize("kind,source,chapter", _shipped_configs(), ids=lambda v: getattr(v, "name", str(v)))
def test_every_shipped_config_builds_every_spec_attack_and_metric_of_its_run(chapter, kind, source):
    summary = runner.check(chapter, profile=source) if kind == "profile" else runner.check(chapter, config_file=source)
    assert summary.startswith(f"{chapter} under ") and ": ok;" in summary
    config, _ = (
        chapters.resolve_config(chapter, profile=source)
        if kind == "profile"
        else chapters.resolve_config(chapter, config_file=source)
    )
    plan = chapters.CHAPTERS[chapter].plan(config)
    labels = {key[-2] for key in plan.specs}  # keys end (label, seed)
    assert {e.label for e in config.methods} <= labels and len(plan.specs) >= len(config.seeds)


def test_the_check_command_runs_nothing_and_writes_nothing(tmp_path):
    from robinterp.paths import build_root, cache_root

    result = subprocess.run(
        [sys.executable, "-m", "robinterp", "run", "neuron_sensitivity", "--profile", "paper", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "neuron_sensitivity under paper: ok; 20 training specs" in result.stdout  # 4 methods x 5 seeds
    assert not cache_root().exists() and not build_root().exists()
    bad = tmp_path / "bad.yml"
    bad.write_text("robust_models:\n  methods:\n    X: {method: pgd_at, eps: 0}\n")
    result = subprocess.run(
        [sys.executable, "-m", "robinterp", "run", "robust_models", "--config", str(bad), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "PGDATParams.eps = 0.0 is out of range" in result.stderr


@pytest.mark.slow
def test_a_toy_method_listed_in_a_config_appears_in_the_chapters_tables_with_no_other_edit(
    toy_method, tmp_path, shared_smoke_cache
):
    """The methods-as-units promise: a new module and one config entry, nothing else."""
    import yaml

    from robinterp.paths import build_root
    from robinterp.profiles import profile_overrides

    settings = profile_overrides("smoke", "robust_models")
    settings["methods"] = {**settings["methods"], "noise": {"method": "gaussian_noise", "sigma": 0.2}}
    config = tmp_path / "toy.yml"
    config.write_text(yaml.safe_dump({"robust_models": settings}))
    result = subprocess.run(
        [sys.executable, "-m", "robinterp", "run", "robust_models", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = build_root() / "results" / "config-toy" / "robust_models"
    training = pd.read_csv(results / "training.csv")
    assert set(training.method) == {"standard", "PGD-AT", "noise"}
    assert set(training[training.method == "noise"].trained_by) == {"gaussian_noise"}
    for table in ("robust_accuracy", "alignment"):  # what the verdicts and figures read
        frame = pd.read_csv(results / f"{table}.csv")
        assert set(frame.method) == {"standard", "PGD-AT", "noise"}, table
        assert len(frame[frame.method == "noise"]) == len(frame[frame.method == "standard"])


class NormDropNet(torch.nn.Module):
    """A linear classifier on 2x2 images with BatchNorm and dropout: what example_mode changes."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.5)
        )
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


@pytest.mark.parametrize("name", ["fgsm_at", "pgd_at", "sgt", "sga", "asgt", "scaat"])
def test_examples_are_made_in_eval_mode_unless_the_method_asks_for_training_mode(name):
    """In eval mode the attack's and saliency's forward passes leave BatchNorm's running statistics
    alone, so only the loss's own passes move them; in training mode every one does."""
    from robinterp import models
    from robinterp.methods._modes import examples_model

    x, y = torch.rand(16, 1, 2, 2), torch.arange(16) % 3
    statistics = {}
    for mode in ("eval", "train"):
        torch.manual_seed(0)
        model = NormDropNet().train()
        torch.manual_seed(1)
        get_method(name)(model, x, y, progress=1.0, example_mode=mode)
        statistics[mode] = model.body[2].num_batches_tracked.item()
        assert model.training and all(m.training for m in model.modules())  # modes as they were
    assert statistics["train"] > statistics["eval"], statistics
    held = examples_model(NormDropNet().train(), "train")
    with models.eval_mode(held):
        assert held.model.training and held.model.body[3].training  # an attack's eval_mode cannot switch it
    with pytest.raises(ConfigError, match="example_mode"):
        get_method(name)(NormDropNet(), x, y, progress=1.0, example_mode="test")
