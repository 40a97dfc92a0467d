"""The config of the synthesis chapter (``robinterp.experiments.synthesis``)."""

from __future__ import annotations

import dataclasses

from robinterp.attacks import AttackEntry
from robinterp.config import ConfigError, param
from robinterp.configs.experiment import ExperimentConfig, attack_field
from robinterp.methods import MethodEntry, method_table
from robinterp.settings.choices import (
    AUTOATTACK_PARTS,
    EXPLAINERS,
    MEASURE_GROUPS,
)
from robinterp.settings.metrics import MetricEntry, metric_table

DEFAULT_METHODS = method_table(
    {
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
        "alignment": {
            "method": "attribution_alignment",
            "teacher_eps": 2.0,
            "teacher_steps": 5,
            "teacher_eps_warmup": 0.25,
        },
    }
)


@dataclasses.dataclass(frozen=True)
class SynthesisConfig(ExperimentConfig):
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
    epsilons: tuple[float, ...] = param((0.1, 0.3), low=0, low_open=True, high=1, min_items=1)
    """Linf radii of the attacks (MNIST: 0.1 small, 0.3 the customary one)."""
    attacks: tuple[AttackEntry, ...] = attack_field(
        {"fgsm": {"attack": "fgsm"}, "pgd": {"attack": "pgd", "steps": 10}, "mifgsm": {"attack": "mifgsm", "steps": 10}}
    )
    """The evaluation attacks: label -> {attack: NAME (robinterp.attacks), its options}; every
    robust-accuracy table and figure follows this list. PGD's step is 2.5 eps / steps with a random
    start, MI-FGSM's eps / steps with decay 1 (Dong et al.). A paper's claim about an attack is
    judged under the first listed entry that runs it."""
    autoattack_size: int = param(50, low=1, high=10000)
    """Test images attacked with AutoAttack."""
    autoattack_eps: float = param(0.1, low=0, low_open=True, high=1)
    """Linf radius of AutoAttack."""
    autoattack_parts: tuple[str, ...] = param(("apgd-ce",), choices=AUTOATTACK_PARTS, min_items=1)
    """AutoAttack's attacks to run (its standard version: apgd-ce, apgd-t, fab-t, square)."""
    explainer: str = param("saliency", choices=EXPLAINERS)
    """The attribution every interpretability measure scores: vanilla gradient (the SGT, Zeng and
    SCAAT papers' map; Moshe et al. use Integrated Gradients, a parameter here)."""
    metrics: tuple[MetricEntry, ...] = param(metric_table())
    """The explanation metrics of the benchmark: label -> {metric: NAME (robinterp.explanation_quality),
    and any Quantus setting the entry changes}; a column each, in this order."""
    quantus_size: int = param(50, low=1, high=10000)
    """Test images scored by the listed Quantus metrics."""
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
    roar_train_size: int | None = param(4000, low=1)
    """Training images of each ROAR retraining: the first of the chapter's seeded training subset
    (ours: 4000 under the CPU budget; ranking the images costs as much as retraining on them, and
    at all 10000 ROAR took a third of the chapter's time); None: all of ``train_size``."""
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
    budget_factor: float = param(1.5, low=1, low_open=True)
    """The larger budget: every method trained for this many times ``epochs``, continued from its
    model at ``epochs`` where its steps do not depend on the budget (``robinterp.train``), from
    scratch otherwise (ours: 1.5 under the CPU budget; the paper profile uses 3)."""
    budget_seeds: tuple[int, ...] | None = param(None, low=0, min_items=1)
    """Seeds of the larger-budget models, among ``seeds``; None: every seed (ours: continued
    training makes every seed cost what one seed from scratch did, and the rule judges nothing on
    one seed)."""
    budget_groups: tuple[str, ...] = param(
        ("robustness", "quality", "faithfulness", "alignment"), choices=MEASURE_GROUPS, min_items=1
    )
    """Groups of measures the larger-budget check repeats (ours: all but ROAR under the CPU budget,
    whose retrainings would cost more than the larger models themselves; the paper profile checks
    every group)."""
    ig_steps: int = param(20, low=1)
    """Integrated Gradients steps (black baseline) when ``explainer`` is integrated_gradients."""
    saliency_images: int = param(6, low=1, high=32)
    """Test images in the grid of maps."""

    def validate(self) -> None:
        super().validate()
        if not any(e.method == "standard" for e in self.methods):
            raise ConfigError(
                "methods must list a standard-training entry (method: standard): the cost column is relative to it"
            )
        if self.budget_seeds is not None and not set(self.budget_seeds) <= set(self.seeds):
            raise ConfigError(
                f"budget_seeds {list(self.budget_seeds)} must be among seeds {list(self.seeds)}: "
                f"each larger-budget model is compared with the model of the same seed"
            )

    def standard_label(self) -> str:
        return next(e.label for e in self.methods if e.method == "standard")
