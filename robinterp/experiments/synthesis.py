"""Chapter "One protocol for every method": the book's benchmark and the reproduction scoreboard.

Every training method of the four papers is trained on the same data, network, budget and
seeds (the spec the other chapters use on MNIST, so that most models come from their caches),
then measured the same way: clean and robust accuracy (FGSM, PGD, MI-FGSM at two radii;
AutoAttack on a subset), the seven Quantus metrics of one explainer, the remove-top-d%
faithfulness gap, ROAD, ROAR and Etmann et al.'s alignment, each per test image, and the
training cost per epoch relative to standard training, timed in the same run. The same
models are trained again at a larger budget (one seed) to see which orderings survive.

Every per-image measure of a model is one cache entry keyed by the model's own cache key and
the settings the measure reads, so listing one more method computes only its rows.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Callable, Hashable

import pandas as pd
import torch

from robinterp import attacks, cache, data, explain, explanation_quality, metrics, models, roar, train
from robinterp.per_image import correct_under_attack
from robinterp.progress import progress
from robinterp.attacks import AttackSpec
from robinterp.config import ConfigError, param
from robinterp.experiments import common
from robinterp.methods import MethodEntry, method_table

CHAPTER = "synthesis"
ROBUSTNESS, INTERPRETABILITY, COST = "robustness", "interpretability", "cost"

DEFAULT_METHODS = method_table({
    "standard": {"method": "standard"},
    "FGSM-AT": {"method": "fgsm_at", "eps": 0.3},
    "PGD-AT (Linf)": {"method": "pgd_at", "eps": 0.3, "steps": 5, "eps_warmup": 0.25},
    "PGD-AT (L2)": {"method": "pgd_at", "norm": "l2", "eps": 2.0, "steps": 5, "eps_warmup": 0.25},
    "SGT": {"method": "sgt", "k": 0.5},
    "SGA": {"method": "sga", "k": 0.3},
    "ASGT": {"method": "asgt", "k": 0.3},
    "NsLoss": {"method": "nsloss", "lam": 22.0, "eps_ns": 1.5, "n": 5},
    "JacobReg": {"method": "jacobian_reg", "lam": 0.01, "n_proj": 1},
    "input-grad reg": {"method": "input_grad_reg", "lam": 0.5},
    "distillation": {"method": "distillation", "temperature": 100.0},
    "SCAAT": {"method": "scaat", "eps": 0.3, "steps": 5},
    "alignment": {"method": "attribution_alignment", "teacher_eps": 2.0, "teacher_steps": 5,
                  "teacher_eps_warmup": 0.25}})


@dataclasses.dataclass(frozen=True)
class SynthesisConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them (10000: the SGT and SCAAT chapters'
    MNIST spec, so that their models come from the cache)."""
    methods: tuple[MethodEntry, ...] = param(DEFAULT_METHODS)
    """Every method under one protocol: label -> {method, its parameters}. Each paper's setting
    on MNIST where another chapter chose one (FGSM-AT, PGD-AT Linf, SGT, SGA, ASGT and SCAAT come
    from their caches); ours for PGD-L2 (radius 2.0, the customary MNIST L2 radius), NsLoss (a
    fixed lambda of 22, the lambda_0 of the paper's protocol on the NsLoss chapter's standard
    model: the protocol's search tunes lambda for fine-tuning, not for training from scratch) and
    the alignment model's teacher (the listed PGD-L2 model). A method listed here appears in every
    table and figure of the chapter."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of every method (the shared budget)."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate of every method (Adam)."""
    eval_size: int = param(250, low=1, high=10000)
    """Test images attacked with FGSM, PGD and MI-FGSM (the SGT chapter's subset)."""
    epsilons: tuple[float, ...] = param((0.1, 0.3), low=0, low_open=True, high=1)
    """Linf radii of the attacks (MNIST: 0.1 small, 0.3 the customary one)."""
    pgd_steps: int = param(10, low=1)
    """PGD steps (step 2.5 eps / steps, random start)."""
    mifgsm_steps: int = param(10, low=1)
    """MI-FGSM steps (decay 1.0, step eps / steps)."""
    autoattack_size: int = param(50, low=1, high=10000)
    """Test images attacked with AutoAttack."""
    autoattack_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of AutoAttack."""
    autoattack_parts: tuple[str, ...] = param(("apgd-ce",), choices=attacks.AUTOATTACK_PARTS)
    """AutoAttack's attacks to run (its standard version: apgd-ce, apgd-t, fab-t, square)."""
    explainer: str = param("saliency", choices=tuple(explain.EXPLAINERS))
    """The attribution every interpretability measure scores: vanilla gradient (the SGT, Zeng and
    SCAAT papers' map; Moshe et al. use Integrated Gradients, a parameter here)."""
    quantus_size: int = param(50, low=1, high=10000)
    """Test images scored by the seven Quantus metrics."""
    quantus_samples: int = param(5, low=1)
    """Perturbation samples per image of the sensitivity and faithfulness metrics."""
    quantus_noise: float | None = param(0.05, low=0, low_open=True)
    """Noise size of the three sensitivity metrics (the NsLoss chapter's; None: Quantus's)."""
    faithfulness_size: int = param(250, low=1, high=10000)
    """Test images of the removal gap and of ROAD."""
    removal_fraction: float = param(0.5, low=0, low_open=True, high=1, high_open=True)
    """Share of pixels removed by the removal gap, ROAD and ROAR."""
    road_noise: float = param(0.01, low=0)
    """Standard deviation of ROAD's imputation noise (Rong et al. and Quantus: 0.01)."""
    roar_epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of each ROAR retraining (standard training of a fresh network)."""
    roar_target: str = param("predicted", choices=("predicted", "true"))
    """Class whose saliency ranks ROAR's pixels (the Zeng chapter's default and its reasons)."""
    roar_test_size: int = param(1000, low=1, high=10000)
    """Test images, with the same pixels removed, on which each retrained model is scored."""
    alignment_size: int = param(500, low=1, high=10000)
    """Test images of Etmann et al.'s alignment."""
    cost_batches: int = param(10, low=2)
    """Training batches timed per method for the cost column."""
    cost_repeats: int = param(3, low=1)
    """Timed repeats per method, interleaved across methods (the column shows their median)."""
    budget_factor: float = param(3.0, low=1, low_open=True)
    """The larger budget: every method trained for this many times ``epochs``."""
    budget_seeds: tuple[int, ...] = param((0,), low=0)
    """Seeds of the larger-budget models, among ``seeds`` (one, for the CPU budget)."""
    saliency_images: int = param(6, low=1, high=32)
    """Test images in the grid of maps."""

    def validate(self) -> None:
        super().validate()
        if not any(e.method == "standard" for e in self.methods):
            raise ConfigError("methods must list a standard-training entry (method: standard): the cost "
                              "column is relative to it")
        if len(set(self.epsilons)) != len(self.epsilons) or not self.epsilons:
            raise ConfigError(f"epsilons must list distinct radii, got {list(self.epsilons)}")
        if not self.budget_seeds or not set(self.budget_seeds) <= set(self.seeds):
            raise ConfigError(f"budget_seeds {list(self.budget_seeds)} must be among seeds {list(self.seeds)}: "
                              f"each larger-budget model is compared with the model of the same seed")

    def standard_label(self) -> str:
        return next(e.label for e in self.methods if e.method == "standard")


