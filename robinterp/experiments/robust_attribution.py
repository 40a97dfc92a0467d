"""Chapter "Robust attribution alignment" (Zeng et al. 2021, its supplement).

Standard training, defensive distillation, input-gradient regularization, PGD training in L2
and Linf at several radii and step counts, and the attribution-alignment model (a
reconstruction: ``robinterp.methods.attribution_alignment``) are trained alike. Their vanilla
saliency maps (and the alignment model's own map) are judged by ROAR, which retrains a fresh
model on images whose top-ranked pixels were removed (``robinterp.roar``), and by ROAD, which
needs no retraining (``robinterp.metrics.road``); Etmann et al.'s alignment between an image and
its saliency map is set against the training radius.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time

import pandas as pd
import torch

from robinterp import cache, data, explain, measures, models, roar, train
from robinterp.attacks import AttackSpec
from robinterp.config import ConfigError, param
from robinterp.experiments import common
from robinterp.measures import _rankings, measure
from robinterp.measures.alignment import AlignmentSettings
from robinterp.measures.attack import AttackSettings
from robinterp.measures.road import RoadSettings
from robinterp.measures.roar import RoarSettings
from robinterp.methods import MethodEntry, attribution_alignment, method_table

CHAPTER = "robust_attribution"

# The supplement's Table 1 grid (CIFAR-10, 32 x 32 x 3): PGD training radii and steps.
PAPER_L2_RADII = (1.0, 1.5, 2.0, 2.5)
PAPER_LINF_RADII = (4 / 255, 8 / 255, 16 / 255)
PAPER_STEPS = (20, 40)
PAPER_PIXELS = 32 * 32 * 3
CIFAR_LINF_REFERENCE = 8 / 255  # the customary CIFAR-10 Linf radius (Madry et al.)


def radius_mapping(linf_reference: float, pixels: int) -> pd.DataFrame:
    """The supplement's radii carried to another data set: Linf radii scaled by
    ``linf_reference / (8/255)`` (the data set's customary Linf radius over CIFAR-10's), L2 radii
    by the same factor times sqrt(pixels / 3072), since an L2 ball of the same per-pixel size grows
    with the square root of the number of values. One row per paper radius: norm, paper_eps, eps."""
    scale = linf_reference / CIFAR_LINF_REFERENCE
    rows = [{"norm": "linf", "paper_eps": e, "eps": round(e * scale, 3)} for e in PAPER_LINF_RADII]
    l2_scale = scale * math.sqrt(pixels / PAPER_PIXELS)
    rows += [{"norm": "l2", "paper_eps": e, "eps": round(e * l2_scale, 2)} for e in PAPER_L2_RADII]
    return pd.DataFrame(rows)


def grid_label(norm: str, eps: float, steps: int) -> str:
    return f"{'L2' if norm == 'l2' else 'Linf'} eps {eps:g} ({steps} steps)"


def pgd_grid(mapping: pd.DataFrame, steps: tuple[int, ...], eps_warmup: float) -> tuple[MethodEntry, ...]:
    """One ``pgd_at`` entry per radius of ``mapping`` and step count, labelled by norm, eps and steps."""
    return method_table(
        {
            grid_label(row.norm, row.eps, t): {
                "method": "pgd_at",
                "norm": row.norm,
                "eps": row.eps,
                "steps": t,
                "eps_warmup": eps_warmup,
            }
            for row in mapping.sort_values(["norm", "eps"]).itertuples()
            for t in steps
        }
    )


# `default`: Fashion-MNIST's customary Linf radius 0.1, 28 x 28 x 1 images; 5 and 10 steps keep the
# supplement's 1 : 2 ratio at a quarter of its cost; the radius grows over the first quarter.
DEFAULT_MAPPING = radius_mapping(0.1, 28 * 28)
DEFAULT_STEPS = (5, 10)
DEFAULT_WARMUP = 0.25
DEFAULT_GRID = pgd_grid(DEFAULT_MAPPING, DEFAULT_STEPS, DEFAULT_WARMUP)


@dataclasses.dataclass(frozen=True)
class RobustAttributionConfig(common.ExperimentConfig):
    """Settings of the chapter; the defaults are the `default` profile (CPU, minutes)."""

    dataset: str = param("fashion_mnist", choices=tuple(data.DATASETS))
    """Data set (Fashion-MNIST by default: its objects have texture and shape inside them, so a
    saliency map can rank more than MNIST's stroke-or-background pixels)."""
    train_size: int | None = param(10000, low=1)
    """Training images, a seeded subset; None for all of them. ROAR retrains on the same images."""
    seeds: tuple[int, ...] = param((0, 1), low=0, min_items=1)
    """Seeds of the compared methods (Figure 1 analogue)."""
    methods: tuple[MethodEntry, ...] = param(
        method_table(
            {
                "standard": {"method": "standard"},
                "distillation": {"method": "distillation", "temperature": 100.0},
                "input-grad reg": {"method": "input_grad_reg", "lam": 0.5},
                "PGD-L2": {"method": "pgd_at", "norm": "l2", "eps": 2.42, "steps": 5, "eps_warmup": 0.25},
                "alignment": {
                    "method": "attribution_alignment",
                    "teacher_eps": 2.42,
                    "teacher_steps": 5,
                    "teacher_eps_warmup": 0.25,
                },
            }
        )
    )
    """The compared models (Figure 1 analogue): standard, defensive distillation (T 100),
    input-gradient regularization (lambda 0.5), PGD-L2 (CIFAR-10's 1.5 mapped) and the
    attribution-alignment model, whose teacher must be a listed PGD-L2 entry."""
    grid: tuple[MethodEntry, ...] = param(DEFAULT_GRID)
    """PGD training radii and steps (Table 1 analogue): every ``pgd_at`` entry, labelled by norm,
    radius and steps; the supplement's radii mapped to the data set (the chapter's mapping table)."""
    grid_seeds: tuple[int, ...] = param((0,), low=0, min_items=1)
    """Seeds of the grid models, among ``seeds`` (one, for the CPU budget)."""
    epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of every model that does not set its own."""
    lr: float = param(1e-3, low=0, low_open=True)
    """Learning rate of every model that does not set its own (Adam)."""
    roar_fractions: tuple[float, ...] = param(
        (0.2, 0.4, 0.6, 0.8), low=0, low_open=True, high=1, high_open=True, min_items=1
    )
    """Fractions of pixels removed before retraining (the supplement's 20, 40, 60, 80%)."""
    roar_epochs: float = param(1.0, low=0, low_open=True)
    """Epochs of each ROAR retraining (standard training of a fresh model of the same architecture)."""
    roar_train_size: int | None = param(5000, low=1)
    """Training images of each ROAR retraining and of the leak test: the first of the chapter's
    seeded training subset (ours: half of the default 10000 under the CPU budget; the supplement
    retrains on the whole training set). None: all of ``train_size``."""
    roar_target: str = param("predicted", choices=("predicted", "true"))
    """Class whose vanilla saliency ranks the pixels: the model's prediction (ours) or the true
    label; neither the supplement nor Hooker et al. say. The true class's map can write the label
    into the shape of the removal, which the retrained model then reads (the leak test below)."""
    leak_fraction: float = param(0.4, low=0, low_open=True, high=1, high_open=True)
    """Fraction removed in the leak test: a fresh model trained on the removal's mask alone, for
    each listed model's map (first seed) and both classes."""
    roar_test_size: int = param(2000, low=1, high=10000)
    """Test images, with the same pixels removed, on which each retrained model is scored."""
    road_size: int = param(200, low=1, high=10000)
    """Test images of ROAD (noisy linear imputation, most and least relevant first)."""
    road_noise: float = param(0.01, low=0)
    """Standard deviation of ROAD's imputation noise (Rong et al. and Quantus: 0.01)."""
    alignment_size: int = param(500, low=1, high=10000)
    """Test images of Etmann et al.'s alignment and of the robust accuracy."""
    robust_l2_eps: float = param(1.5, low=0, low_open=True)
    """L2 radius of the PGD accuracy shown beside the alignment."""
    robust_linf_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of the PGD accuracy shown beside the alignment."""
    pgd_steps: int = param(10, low=1)
    """Steps of those evaluation attacks (step 2.5 eps / steps, random start)."""
    roar_margin: float = param(2.0, low=0, low_open=True)
    """Points of ROAR accuracy within which two maps count as "as faithful" (ours)."""
    cost_repeats: int = param(5, low=2)
    """Timed repeats of the cost-per-map comparison (each over ``alignment_size`` images)."""
    saliency_images: int = param(6, low=1, high=32)
    """Test images in the saliency-map grids."""

    def validate(self) -> None:
        super().validate()
        if not set(self.grid_seeds) <= set(self.seeds):
            raise ConfigError(f"grid_seeds {list(self.grid_seeds)} must be among seeds {list(self.seeds)}")
        not_pgd = [e.label for e in self.grid if e.method != "pgd_at"]
        if not_pgd:
            raise ConfigError(f"grid entries must be pgd_at models; {not_pgd[0]!r} is not")
        if roar.RANDOM in self.labels() + [e.label for e in self.grid]:
            raise ConfigError(f"no model may be labelled {roar.RANDOM!r}: ROAR's control has that label")
        clash = set(self.labels()) & {e.label for e in self.grid}
        for entry in self.grid:  # a grid entry may repeat a listed method only as the same spec
            if entry.label in clash:
                same = next(e for e in self.methods if e.label == entry.label)
                if same != entry:
                    raise ConfigError(f"grid entry {entry.label!r} differs from the method of that label")
        for entry in self.methods:
            if entry.method == "attribution_alignment" and self.teacher_label(entry) is None:
                raise ConfigError(
                    f"methods[{entry.label!r}]'s teacher (PGD-L2, eps {entry.values['teacher_eps']}, "
                    f"{entry.values['teacher_steps']} steps, warm-up "
                    f"{entry.values['teacher_eps_warmup']}) must be one of the listed methods, "
                    f"so that its maps are compared with their teacher's"
                )

    def teacher_label(self, entry: MethodEntry) -> str | None:
        """The listed method whose trained model is ``entry``'s teacher (the same spec), if any."""
        seed = self.seeds[0]
        wanted = attribution_alignment.teacher_spec(
            common.train_spec(self, entry, seed, epochs=self.epochs, lr=self.lr)
        )
        return next(
            (
                e.label
                for e in self.methods
                if common.train_spec(self, e, seed, epochs=self.epochs, lr=self.lr) == wanted
            ),
            None,
        )

    def role(self, method: str) -> str | None:
        """The label of the first listed entry trained by ``method`` (the claims' models)."""
        return next((e.label for e in self.methods if e.method == method), None)

    def map_models(self) -> list[str]:
        """Labels of the listed models that carry their own map (attribution alignment)."""
        return [e.label for e in self.methods if e.method == "attribution_alignment"]


Key = tuple[str, int]  # (label, seed)


def specs(cfg: RobustAttributionConfig) -> dict[Key, train.TrainSpec]:
    """Every model: the methods at every seed, the grid at ``grid_seeds``."""
    grid = common.method_grid(cfg)
    for seed in cfg.grid_seeds:
        for entry in cfg.grid:
            grid[entry.label, seed] = common.train_spec(cfg, entry, seed, epochs=cfg.epochs, lr=cfg.lr)
    return grid


def evaluation_attacks(cfg: RobustAttributionConfig) -> tuple[tuple[AttackSpec, str, float], ...]:
    """(attack, norm, eps) of the robust accuracy beside the alignment."""
    pgd = AttackSpec.of("pgd", steps=cfg.pgd_steps)
    return ((pgd, "l2", cfg.robust_l2_eps), (pgd, "linf", cfg.robust_linf_eps))


def plan(cfg: RobustAttributionConfig) -> common.Plan:
    retrains = (len(specs(cfg)) + len(cfg.map_models()) * len(cfg.seeds) + len(cfg.seeds)) * len(cfg.roar_fractions)
    leaks = 1 + 2 * len(cfg.methods) + len(cfg.map_models())
    return common.Plan(
        specs(cfg),
        tuple(dict.fromkeys(a for a, _, _ in evaluation_attacks(cfg))),
        ("roar", "road", "alignment"),
        (
            f"{retrains} ROAR retrainings and {leaks} of the leak test, {cfg.roar_epochs:g} epochs each on "
            f"{common.roar_train_size(cfg) or 'all the'} training images (cached models; a grid model "
            "equal to a listed one shares its retrainings)",
        ),
    )


def train_all(cfg: RobustAttributionConfig) -> tuple[common.TrainedModels, pd.DataFrame]:
    """Every model (from the cache where it was trained before) and its record; a grid entry
    with a listed method's spec is the same model."""
    trained, records = common.train_grid(specs(cfg))
    grid_labels = {e.label for e in cfg.grid}
    return trained, records.assign(group=["grid" if m in grid_labels else "methods" for m in records.method])


def own_map_layer(cfg: RobustAttributionConfig, label: str) -> str | None:
    """The layer an attribution-alignment model's own map explains (None for any other model):
    that map is ranked beside the model's vanilla saliency."""
    entry = next((e for e in cfg.methods if e.label == label), None)
    return entry.values["layer"] if entry is not None and entry.method == "attribution_alignment" else None


def rankings(cfg: RobustAttributionConfig, model: torch.nn.Module, label: str) -> list[roar.Ranking]:
    """How a model's pixels are ranked: its vanilla saliency of ``roar_target``'s class, and for
    an attribution-alignment model also its own map."""
    return _rankings.rankings(model, "saliency", (), cfg.roar_target, own_map_layer(cfg, label))


def roar_settings(cfg: RobustAttributionConfig, seed: int, label: str | None) -> RoarSettings:
    """ROAR of one model (``label`` None: the random control) of one seed."""
    retrain, _ = common.roar_retraining(cfg, seed)
    layer = None if label is None else own_map_layer(cfg, label)
    return RoarSettings(retrain, cfg.roar_fractions, cfg.roar_test_size, cfg.roar_target, layer)


def roar_table(cfg: RobustAttributionConfig, trained: common.TrainedModels, records: pd.DataFrame) -> pd.DataFrame:
    """Per image: is it classified right by the model retrained without the top ``fraction`` of
    pixels by each source model's ranking (and by a random one)? Tidy: ranking, fraction, image,
    correct (0 or 100), the retraining's minutes, source, seed; each model's rows cached on their
    own (``robinterp.measures.roar``)."""
    tables = []
    for seed in cfg.seeds:
        control = measure(roar_settings(cfg, seed, None), None, model_key=roar.RANDOM, seed=seed, name=f"seed {seed}")
        tables.append(control.assign(source="random", seed=seed))
        for (label, model_seed), model in trained.items():
            if model_seed == seed:
                rows = measure(
                    roar_settings(cfg, seed, label),
                    model,
                    model_key=trained.cache_keys[label, seed],
                    seed=seed,
                    name=f"{label} seed {seed}",
                )
                tables.append(rows.assign(source=label, seed=seed))
    return pd.concat(tables, ignore_index=True)


def leak_table(cfg: RobustAttributionConfig, trained: common.TrainedModels, records: pd.DataFrame) -> pd.DataFrame:
    """Per test image: is it classified right by a fresh model trained on nothing but the masks of
    where ``leak_fraction`` of the pixels were removed, by each listed model's map (first seed;
    saliency of the predicted and of the true class) and by the random control? Far above
    chance, the removal's shape gives the label away, and ROAR then measures that, not the map.
    Tidy: map, target, image, correct (0 or 100); cached by what it reads."""
    seed = cfg.seeds[0]
    retrain, train_split = common.roar_retraining(cfg, seed)
    sources = {label: trained.cache_keys[label, seed] for label in cfg.labels()}

    def compute() -> pd.DataFrame:
        test = common.eval_subset(cfg.dataset, cfg.roar_test_size, "removal")
        fill = roar.channel_mean(train_split)
        jobs: list[tuple[str, str, roar.Ranking | None]] = [(roar.RANDOM, roar.RANDOM, None)]
        for label in cfg.labels():
            model = trained[label, seed]
            jobs += [(sources[label], label, roar.saliency_ranking(model, target)) for target in ("predicted", "true")]
            jobs += [(sources[label], label, r) for r in rankings(cfg, model, label)[1:]]
        tables = []
        for source, label, ranking in jobs:
            test_order = roar.ranked(test, ranking, seed, "test")
            # the training images are ranked only when the retraining is not cached
            model_, _ = roar.retrained(
                source,
                ranking,
                cfg.leak_fraction,
                retrain,
                train_split,
                lambda r=ranking: roar.ranked(train_split, r, seed, "train"),
                fill,
                content="mask",
                name=f"{label} seed {seed}",
            )
            masks = roar.removal_mask(test.images, test_order, cfg.leak_fraction)
            correct = models.predict(model_, masks) == test.labels
            name = label if ranking is None or ranking.name == "saliency" else f"{label} (own map)"
            tables.append(
                pd.DataFrame({"image": range(len(test)), "correct": (100 * correct.int()).tolist()}).assign(
                    map=name, target=ranking.target if ranking else "none"
                )
            )
        return pd.concat(tables, ignore_index=True)

    key = {
        "chapter": CHAPTER,
        "table": "leak",
        "sources": sources,
        "own_maps": {label: own_map_layer(cfg, label) for label in cfg.labels()},
        "retrain": dataclasses.asdict(retrain),
        "test_size": cfg.roar_test_size,
        "leak_fraction": cfg.leak_fraction,
    }
    return cache.cached_table(key, compute, code=(__name__,))


def road_table(cfg: RobustAttributionConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per image: is it still classified right by the same model after the top (MoRF) or bottom
    (LeRF) ``fraction`` of pixels by each ranking are imputed (ROAD, no retraining)? Tidy:
    ranking, order, fraction, image, correct (0 or 100), seconds, source, seed; each model's rows
    cached on their own (``robinterp.measures.road``)."""
    tables = []
    for (label, seed), model in trained.items():
        settings = RoadSettings(
            cfg.dataset,
            cfg.road_size,
            cfg.roar_fractions,
            cfg.road_noise,
            target=cfg.roar_target,
            own_map_layer=own_map_layer(cfg, label),
        )
        rows = measure(
            settings, model, model_key=trained.cache_keys[label, seed], seed=seed, name=f"{label} seed {seed}"
        )
        tables.append(rows.assign(source=label, seed=seed))
    return pd.concat(tables, ignore_index=True)


ALIGNMENT_MEASURES = ("alignment (predicted class)", "alignment (true class)", "cosine (true class)")


def alignment_table(cfg: RobustAttributionConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """Per image and model: Etmann et al.'s alignment |<x, g>| / ||g|| with g the input gradient of
    the predicted class's logit (their paper) and of the true class's (their code), and the cosine
    of the latter. Tidy: measure, image, score, method, seed; each model's rows cached on their own."""
    settings = AlignmentSettings(cfg.dataset, cfg.alignment_size, ALIGNMENT_MEASURES)
    rows = measures.over_models(settings, trained, trained.cache_keys)
    return rows.rename(columns={"variant": "measure"})


def robustness(cfg: RobustAttributionConfig, trained: common.TrainedModels) -> pd.DataFrame:
    """PGD accuracy of every model in L2 and Linf at the chapter's radii (from per-image rows
    cached per model)."""
    per_image = pd.concat(
        [
            measures.over_models(
                AttackSettings(
                    cfg.dataset,
                    cfg.alignment_size,
                    attack,
                    (eps,),
                    norm=norm,
                    early_stop=cfg.attack_early_stop,
                    purpose="alignment",
                ),
                trained,
                trained.cache_keys,
            ).assign(attack=attack.name)
            for attack, norm, eps in evaluation_attacks(cfg)
        ],
        ignore_index=True,
    )
    return common.robust_curves(per_image)


def map_cost(cfg: RobustAttributionConfig, trained: dict[Key, torch.nn.Module]) -> pd.DataFrame:
    """Seconds per image of each alignment model's own map and of its teacher's vanilla saliency
    on ``alignment_size`` test images, timed in ``cost_repeats`` interleaved repeats on this
    machine (not cached: a timing belongs to the run that shows it). Tidy: model, map, repeat,
    seconds_per_image."""
    split = common.eval_subset(cfg.dataset, cfg.alignment_size, "alignment")
    rows = []
    for entry in (e for e in cfg.methods if e.method == "attribution_alignment"):
        own, teacher = trained[entry.label, cfg.seeds[0]], trained[cfg.teacher_label(entry), cfg.seeds[0]]
        layer = entry.values["layer"]
        # both on the whole subset at once, so that neither gains from batching
        contenders = {
            "own map (alignment model)": functools.partial(
                attribution_alignment.explanation, own, split.images, layer=layer
            ),
            "vanilla saliency (its PGD-L2 teacher)": functools.partial(
                explain.explain, teacher, split.images, split.labels, "saliency", batch_size=len(split)
            ),
        }
        for fn in contenders.values():  # warm-up: first calls pay for allocation
            fn()
        for repeat in range(cfg.cost_repeats):
            for name, fn in contenders.items():
                start = time.perf_counter()
                fn()
                rows.append(
                    {
                        "model": entry.label,
                        "map": name,
                        "repeat": repeat,
                        "seconds_per_image": (time.perf_counter() - start) / len(split),
                    }
                )
    return pd.DataFrame(rows)


def saliency_maps(
    cfg: RobustAttributionConfig,
    trained: dict[Key, torch.nn.Module],
    labels: list[str],
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Images, labels and each model's vanilla saliency of ``roar_target``'s class (first seed) on
    the same test images, and each alignment model's own map beside it."""
    split = common.eval_subset(cfg.dataset, cfg.saliency_images, "maps")
    maps: dict[str, torch.Tensor] = {}
    for label in labels:
        model = trained[label, cfg.seeds[0]]
        for ranking in rankings(cfg, model, label):
            name = label if ranking.name == "saliency" else f"{label} (own map)"
            maps[name] = ranking.attribute(split.images, split.labels)
    return split.images, split.labels, maps


def evaluation_cost(roar_results: pd.DataFrame, road_results: pd.DataFrame) -> pd.DataFrame:
    """What ROAR and ROAD each cost per source model and ranking, in minutes (this run's timings;
    a cached retraining counts the minutes it took when it was trained)."""
    roar_cost = roar_results.groupby(["source", "seed", "ranking", "fraction"])[
        ["retrain_minutes", "rank_seconds"]
    ].first()
    roar_cost = roar_cost.groupby(["source", "seed", "ranking"]).agg(
        retrain=("retrain_minutes", "sum"), rank=("rank_seconds", "first")
    )
    roar_minutes = (roar_cost["retrain"] + roar_cost["rank"] / 60).rename("ROAR (min)")
    road_minutes = (road_results.groupby(["source", "seed", "ranking"])["seconds"].first() / 60).rename("ROAD (min)")
    return pd.concat([roar_minutes, road_minutes], axis=1).reset_index()
