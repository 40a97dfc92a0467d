"""Chapter "Neuron sensitivity, Jacobian regularization and adversarial training" (Moshe et al.).

A standard model is trained first; NsLoss, Jacobian regularization and PGD
adversarial training each continue training it at a low learning rate (the
paper's Tables 1 and 2). NsLoss's lambda comes from the paper's protocol
(section 4.4) unless the config fixes it. The models are compared by clean and
robust accuracy (PGD, AutoAttack) and by seven Quantus metrics of their
Integrated Gradients attributions, with a random-attribution control; a lambda
sweep (Table 5) and the metrics over fine-tuning epochs (Figure 4) follow.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from typing import Any

import pandas as pd
import torch

from robinterp import attacks, cache, data, explain, explanation_quality, sensitivity, train
from robinterp.config import ConfigError, param
from robinterp.experiments import common

CHAPTER = "neuron_sensitivity"
SWEEP_METRICS = ("max_sensitivity", "faithfulness_estimate", "sparseness")  # the paper's Table 5


@dataclasses.dataclass(frozen=True)
class NeuronSensitivityConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them."""
    batch_size: int = param(128, low=1)
    """Minibatch size of every training run."""
    optimizer: str = param("adam", choices=("sgd", "adam", "adadelta"))
    """Optimiser of every training run (the paper: an SGD-based one)."""
    pretrain_epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of the standard model every method starts from."""
    pretrain_lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate of the standard model."""
    finetune_epochs: float = param(1.0, low=0, low_open=True)
    """Epochs each method continues training the standard model (the paper: 40 to 120)."""
    finetune_lr: float = param(1e-4, low=0, low_open=True)
    """The low learning rate of the continued training (the paper: 1e-4 to 5e-4)."""
    jacobreg_finetune_epochs: float | None = param(None, low=0, low_open=True)
    """JacobReg's own epochs of continued training; None: ``finetune_epochs`` (the paper's
    Table 2: 70 where NsLoss has 120)."""
    pgd_finetune_epochs: float | None = param(None, low=0, low_open=True)
    """PGD-AT's own epochs of continued training; None: ``finetune_epochs`` (the paper's
    Table 1: 40 where NsLoss has 80)."""
    pgd_finetune_lr: float | None = param(None, low=0, low_open=True)
    """PGD-AT's own learning rate; None: ``finetune_lr`` (the paper's Table 1: 5e-4)."""
    eps_ns: float = param(1.5, low=0, low_open=True)
    """L2 radius of NsLoss's perturbations; the paper's 20 on 224x224x3 images, scaled by
    sqrt(784 / 150528) to MNIST's 784 pixels (ours)."""
    n_perturbations: int = param(5, low=1)
    """Perturbations per sample in NsLoss (the paper: N = 5)."""
    neurons: str = param("activations_and_logits", choices=sensitivity.NEURON_SETS)
    """Which activations count as neurons: every activation layer and the logits, as the text says."""
    nsloss_lambda: float | None = param(None, low=0, low_open=True)
    """NsLoss weight; None runs the paper's lambda protocol and uses the lambda it selects."""
    lambda_batches: int = param(10, low=1)
    """Training batches over which NsLoss_0 is averaged (the paper: 10 random batches)."""
    lambda_search_iterations: int = param(3, low=1)
    """Candidates of the bisection around lambda_0, each trained up to one epoch."""
    lambda_spread: float = param(10.0, low=1, low_open=True)
    """The search stays in [lambda_0 / spread, lambda_0 * spread] ("the same order of magnitude")."""
    random_guess_ce: str = param("ln", choices=tuple(sensitivity.RANDOM_GUESS_CE))
    """A random guess's cross-entropy in nats, ln C (ours), or log2 C read literally."""
    jacobian_lambda: float = param(0.01, low=0, low_open=True)
    """Weight of 1/2 ||J||_F^2 (Hoffman et al.'s MNIST value)."""
    jacobian_projections: int = param(1, low=1)
    """Random projections per batch of the Jacobian estimate (Hoffman et al.: 1)."""
    pgd_train_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of PGD adversarial training (ours for MNIST; the paper: 4/255 and 8/255)."""
    pgd_train_steps: int = param(7, low=1)
    """PGD steps in training (the paper: 7, random start)."""
    eval_size: int = param(250, low=1, high=10000)
    """Test images attacked with PGD."""
    epsilons: tuple[float, ...] = param((0.0, 0.05, 0.1, 0.2), low=0, high=1)
    """Linf radii of the PGD robust-accuracy curves."""
    pgd_steps: int = param(20, low=1)
    """PGD steps at evaluation."""
    autoattack_size: int = param(50, low=1, high=10000)
    """Test images attacked with AutoAttack."""
    autoattack_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of the AutoAttack evaluation."""
    autoattack_parts: tuple[str, ...] = param(("apgd-ce",), choices=attacks.AUTOATTACK_PARTS)
    """AutoAttack's attacks to run (its standard version: apgd-ce, apgd-t, fab-t, square)."""
    quantus_size: int = param(50, low=1, high=10000)
    """Test images scored by the Quantus metrics."""
    quantus_samples: int = param(5, low=1)
    """Perturbation samples (runs) per image in the sensitivity and faithfulness metrics."""
    quantus_noise: float | None = param(0.05, low=0, low_open=True)
    """Noise size of the three sensitivity metrics; None: Quantus's (uniform 0.2, Gaussian sd
    0.1), made for ImageNet, which IG on MNIST cannot tell from random attributions."""
    metric_implementation: str = param("robinterp", choices=explanation_quality.IMPLEMENTATIONS)
    """Who computes the metrics: robinterp's batched version of Quantus's definitions (ours;
    tested equal to Quantus 0.6, about 2x faster for all seven) or Quantus's own classes."""
    ig_steps: int = param(20, low=1)
    """Integrated Gradients steps (black baseline)."""
    eval_batch_size: int = param(500, low=1)
    """Images per attack batch, explainer call and Integrated Gradients pass: a memory bound,
    to lower for large networks on 224-pixel images."""
    sweep_factors: tuple[float, ...] = param((0.3, 1.0, 3.0), low=0, low_open=True)
    """Lambda sweep: multiples of the selected lambda (the paper's Table 5), seed of the first."""
    curve_epochs: int = param(3, low=1)
    """Fine-tuning epochs after each of which the NsLoss model is scored (Figure 4)."""
    attribution_images: int = param(6, low=1, high=32)
    """Test images in the attribution-map grids."""

    def validate(self) -> None:
        super().validate()
        if not self.epsilons or not self.sweep_factors or not self.autoattack_parts:
            raise ConfigError("epsilons, sweep_factors and autoattack_parts must each list one value or more")