@dataclasses.dataclass(frozen=True)
class Measure:
    """One column of the benchmark: its name in the tables, what it is and which way is better."""

    name: str
    title: str
    kind: str
    higher_is_better: bool
    unit: str = ""

    @property
    def header(self) -> str:
        return f"{self.title} {'↑' if self.higher_is_better else '↓'}"


ATTACK_TITLES = {"fgsm": "FGSM", "pgd": "PGD", "mifgsm": "MI-FGSM"}
QUANTUS_TITLES = {"max_sensitivity": "max-sensitivity", "avg_sensitivity": "avg-sensitivity",
                  "local_lipschitz": "local Lipschitz", "faithfulness_correlation": "faithfulness corr.",
                  "faithfulness_estimate": "faithfulness est.", "complexity": "complexity",
                  "sparseness": "sparseness"}


def robust_name(attack: str, eps: float) -> str:
    return f"{attack}@{eps:g}"


def measures(cfg: SynthesisConfig) -> tuple[Measure, ...]:
    """The benchmark's columns, in the order the table shows them."""
    found = [Measure("clean", "clean acc.", ROBUSTNESS, True, "%")]
    for name in ("fgsm", "pgd", "mifgsm"):
        found += [Measure(robust_name(name, eps), f"{ATTACK_TITLES[name]} {eps:g}", ROBUSTNESS, True, "%")
                  for eps in cfg.epsilons]
    found.append(Measure("autoattack", f"AutoAttack {cfg.autoattack_eps:g}", ROBUSTNESS, True, "%"))
    found += [Measure(name, QUANTUS_TITLES[name], INTERPRETABILITY, spec.higher_is_better)
              for name, spec in explanation_quality.METRICS.items()]
    share = f"{cfg.removal_fraction:.0%}"
    found += [Measure("removal_gap", f"removal gap {share}", INTERPRETABILITY, True, "points"),
              Measure("road_gap", f"ROAD gap {share}", INTERPRETABILITY, True, "points"),
              Measure("roar", f"ROAR acc. {share}", INTERPRETABILITY, False, "%"),
              Measure("alignment", "alignment", INTERPRETABILITY, True)]
    return tuple(found)


