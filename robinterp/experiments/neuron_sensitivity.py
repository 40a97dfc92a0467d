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
import math
from typing import Any

import pandas as pd
import torch

from robinterp import cache, data, measures, train
from robinterp.attacks import AttackSpec
from robinterp.configs.neuron_sensitivity import STANDARD, NeuronSensitivityConfig
from robinterp.experiments import common
from robinterp.measures import measure
from robinterp.measures.attack import AttackSettings
from robinterp.measures.clean import CleanSettings
from robinterp.measures.quality import QualitySettings
from robinterp.methods import MethodEntry, get_method, method_table, nsloss
from robinterp.settings.metrics import MetricEntry

CHAPTER = "neuron_sensitivity"
SWEEP_METRICS = ("max_sensitivity", "faithfulness_estimate", "sparseness")  # the paper's Table 5
STANDARD_ENTRY = method_table({STANDARD: {"method": "standard"}})[0]
# Seeds of the lambda protocol: NsLoss's perturbations (global generator), the batches that
# average NsLoss_0, and the batch order of each candidate's training
PROTOCOL_SEED, LAMBDA0_BATCHES_SEED, CANDIDATE_BATCHES_SEED = 0, 99, 7


def pretrain_spec(cfg: NeuronSensitivityConfig, seed: int) -> train.TrainSpec:
    """The standard model every method continues from."""
    return common.train_spec(cfg, STANDARD_ENTRY, seed, epochs=cfg.pretrain_epochs, lr=cfg.pretrain_lr)


def resolved_methods(cfg: NeuronSensitivityConfig, lam: float) -> tuple[MethodEntry, ...]:
    """The listed methods, NsLoss entries without a weight given ``lam`` (the protocol's)."""
    return tuple(e.with_params(lam=lam) if e.method == "nsloss" and e.values["lam"] is None else e for e in cfg.methods)


def finetune_spec(cfg: NeuronSensitivityConfig, entry: MethodEntry, seed: int) -> train.TrainSpec:
    """A method's continued training: the chapter's epochs and learning rate unless the entry
    gives its own, as the paper's Tables 1 and 2 do."""
    return common.train_spec(cfg, entry, seed, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr)


def plan(cfg: NeuronSensitivityConfig) -> common.Plan:
    """What a run builds; NsLoss entries without a weight are checked at a stand-in lambda of 1
    (the protocol chooses the real one from the standard model)."""
    specs: dict[Any, train.TrainSpec] = {}
    fine_tuned = set()
    for seed in cfg.seeds:
        specs[STANDARD, seed] = pretrain_spec(cfg, seed)
        for entry in resolved_methods(cfg, 1.0):
            specs[entry.label, seed] = finetune_spec(cfg, entry, seed)
            fine_tuned.add((entry.label, seed))
    attacks_ = tuple(e.spec for e in cfg.attacks) + (AttackSpec.of("autoattack", parts=cfg.autoattack_parts),)
    unset = [e.label for e in cfg.methods if e.method == "nsloss" and e.values["lam"] is None]
    notes = (f"lambda of {', '.join(unset)}: chosen by the paper's protocol",) if unset else ()
    return common.Plan(specs, attacks_, tuple(e.label for e in cfg.metrics), notes, frozenset(fine_tuned))


@dataclasses.dataclass
class Trained:
    """The chapter's models and how they came about."""

    models: common.TrainedModels
    records: pd.DataFrame
    lambda_trace: pd.DataFrame
    lam: float
    """The first NsLoss entry's weight: the protocol's unless the config fixes it."""
    standard_keys: dict[int, str]


def lambda_zero_batches(cfg: NeuronSensitivityConfig, train: data.Split, validation: data.Split) -> list[torch.Tensor]:
    """The ``lambda_batches`` random batches that NsLoss_0 averages (images only: NsLoss reads
    no label): from the training images, or half (rounded up) from them and the rest from the
    validation images, as ``lambda_batches_from`` says."""

    def drawn(split: data.Split, count: int) -> list[torch.Tensor]:
        batches = split.batches(cfg.batch_size, shuffle=True, seed=LAMBDA0_BATCHES_SEED)
        return [xb for xb, _ in itertools.islice(batches, count)]

    if cfg.lambda_batches_from == "train":
        return drawn(train, cfg.lambda_batches)
    from_train = math.ceil(cfg.lambda_batches / 2)
    return drawn(train, from_train) + drawn(validation, cfg.lambda_batches - from_train)