def spec(cfg: NeuronSensitivityConfig, method: str, params: tuple[tuple[str, Any], ...], seed: int,
         epochs: float, lr: float) -> train.TrainSpec:
    return train.TrainSpec(dataset=cfg.dataset, train_size=cfg.train_size, model=cfg.model,
                           width=cfg.width, method=method, method_params=params, epochs=epochs,
                           batch_size=cfg.batch_size, optimizer=cfg.optimizer, lr=lr, seed=seed)


def methods(cfg: NeuronSensitivityConfig, lam: float) -> dict[str, tuple[str, tuple[tuple[str, Any], ...]]]:
    """Label -> (registered method, parameters) of the continued training, as the paper's tables."""
    return {
        "NsLoss": ("nsloss", (("lam", lam), ("eps_ns", cfg.eps_ns), ("n", cfg.n_perturbations),
                              ("neurons", cfg.neurons))),
        "JacobReg": ("jacobian_reg", (("lam", cfg.jacobian_lambda), ("n_proj", cfg.jacobian_projections))),
        "PGD-AT": ("pgd_at", (("eps", cfg.pgd_train_eps), ("steps", cfg.pgd_train_steps))),
    }


def finetune_schedule(cfg: NeuronSensitivityConfig, label: str) -> tuple[float, float]:
    """(epochs, learning rate) of a method's continued training: the shared setting unless
    the config gives the method its own, as the paper's Tables 1 and 2 do."""
    epochs = {"JacobReg": cfg.jacobreg_finetune_epochs, "PGD-AT": cfg.pgd_finetune_epochs}.get(label)
    lr = cfg.pgd_finetune_lr if label == "PGD-AT" else None
    return (cfg.finetune_epochs if epochs is None else epochs, cfg.finetune_lr if lr is None else lr)


@dataclasses.dataclass
class Trained:
    """The chapter's models and how they came about."""

    models: dict[tuple[str, int], torch.nn.Module]
    records: pd.DataFrame
    lambda_trace: pd.DataFrame
    lam: float
    standard_keys: dict[int, str]