def cost_measure() -> Measure:
    return Measure("cost", "cost per epoch (x standard)", COST, False)


Key = tuple[str, int]  # (label, seed)


def specs(cfg: SynthesisConfig, factor: float = 1.0, seeds: tuple[int, ...] | None = None) -> dict[Key, train.TrainSpec]:
    """Every listed method and seed at ``factor`` times the chapter's budget (its own epochs too)."""
    grid = {}
    for seed in seeds or cfg.seeds:
        for entry in cfg.methods:
            spec = common.train_spec(cfg, entry, seed, epochs=cfg.epochs, lr=cfg.lr)
            grid[entry.label, seed] = dataclasses.replace(spec, epochs=spec.epochs * factor)
    return grid


def budget_specs(cfg: SynthesisConfig) -> dict[Key, train.TrainSpec]:
    return specs(cfg, cfg.budget_factor, cfg.budget_seeds)


def robustness_attacks(cfg: SynthesisConfig) -> tuple[AttackSpec, ...]:
    return common.evaluation_attacks(cfg)


def autoattack_spec(cfg: SynthesisConfig) -> AttackSpec:
    return AttackSpec.of("autoattack", parts=cfg.autoattack_parts)


def plan(cfg: SynthesisConfig) -> common.Plan:
    grid: dict[Hashable, train.TrainSpec] = {**specs(cfg)}
    grid.update({(label, seed, "budget"): spec for (label, seed), spec in budget_specs(cfg).items()})
    retrains = len(grid) + len(cfg.seeds)
    return common.Plan(grid, (*robustness_attacks(cfg), autoattack_spec(cfg)),
                       (*explanation_quality.METRICS, "removal_gap", "road", "roar", "alignment"),
                       (f"{retrains} ROAR retrainings ({cfg.roar_epochs:g} epochs each, cached), one per model "
                        f"and a random control per seed",))


def train_all(cfg: SynthesisConfig, grid: dict[Key, train.TrainSpec]) -> tuple[dict[Key, torch.nn.Module], pd.DataFrame]:
    """Every model of ``grid`` (from the cache where any chapter trained the same spec) and their records."""
    return common.train_grid(grid)


def _rows(measure: str, values: torch.Tensor | list[float]) -> pd.DataFrame:
    values = values.tolist() if isinstance(values, torch.Tensor) else list(values)
    return pd.DataFrame({"measure": measure, "image": range(len(values)), "score": values})


def _percent(mask: torch.Tensor) -> torch.Tensor:
    return 100 * mask.float()


def robustness_rows(cfg: SynthesisConfig, model: torch.nn.Module, seed: int, label: str) -> pd.DataFrame:
    """Clean and robust correctness per image (0 or 100) under every attack and radius."""
    split = common.eval_subset(cfg.dataset, cfg.eval_size, "attacks")
    tables = [_rows("clean", _percent(models.predict(model, split.images) == split.labels))]
    jobs = [(attack, eps) for attack in robustness_attacks(cfg) for eps in cfg.epsilons]
    for attack, eps in progress(jobs, desc=f"attacks on {label} seed {seed}"):
        correct = correct_under_attack(model, split.images, split.labels, attack, eps, seed=seed)
        tables.append(_rows(robust_name(attack.name, eps), _percent(correct)))
    few = common.eval_subset(cfg.dataset, cfg.autoattack_size, "autoattack")
    correct = correct_under_attack(model, few.images, few.labels, autoattack_spec(cfg), cfg.autoattack_eps, seed=seed)
    tables.append(_rows("autoattack", _percent(correct)))
    return pd.concat(tables, ignore_index=True)


def explainer_options(cfg: SynthesisConfig) -> dict[str, Any]:
    return {"n_steps": 20} if cfg.explainer == "integrated_gradients" else {}