def lambda_protocol(
    cfg: NeuronSensitivityConfig,
    standard: torch.nn.Module,
    standard_key: str,
    train_split: data.Split,
    validation_split: data.Split,
) -> pd.DataFrame:
    """Section 4.4 on the first seed's standard model: NsLoss_0, lambda_0 and the search trace,
    at the first NsLoss entry's settings."""
    info = data.get_spec(cfg.dataset)
    entry = cfg.nsloss_entry()
    ns = entry.values

    def compute() -> pd.DataFrame:
        torch.manual_seed(PROTOCOL_SEED)  # NsLoss draws its perturbations from the global generator
        split = train_split.subset(cfg.train_size, cfg.seeds[0])
        ns0, lam0 = nsloss.lambda_zero(
            standard,
            lambda_zero_batches(cfg, split, validation_split),
            info.num_classes,
            eps_ns=ns["eps_ns"],
            n=ns["n"],
            neurons=ns["neurons"],
            passes=ns["passes"],
        )
        candidate = finetune_spec(cfg, entry, cfg.seeds[0])
        chosen, trace = nsloss.select_lambda(
            lambda: copy.deepcopy(standard),
            lambda m: train.make_optimizer(candidate, m),
            lambda: split.batches(cfg.batch_size, shuffle=True, seed=CANDIDATE_BATCHES_SEED),
            lam0,
            info.num_classes,
            eps_ns=ns["eps_ns"],
            n=ns["n"],
            neurons=ns["neurons"],
            passes=ns["passes"],
            iterations=cfg.lambda_search_iterations,
            spread=cfg.lambda_spread,
            max_steps=cfg.lambda_max_steps,
            random_guess_ce=cfg.random_guess_ce,
            accuracy_drop=cfg.lambda_accuracy_drop,
        )
        # if every candidate was too high, one step below the smallest one tried
        return trace.assign(
            nsloss0=ns0,
            lambda0=lam0,
            selected=chosen if chosen is not None else trace["lambda"].min() / cfg.lambda_spread,
        )

    fields = (
        "lambda_batches",
        "lambda_batches_from",
        "lambda_search_iterations",
        "lambda_spread",
        "lambda_max_steps",
        "lambda_accuracy_drop",
        "random_guess_ce",
        "finetune_lr",
        "optimizer",
        "batch_size",
        "train_size",
    )
    return cache.cached_table(
        {
            "chapter": CHAPTER,
            "table": "lambda_protocol",
            "init": standard_key,
            "seed": cfg.seeds[0],
            "nsloss": dataclasses.asdict(entry),
            **{f: getattr(cfg, f) for f in fields},
        },
        compute,
        # the standard model's key holds its training; the protocol runs the NsLoss module's maths
        code=(__name__, *get_method(entry.method).modules),
    )


def train_all(cfg: NeuronSensitivityConfig) -> Trained:
    """Standard models, the lambda protocol, then every method continued from each standard model."""
    train_split, test_split = data.load(cfg.dataset, "train"), data.load(cfg.dataset, "test")
    models, rows, keys, model_keys = {}, [], {}, {}
    for seed in cfg.seeds:
        model, meta = train.trained_model(pretrain_spec(cfg, seed), train_split, test_split)
        models[STANDARD, seed], keys[seed] = model, meta["key"]
        model_keys[STANDARD, seed] = meta["key"]
        rows.append(common.record(STANDARD, seed, "standard", model, meta))
    # the page shows the protocol even when the config fixes the weight
    trace = lambda_protocol(cfg, models[STANDARD, cfg.seeds[0]], keys[cfg.seeds[0]], train_split, test_split)
    resolved = resolved_methods(cfg, float(trace["selected"].iloc[0]))
    lam = next(e for e in resolved if e.method == "nsloss").values["lam"]  # the first NsLoss entry's
    for seed in cfg.seeds:
        for entry in resolved:
            model, meta = train.continued(
                keys[seed], models[STANDARD, seed], finetune_spec(cfg, entry, seed), train_split, test_split
            )
            models[entry.label, seed], model_keys[entry.label, seed] = model, meta["key"]
            rows.append(common.record(entry.label, seed, entry.method, model, meta))
    return Trained(common.TrainedModels(models, model_keys), pd.DataFrame(rows), trace, lam, keys)


