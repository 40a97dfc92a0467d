"""Adversarial attacks in pixel space, one module each with one signature, and their registry.

``attack(model, x, y, *, eps, norm, seed, early_stop, ...) -> x_adv``: batched, in [0, 1],
inside the eps-ball around the *clean* input, the model's train/eval modes restored.

``early_stop`` is how an evaluation counts (the convention of AutoAttack and RobustBench):
an image leaves the attack at the first iterate the model misclassifies (its starting point
included) and that iterate is returned, so an image broken at some step stays broken. Without
it (training, and evaluation with ``attack_early_stop: false``) every image takes every step
and only the last iterate counts. The images still attacked follow exactly the path they would
follow without it (same random start, same steps), so robust accuracy with it is never higher,
up to floating-point summation order.

``seed`` is None, one int for the batch, or one per image (a tensor): then image i's random
start is drawn from its own generator, so its attack does not depend on which images share
its batch (an evaluation that skips settled images relies on it). A norm is a tiny unit
(``_steps``), so every attack works under Linf and L2.

**Adding an attack** is adding a module to this folder with a function of this signature
(its options are its further keyword arguments, with defaults), a frozen ``Config`` dataclass of
those options (same defaults, docstrings, ranges) declared in ``robinterp.settings.attacks`` (and
named in its ``OPTIONS``, so that a config's attacks are validated without importing torch) and
``ATTACK = Attack("name", function, __name__, Options)``, with ``evaluation_only=True`` when no
training method runs it. The registry imports every module here (those whose name starts with
an underscore hold what several attacks share) and those ``ROBINTERP_ATTACK_MODULES`` names
(a module outside the package); a chapter lists it in its ``attacks`` setting (label -> attack
and options), which binds it once (``AttackSpec``, checking the options). A module outside the
package keeps its options class in itself (a config naming its attack is then validated after
importing it).

Cache identity: a training method imports the attack modules it runs (``robinterp.attacks.pgd``),
so its models depend on those and on ``_steps``, never on an evaluation-only attack; a measure
under attack is keyed by the modules of the attacks it runs (``AttackSpec.modules``). This file
only discovers and binds: it keys nothing (``robinterp.codehash.NEUTRAL_MODULES``), and it
re-exports no attack, so that nothing depends on the attacks through it unseen.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from robinterp import RobinterpError, units
from robinterp.config import Config, entry_table
from robinterp.settings.attacks import OPTIONS

if TYPE_CHECKING:
    import torch
    from torch import nn

SHARED = ("model", "x", "y", "eps", "norm", "seed", "early_stop")
"""What every attack takes; its options are the rest of its keyword arguments."""


@dataclasses.dataclass(frozen=True)
class Attack:
    """An attack: its name, function and module; ``evaluation_only`` when no method trains with it."""

    name: str
    function: Callable[..., torch.Tensor]
    module: str
    options_class: type[Config]
    """A frozen Config dataclass of the options (fields: the function's further keyword arguments,
    with the same defaults, docstrings and ranges)."""
    evaluation_only: bool = False

    @property
    def summary(self) -> str:
        return (self.function.__doc__ or "").strip().splitlines()[0]

    def options(self) -> list[str]:
        """The keyword arguments a chapter may set, besides the shared ones."""
        return [p for p in inspect.signature(self.function).parameters if p not in SHARED]


ENVIRONMENT = "ROBINTERP_ATTACK_MODULES"
"""Comma-separated dotted names of modules outside the package that define attacks the same way."""


@functools.cache
def _discover(names: tuple[str, ...]) -> dict[str, Attack]:
    found = units.registered(names, __name__, ENVIRONMENT, "attack", "ATTACK", Attack)
    for name, attack in found.items():
        if attack.module.startswith(f"{__name__}.") and OPTIONS.get(name) is not attack.options_class:
            raise RobinterpError(
                f"attack {name!r}: its options must be the class robinterp.settings.attacks.OPTIONS names for it"
            )
    return found


def registry() -> dict[str, Attack]:
    """Every attack, by name: this package's modules and those the environment names."""
    return dict(_discover(units.module_names(__name__, __path__, ENVIRONMENT)))


def get_attack(name: str) -> Attack:
    attacks = registry()
    _known(name, attacks)
    return attacks[name]