def quality_rows(cfg: SynthesisConfig, model: torch.nn.Module, seed: int, label: str) -> pd.DataFrame:
    """The seven Quantus metrics per image (robinterp's batched implementation, tested equal to Quantus)."""
    split = common.eval_subset(cfg.dataset, cfg.quantus_size, "explanation_quality")
    torch.manual_seed(seed)
    scores = explanation_quality.scores(model, split.images, split.labels, tuple(explanation_quality.METRICS),
                                        explainer=cfg.explainer, explainer_options=explainer_options(cfg),
                                        samples=cfg.quantus_samples, noise=cfg.quantus_noise, seed=seed)
    return scores.rename(columns={"metric": "measure"})


def faithfulness_rows(cfg: SynthesisConfig, model: torch.nn.Module, seed: int, label: str) -> pd.DataFrame:
    """Per image: the removal gap (right after removing a random ``removal_fraction`` minus after
    removing the top one by |attribution|, noise-filled, no retraining) and the ROAD gap (right
    after imputing the least relevant fraction minus the most relevant one); points."""
    split = common.eval_subset(cfg.dataset, cfg.faithfulness_size, "removal")
    attribution = explain.explain(model, split.images, split.labels, cfg.explainer, **explainer_options(cfg))
    fraction = (cfg.removal_fraction,)
    by_saliency = metrics.correct_after_removal(model, split.images, split.labels, attribution, fraction, seed=seed)[0]
    by_chance = metrics.correct_after_removal(model, split.images, split.labels, attribution, fraction,
                                              random_ranking=True, seed=seed)[0]
    road = {order: metrics.road(model, split.images, split.labels, attribution, (100 * cfg.removal_fraction,),
                                order=order, noise=cfg.road_noise, seed=seed)[0] for order in metrics.ROAD_ORDERS}
    return pd.concat([_rows("removal_gap", _percent(by_chance) - _percent(by_saliency)),
                      _rows("road_gap", _percent(road["lerf"]) - _percent(road["morf"]))], ignore_index=True)


def alignment_rows(cfg: SynthesisConfig, model: torch.nn.Module, seed: int, label: str) -> pd.DataFrame:
    """Etmann et al.'s alignment |<x, g>| / ||g|| of the predicted class, per image."""
    split = common.eval_subset(cfg.dataset, cfg.alignment_size, "alignment")
    return _rows("alignment", metrics.alignment(model, split.images))


GROUPS: dict[str, tuple[Callable[..., pd.DataFrame], tuple[str, ...]]] = {
    # group -> (its rows, the config fields they read besides the data set)
    "robustness": (robustness_rows, ("eval_size", "epsilons", "pgd_steps", "mifgsm_steps", "autoattack_size",
                                     "autoattack_eps", "autoattack_parts")),
    "quality": (quality_rows, ("explainer", "quantus_size", "quantus_samples", "quantus_noise")),
    "faithfulness": (faithfulness_rows, ("explainer", "faithfulness_size", "removal_fraction", "road_noise")),
    "alignment": (alignment_rows, ("alignment_size",)),
}


def roar_spec(cfg: SynthesisConfig, seed: int) -> train.TrainSpec:
    """ROAR's retraining: standard training of a fresh network, ``roar_epochs`` long."""
    return common.train_spec(cfg, MethodEntry("retrain", "standard"), seed, epochs=cfg.roar_epochs, lr=cfg.lr)


def roar_rows(cfg: SynthesisConfig, model: torch.nn.Module | None, source_key: str, seed: int,
              label: str) -> pd.DataFrame:
    """Per test image: right (0 or 100) by a network retrained without the top ``removal_fraction``
    of pixels by the model's saliency (``roar_target``'s class), tested with the same pixels
    removed; ``model`` None is the random control."""
    train_split = data.load(cfg.dataset, "train").subset(cfg.train_size, seed)
    test = common.eval_subset(cfg.dataset, cfg.roar_test_size, "removal")
    fill = roar.channel_mean(train_split)
    ranking = None if model is None else roar.saliency_ranking(model, cfg.roar_target)
    retrained, _ = roar.retrained(source_key, ranking, cfg.removal_fraction, roar_spec(cfg, seed), train_split,
                                  lambda: roar.ranked(train_split, ranking, seed, "train"), fill, name=f"{label} seed {seed}")
    removed = roar.remove(test.images, roar.ranked(test, ranking, seed, "test"), cfg.removal_fraction, fill)
    return _rows("roar", _percent(models.predict(retrained, removed) == test.labels))