def lambda_protocol(cfg: NeuronSensitivityConfig, standard: torch.nn.Module, standard_key: str,
                    train_split: data.Split) -> pd.DataFrame:
    """Section 4.4 on the first seed's standard model: NsLoss_0, lambda_0 and the search trace."""
    info = data.get_spec(cfg.dataset)

    def compute() -> pd.DataFrame:
        torch.manual_seed(0)  # NsLoss draws its perturbations from the global generator
        split = train_split.subset(cfg.train_size, cfg.seeds[0])
        batches = [xb for xb, _ in itertools.islice(split.batches(cfg.batch_size, shuffle=True, seed=99),
                                                    cfg.lambda_batches)]
        ns0, lam0 = sensitivity.lambda_zero(standard, batches, info.num_classes, eps_ns=cfg.eps_ns,
                                            n=cfg.n_perturbations, neurons=cfg.neurons)
        candidate = spec(cfg, "nsloss", (), cfg.seeds[0], 1.0, cfg.finetune_lr)
        chosen, trace = sensitivity.select_lambda(
            lambda: copy.deepcopy(standard), lambda m: train.make_optimizer(candidate, m),
            lambda: split.batches(cfg.batch_size, shuffle=True, seed=7), lam0, info.num_classes,
            eps_ns=cfg.eps_ns, n=cfg.n_perturbations, neurons=cfg.neurons,
            iterations=cfg.lambda_search_iterations, spread=cfg.lambda_spread,
            random_guess_ce=cfg.random_guess_ce)
        # if every candidate was too high, the lower end of the search range
        return trace.assign(nsloss0=ns0, lambda0=lam0,
                            selected=chosen if chosen is not None else lam0 / cfg.lambda_spread)

    fields = ("eps_ns", "n_perturbations", "neurons", "lambda_batches", "lambda_search_iterations",
              "lambda_spread", "random_guess_ce", "finetune_lr", "optimizer", "batch_size", "train_size")
    return cache.cached_table({"chapter": CHAPTER, "table": "lambda_protocol", "init": standard_key,
                               "seed": cfg.seeds[0], **{f: getattr(cfg, f) for f in fields}},
                              compute, code=(__name__,))


def train_all(cfg: NeuronSensitivityConfig) -> Trained:
    """Standard models, the lambda protocol, then every method continued from each standard model."""
    train_split, test_split = data.load(cfg.dataset, "train"), data.load(cfg.dataset, "test")
    models, rows, keys = {}, [], {}
    for seed in cfg.seeds:
        model, meta = common.trained_model(spec(cfg, "standard", (), seed, cfg.pretrain_epochs, cfg.pretrain_lr),
                                           train_split, test_split)
        models["standard", seed], keys[seed] = model, meta["key"]
        rows.append(common.record("standard", seed, model, meta))
    trace = lambda_protocol(cfg, models["standard", cfg.seeds[0]], keys[cfg.seeds[0]], train_split)
    lam = cfg.nsloss_lambda if cfg.nsloss_lambda is not None else float(trace["selected"].iloc[0])
    for seed in cfg.seeds:
        for label, (method, params) in methods(cfg, lam).items():
            finetune = spec(cfg, method, params, seed, *finetune_schedule(cfg, label))
            model, meta = common.continued(keys[seed], models["standard", seed], finetune, train_split, test_split)
            models[label, seed] = model
            rows.append(common.record(label, seed, model, meta))
    return Trained(models, pd.DataFrame(rows), trace, lam, keys)