def options_class(name: str) -> type[Config]:
    """An attack's options dataclass, without importing torch for this package's attacks
    (``robinterp.settings.attacks``); with ``ROBINTERP_ATTACK_MODULES`` set, from the registry,
    which imports every attack's module."""
    if units.module_names_outside(ENVIRONMENT):
        return get_attack(name).options_class
    _known(name, OPTIONS)
    return OPTIONS[name]


def _known(name: str, names: Mapping[str, Any]) -> None:
    if name not in names:
        raise RobinterpError(f"unknown attack {name!r}; choose one of {', '.join(names)}")


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """An attack and its options (steps, step size...), bound once from a chapter's config.

    Built when the config is, so an unknown attack or option stops a run before any
    work; called like the attack itself, with the radius, norm and seed.
    """

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        options = options_class(self.name)
        accepted = [f.name for f in dataclasses.fields(options)]
        for key, _ in self.options:
            if key not in accepted:
                raise RobinterpError(
                    f"attack {self.name!r} has no option {key!r}; it accepts {', '.join(accepted) or 'none'}"
                )
        # one spelling per setting, so equal settings key equal whichever way they were written
        normalised = options.from_mapping(dict(self.options), f"attack {self.name!r}").to_dict()
        object.__setattr__(self, "options", tuple(sorted(normalised.items())))

    @classmethod
    def of(cls, name: str, **options: Any) -> AttackSpec:
        return cls(name, tuple(options.items()))

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        norm: str = "linf",
        seed: int | torch.Tensor | None = None,
        early_stop: bool = False,
    ) -> torch.Tensor:
        return get_attack(self.name).function(
            model, x, y, eps=eps, norm=norm, seed=seed, early_stop=early_stop, **dict(self.options)
        )

    @property
    def modules(self) -> tuple[str, ...]:
        """The module whose code computes this attack (what a measure under it is keyed by)."""
        return (get_attack(self.name).module,)


@dataclasses.dataclass(frozen=True)
class AttackEntry:
    """One attack a chapter evaluates under: its label on the page and the bound attack."""

    label: str
    spec: AttackSpec

    @classmethod
    def from_config(cls, name: str, value: Any) -> tuple[AttackEntry, ...]:
        """Entries from ``{label: {attack: NAME, OPTION: VALUE, ...}}``."""
        if isinstance(value, tuple) and all(isinstance(v, cls) for v in value):
            value = cls.to_config(value)
        return entry_table(
            name,
            value,
            "attack",
            "{pgd: {attack: pgd, steps: 20}}",
            lambda where, label, item: cls(
                label, AttackSpec(item["attack"], tuple((k, v) for k, v in item.items() if k != "attack"))
            ),
        )

    @classmethod
    def to_config(cls, entries: tuple[AttackEntry, ...]) -> dict[str, dict[str, Any]]:
        """The inverse of ``from_config``, with only the options that differ from the attack's
        defaults (what a parameters cell or a YAML file would say)."""
        return {entry.label: {"attack": entry.spec.name, **entry.changed()} for entry in entries}

    def changed(self) -> dict[str, Any]:
        """The options that differ from the attack's defaults."""
        defaults = options_class(self.spec.name)().to_dict()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.spec.options if defaults.get(k) != v}

    def settings_text(self) -> str:
        """The options that set a number or a list, as a page says them (``steps 20, decay 1``):
        shown whether or not they are the attack's default, since a reader needs them; a switch
        or an option left to its rule (None) is not."""
        shown = []
        for key, value in self.spec.options:
            if isinstance(value, bool) or value is None:
                continue
            text = f"{value:g}" if isinstance(value, float) else ", ".join(value) if isinstance(value, tuple) else value
            shown.append(f"{key.replace('_', ' ')} {text}")
        return "; ".join(shown)

    def describe(self) -> str:
        """The attack and its settings, e.g. ``pgd (steps 20)``."""
        settings = self.settings_text()
        return f"{self.spec.name} ({settings})" if settings else self.spec.name


def attack_table(value: Mapping[str, Mapping[str, Any]]) -> tuple[AttackEntry, ...]:
    """A chapter config's default ``attacks``, written as its YAML would be."""
    return AttackEntry.from_config("attacks", value)