def robust_per_image(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Per test image: right (0 or 100) clean and under PGD at each epsilon, for every model
    (``common.attacked_per_image``), each model's rows cached on their own."""
    return common.attacked_per_image(cfg, trained.models, batch_size=cfg.eval_batch_size)


def autoattack_per_image(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Per test image: right (0 or 100) under AutoAttack at ``autoattack_eps``, for every model;
    the same columns as ``robust_per_image``."""
    settings = AttackSettings(
        cfg.dataset,
        cfg.autoattack_size,
        AttackSpec.of("autoattack", parts=cfg.autoattack_parts),
        (cfg.autoattack_eps,),
        early_stop=cfg.attack_early_stop,
        purpose="autoattack",
        batch_size=cfg.eval_batch_size,
    )
    return measures.over_models(settings, trained.models, trained.models.cache_keys).assign(attack="autoattack")


def quantus_split(cfg: NeuronSensitivityConfig) -> data.Split:
    """The test images the Quantus metrics score."""
    return common.eval_subset(cfg.dataset, cfg.quantus_size, "explanation_quality")


def explainer_options(cfg: NeuronSensitivityConfig, explainer: str) -> dict[str, Any]:
    """Integrated Gradients' steps and pass size from the config; other explainers' defaults."""
    if explainer == "integrated_gradients":
        return {"n_steps": cfg.ig_steps, "internal_batch_size": cfg.eval_batch_size}
    return {}


def quality_settings(
    cfg: NeuronSensitivityConfig, metrics: tuple[str | MetricEntry, ...], explainer: str = "integrated_gradients"
) -> QualitySettings:
    """The Quantus metrics ``metrics`` of ``explainer``'s maps on the chapter's quantus images."""
    return QualitySettings(
        cfg.dataset,
        cfg.quantus_size,
        metrics,
        explainer=explainer,
        explainer_options=tuple(explainer_options(cfg, explainer).items()),
        samples=cfg.quantus_samples,
        noise=cfg.quantus_noise,
        implementation=cfg.metric_implementation,
        images_per_call=cfg.eval_batch_size,
    )


def quality_scores(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Every listed metric per method and seed (IG), plus random attributions of the standard
    model; each model's rows cached on their own. Tidy: metric (the entry's label), image, score,
    method, seed."""
    keys = trained.models.cache_keys
    scores = measures.over_models(quality_settings(cfg, cfg.metrics), trained.models, keys)
    control = quality_settings(cfg, cfg.metrics, explainer="random")
    random_rows = [
        measure(control, trained.models[STANDARD, seed], model_key=keys[STANDARD, seed], seed=seed).assign(
            method="random attribution", seed=seed
        )
        for seed in cfg.seeds
    ]
    return pd.concat([scores, *random_rows], ignore_index=True)


def _per_image_measures(
    cfg: NeuronSensitivityConfig,
    model: torch.nn.Module,
    key: str,
    seed: int,
    scored: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The measures of the paper's Table 5 and Figure 4 per image, cached per model: the three
    metrics on the scored images (``scored`` when the quality table already holds them), and
    right or wrong (1 or 0) on every test image as ``test_accuracy`` (its mean is the model's
    test accuracy). Tidy: metric, image, score."""
    right = measure(CleanSettings(cfg.dataset), model, model_key=key, seed=seed)
    accuracy = pd.DataFrame({"metric": "test_accuracy", "image": right["image"], "score": right["correct"] / 100})
    if scored is None:
        scored = measure(quality_settings(cfg, SWEEP_METRICS), model, model_key=key, seed=seed)
    return pd.concat([scored, accuracy], ignore_index=True)


def scored_models(cfg: NeuronSensitivityConfig, trained: Trained) -> dict[str, pd.DataFrame]:
    """The Table 5 metrics' scores that ``quality_scores`` already holds, by the cache key of the
    model they score (metric, image, score; in ``SWEEP_METRICS`` order). The sweep and the epoch
    curve take a model's scores from here when its key is listed: the curve's epoch 0 is the
    standard model, and the sweep's 1x model and the curve's first epoch are the chapter's NsLoss
    model whenever they train the same way (the same spec, so the same key). A metric's scores do
    not depend on the other metrics scored beside it (numpy is seeded before each metric; tested),
    so this only saves the work; only when the chapter lists each of them under its own name and
    with no setting changed (else the sweep scores its models itself)."""
    if not set(map(MetricEntry.of, SWEEP_METRICS)) <= set(cfg.metrics):
        return {}
    quality = quality_scores(cfg, trained)
    quality = quality[quality["metric"].isin(SWEEP_METRICS)]
    known = {}
    for row in trained.records.itertuples():
        rows = quality[(quality["method"] == row.method) & (quality["seed"] == row.seed)]
        known[row.cache_key] = pd.concat(
            [rows[rows["metric"] == metric][["metric", "image", "score"]] for metric in SWEEP_METRICS],
            ignore_index=True,
        )
    return known


def sweep_spec(cfg: NeuronSensitivityConfig, lam: float, seed: int) -> train.TrainSpec:
    """The continued training of the sweep's NsLoss model at weight ``lam``: the first NsLoss
    entry's, for ``sweep_epochs`` when set."""
    entry = cfg.nsloss_entry().with_params(lam=lam)
    if cfg.sweep_epochs is not None:
        entry = dataclasses.replace(entry, epochs=cfg.sweep_epochs)
    return finetune_spec(cfg, entry, seed)


def lambda_sweep(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Table 5 analogue, per image: every seed's NsLoss model at each multiple of the selected
    lambda (``_per_image_measures``, cached per model like the models themselves). Tidy: metric,
    image, score, factor, lambda, seed."""
    train_split, test_split = data.load(cfg.dataset, "train"), data.load(cfg.dataset, "test")
    known, tables = scored_models(cfg, trained), []
    for seed, factor in itertools.product(cfg.seeds, cfg.sweep_factors):
        model, meta = train.continued(
            trained.standard_keys[seed],
            trained.models[STANDARD, seed],
            sweep_spec(cfg, factor * trained.lam, seed),
            train_split,
            test_split,
        )
        measures_ = _per_image_measures(cfg, model, meta["key"], seed, known.get(meta["key"]))
        tables.append(measures_.assign(factor=factor, **{"lambda": factor * trained.lam}, seed=seed))
    return pd.concat(tables, ignore_index=True)


def epoch_curve(cfg: NeuronSensitivityConfig, trained: Trained) -> pd.DataFrame:
    """Figure 4 analogue, per image: every seed's NsLoss model after each fine-tuning epoch
    (epoch 0: the standard model it starts from), cached per model. Tidy: metric, image, score,
    epoch, seed."""
    train_split, test_split = data.load(cfg.dataset, "train"), data.load(cfg.dataset, "test")
    entry = dataclasses.replace(cfg.nsloss_entry().with_params(lam=trained.lam), epochs=1.0)
    known, tables = scored_models(cfg, trained), []
    for seed in cfg.seeds:
        one_epoch = finetune_spec(cfg, entry, seed)
        model, key = trained.models[STANDARD, seed], trained.standard_keys[seed]
        for epoch in range(cfg.curve_epochs + 1):
            if epoch:
                model, meta = train.continued(key, model, one_epoch, train_split, test_split)
                key = meta["key"]
            measures_ = _per_image_measures(cfg, model, key, seed, known.get(key))
            tables.append(measures_.assign(epoch=epoch, seed=seed))
    return pd.concat(tables, ignore_index=True)


def setting_means(per_image_table: pd.DataFrame, setting: str) -> pd.DataFrame:
    """Per ``setting`` (lambda or epoch): each measure's mean over images and then over seeds,
    one column per measure (what the page's panels and table show)."""
    per_seed = per_image_table.groupby([setting, "seed", "metric"])["score"].mean()
    return per_seed.groupby([setting, "metric"]).mean().unstack("metric").reset_index().rename_axis(columns=None)


def attribution_maps(
    cfg: NeuronSensitivityConfig, trained: Trained, explainer: str
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The first seed's maps of ``explainer`` for every model, on the chapter's map images. Seeded
    (GradientSHAP draws from numpy's and torch's global generators): the figure is the same
    whatever the notebook computed before it, which a warm cache changes."""
    models = {label: trained.models[label, cfg.seeds[0]] for label in (STANDARD, *cfg.labels())}
    options = explainer_options(cfg, explainer)
    return common.maps(models, cfg.dataset, cfg.attribution_images, explainer, options, seed=cfg.seeds[0])