def _roar_fields(cfg: SynthesisConfig) -> dict[str, Any]:
    return {f: getattr(cfg, f) for f in ("removal_fraction", "roar_epochs", "roar_target", "roar_test_size",
                                         "train_size", "lr", "batch_size", "optimizer", "model", "width")}


def per_image(cfg: SynthesisConfig, trained: dict[Key, torch.nn.Module], records: pd.DataFrame) -> pd.DataFrame:
    """Every per-image measure of every model. Tidy: method, seed, measure, image, score. One cache
    entry per model and group of measures, keyed by the model's cache key and the settings the
    group reads (so a newly listed method computes only its own rows)."""
    keys = records.set_index(["method", "seed"])["cache_key"]
    tables = []
    for (label, seed), model in trained.items():
        model_key = keys[label, seed]
        for group, (rows, fields) in GROUPS.items():
            settings = {"dataset": cfg.dataset, **{f: getattr(cfg, f) for f in fields}}
            table = cache.cached_table(
                {"chapter": CHAPTER, "group": group, "model": model_key, "seed": seed, "settings": settings},
                lambda: rows(cfg, model, seed, label), code=(__name__,))
            tables.append(table.assign(method=label, seed=seed))
        table = cache.cached_table(
            {"chapter": CHAPTER, "group": "roar", "model": model_key, "seed": seed, "settings": _roar_fields(cfg),
             "dataset": cfg.dataset}, lambda: roar_rows(cfg, model, model_key, seed, label), code=(__name__,))
        tables.append(table.assign(method=label, seed=seed))
    return pd.concat(tables, ignore_index=True)


def roar_random(cfg: SynthesisConfig, seeds: tuple[int, ...]) -> pd.DataFrame:
    """ROAR of the random control per seed (the floor a map must beat). Tidy as ``per_image``."""
    return pd.concat([cache.cached_table(
        {"chapter": CHAPTER, "group": "roar", "model": roar.RANDOM, "seed": seed, "settings": _roar_fields(cfg),
         "dataset": cfg.dataset}, lambda: roar_rows(cfg, None, roar.RANDOM, seed, "random"), code=(__name__,))
        .assign(method="random ranking", seed=seed) for seed in seeds], ignore_index=True)


def cost(cfg: SynthesisConfig) -> pd.DataFrame:
    """Seconds per training batch of every method, timed on this machine in ``cost_repeats``
    repeats interleaved across methods (``cost_batches`` batches each, a fresh network of the
    first seed; a method's ``prepare``, e.g. loading its teacher, is not timed). Not cached: a
    timing belongs to the run that shows it. Tidy: method, repeat, seconds_per_batch."""
    split = data.load(cfg.dataset, "train").subset(cfg.cost_batches * cfg.batch_size, cfg.seeds[0])
    grid = specs(cfg, seeds=(cfg.seeds[0],))
    rows = []
    for repeat in range(cfg.cost_repeats):
        for (label, seed), spec in grid.items():
            one_pass = dataclasses.replace(spec, epochs=1.0)
            torch.manual_seed(seed)
            model = train.build_model(one_pass)
            history = train.fit(model, split, one_pass, desc=f"timing {label} (repeat {repeat + 1})")
            rows.append({"method": label, "repeat": repeat,
                         "seconds_per_batch": float(history["seconds"].sum()) / cfg.cost_batches})
    return pd.DataFrame(rows)


def cost_ratios(timings: pd.DataFrame, standard: str) -> pd.DataFrame:
    """Each method's seconds per batch over standard training's in the same repeat. Tidy: method,
    repeat, ratio."""
    per_repeat = timings.pivot(index="repeat", columns="method", values="seconds_per_batch")
    ratios = per_repeat.div(per_repeat[standard], axis=0)
    return ratios.stack().rename("ratio").reset_index()


def median_ratio(ratios: pd.DataFrame) -> pd.Series:
    return ratios.groupby("method")["ratio"].agg(lambda r: statistics.median(r.tolist()))


def saliency_maps(cfg: SynthesisConfig, trained: dict[Key, torch.nn.Module]
                  ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and every listed model's attribution (first seed) on the same test images."""
    split = common.eval_subset(cfg.dataset, cfg.saliency_images, "maps")
    return split.images, split.labels, {
        label: explain.explain(trained[label, cfg.seeds[0]], split.images, split.labels, cfg.explainer,
                               **explainer_options(cfg)) for label in cfg.labels()}