def robust_curves(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    split = data.load(cfg.dataset, "test").subset(cfg.eval_size, seed=12345)
    return common.robust_curves(CHAPTER, cfg, trained.models, split, {"pgd": {"steps": cfg.pgd_steps}},
                                cfg.epsilons, batch_size=cfg.eval_batch_size)


def autoattack_table(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Robust accuracy under AutoAttack at ``autoattack_eps`` per method and seed."""
    def compute() -> pd.DataFrame:
        split = data.load(cfg.dataset, "test").subset(cfg.autoattack_size, seed=4242)
        tables = [attacks.robust_accuracy(model, split.images, split.labels, seed=seed,
                                          attacks={"autoattack": {"parts": cfg.autoattack_parts}},
                                          epsilons=(cfg.autoattack_eps,), batch_size=cfg.eval_batch_size,
                                          desc=f"AutoAttack on {label} seed {seed}")
                  .assign(method=label, seed=seed) for (label, seed), model in trained.models.items()]
        return pd.concat(tables, ignore_index=True)

    return cache.cached_table({"chapter": CHAPTER, "table": "autoattack", "config": dataclasses.asdict(cfg)},
                              compute, code=(__name__,))


def quantus_split(cfg: NeuronSensitivityConfig) -> data.Split:
    return data.load(cfg.dataset, "test").subset(cfg.quantus_size, seed=31337)


def explainer_options(cfg: NeuronSensitivityConfig, explainer: str) -> dict[str, Any]:
    """Integrated Gradients' steps and pass size from the config; other explainers' defaults."""
    if explainer == "integrated_gradients":
        return {"n_steps": cfg.ig_steps, "internal_batch_size": cfg.eval_batch_size}
    return {}


def _scores(cfg: NeuronSensitivityConfig, model: torch.nn.Module, seed: int, metrics: tuple[str, ...],
            explainer: str = "integrated_gradients") -> pd.DataFrame:
    split = quantus_split(cfg)
    options = explainer_options(cfg, explainer)
    torch.manual_seed(seed)  # the random control draws from the global generator
    return explanation_quality.scores(model, split.images, split.labels, metrics, explainer=explainer,
                                      explainer_options=options, samples=cfg.quantus_samples,
                                      noise=cfg.quantus_noise, seed=seed, images_per_call=cfg.eval_batch_size,
                                      implementation=cfg.metric_implementation)


def quality_scores(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Every Quantus metric per method and seed (IG), plus random attributions of the standard model."""
    def compute() -> pd.DataFrame:
        tables = [_scores(cfg, model, seed, tuple(explanation_quality.METRICS)).assign(method=label, seed=seed)
                  for (label, seed), model in trained.models.items()]
        tables += [_scores(cfg, trained.models["standard", seed], seed, tuple(explanation_quality.METRICS),
                           explainer="random").assign(method="random attribution", seed=seed)
                   for seed in cfg.seeds]
        return pd.concat(tables, ignore_index=True)

    return cache.cached_table({"chapter": CHAPTER, "table": "quality", "config": dataclasses.asdict(cfg)},
                              compute, code=(__name__,))


def lambda_sweep(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Table 5 analogue: accuracy and three metrics per multiple of the selected lambda (first seed)."""
    seed = cfg.seeds[0]
    train_split, test_split = data.load(cfg.dataset, "train"), data.load(cfg.dataset, "test")

    def compute() -> pd.DataFrame:
        rows = []
        for factor in cfg.sweep_factors:
            method, params = methods(cfg, factor * trained.lam)["NsLoss"]
            model, meta = common.continued(trained.standard_keys[seed], trained.models["standard", seed],
                                    spec(cfg, method, params, seed, cfg.finetune_epochs, cfg.finetune_lr),
                                    train_split, test_split)
            scores = _scores(cfg, model, seed, SWEEP_METRICS).groupby("metric")["score"].mean()
            rows.append({"factor": factor, "lambda": factor * trained.lam,
                         "test_accuracy": meta["metrics"]["test_accuracy"], **scores.to_dict()})
        return pd.DataFrame(rows)

    return cache.cached_table({"chapter": CHAPTER, "table": "lambda_sweep", "lambda": trained.lam,
                               "config": dataclasses.asdict(cfg)}, compute, code=(__name__,))


def epoch_curve(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Figure 4 analogue: the NsLoss model (first seed) scored after each fine-tuning epoch."""
    seed = cfg.seeds[0]
    train_split, test_split = data.load(cfg.dataset, "train"), data.load(cfg.dataset, "test")

    def compute() -> pd.DataFrame:
        method, params = methods(cfg, trained.lam)["NsLoss"]
        one_epoch = spec(cfg, method, params, seed, 1.0, cfg.finetune_lr)
        model, key = trained.models["standard", seed], trained.standard_keys[seed]
        rows = [{"epoch": 0, "test_accuracy": train.accuracy(model, test_split),
                 **_scores(cfg, model, seed, SWEEP_METRICS).groupby("metric")["score"].mean().to_dict()}]
        for epoch in range(1, cfg.curve_epochs + 1):
            model, meta = common.continued(key, model, one_epoch, train_split, test_split)
            key = meta["key"]
            rows.append({"epoch": epoch, "test_accuracy": meta["metrics"]["test_accuracy"],
                         **_scores(cfg, model, seed, SWEEP_METRICS).groupby("metric")["score"].mean().to_dict()})
        return pd.DataFrame(rows)

    return cache.cached_table({"chapter": CHAPTER, "table": "epoch_curve", "lambda": trained.lam,
                               "config": dataclasses.asdict(cfg)}, compute, code=(__name__,))


def attribution_maps(cfg: NeuronSensitivityConfig, trained: Trained, explainer: str
                     ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    split = data.load(cfg.dataset, "test").subset(cfg.attribution_images, seed=2024)
    options = explainer_options(cfg, explainer)
    labels = ["standard", *methods(cfg, trained.lam)]
    return split.images, split.labels, {
        label: explain.explain(trained.models[label, cfg.seeds[0]], split.images, split.labels,
                               explainer, **options) for label in labels}
