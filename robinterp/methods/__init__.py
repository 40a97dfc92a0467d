"""Training methods, one unit each, and the registry built from them.

**Adding a method** is adding a module to this folder that defines a ``Method``:

- a frozen parameters dataclass (a ``robinterp.config.Config``) whose fields carry
  docstrings saying the paper's value and ours, with ranges or choices, declared in
  ``robinterp.settings.methods`` (and named in its ``PARAMS``), so that a chapter's config is
  validated without importing torch;
- one loss with the shared signature
  ``loss(model, x, y, params, *, progress) -> (loss, logits)``, where ``progress``
  is the fraction of training done (for warm-ups) and ``logits`` are those the
  loss was computed on (for the running accuracy);
- ``METHOD = Method("name", Params, loss, "one line")`` (a family module may
  define several). A method that needs more than the batch (a teacher model) gives
  ``prepare=``: a function of the run's ``TrainSpec`` and of ``trained`` (the loop's cached
  models by their spec) made once per run, whose keyword arguments every loss call receives
  after ``progress``.

The registry imports every module here (those whose name starts with an
underscore hold maths that several methods share and define none), so nothing
else is edited: a chapter lists the method in its ``methods`` setting and it
appears in that chapter's tables. A module outside the package adds methods the
same way when ``ROBINTERP_METHOD_MODULES`` names it (comma-separated dotted names
importable on ``sys.path``), its parameters in the module itself (a config naming its methods is
then validated after importing it).

A method's module, with the package modules it imports, keys the cache of the
models trained with it, and of no other model (``robinterp.train.model_code``);
a measure of such a model is keyed by the model's key (``robinterp.measures``).
This registry only discovers, and imports no torch until it does: it keys nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from robinterp import units
from robinterp.config import Config, ConfigError, entry_table
from robinterp.settings import methods as method_settings
from robinterp.settings.methods import PARAMS

if TYPE_CHECKING:
    import torch

LossOutput = tuple["torch.Tensor", "torch.Tensor"]
ENVIRONMENT = "ROBINTERP_METHOD_MODULES"
# keys a chapter's method entry uses besides the method's parameters
ENTRY_KEYS = ("method", "epochs", "lr")


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method: its name, parameters dataclass and loss."""

    name: str
    params: type[Config]
    loss: Callable[..., LossOutput]
    summary: str
    prepare: Callable[[Any, Callable[[Any], Any]], dict[str, Any]] | None = None
    """Made once per training run from its ``TrainSpec`` and ``trained`` (a function giving the model
    of a ``TrainSpec`` from the cache, trained there first if needed) and passed to every loss call
    as keyword arguments after ``progress`` (e.g. a teacher model, itself trained through the cache)."""
    budget_dependence: Callable[[Any], str] | None = None
    """Whether a longer run of this method is a shorter one continued: given a run's ``TrainSpec``,
    why its steps depend on the whole training budget (a warm-up stated as a fraction of it, a
    teacher trained for as many epochs), or "" when every step is the same whatever the epochs.
    The loop then continues a longer run from the cached shorter one (``robinterp.train``). None:
    not stated, and a longer run trains from scratch."""

    @property
    def modules(self) -> tuple[str, ...]:
        """The dotted names of the modules whose source keys this method's models: where its loss
        is defined, and where its parameters are unless ``robinterp.settings.methods`` declares
        them (a method outside the package keeps them beside its loss; the declarations key
        nothing, as every value they give is in a model's key)."""
        where = {self.loss.__module__, self.params.__module__} - {method_settings.__name__}
        return tuple(sorted(where))

    def make_params(self, values: Mapping[str, Any], source: str) -> Config:
        """The validated parameters; unknown names and bad values are one-line errors."""
        return self.params.from_mapping(values, source=source)

    def __call__(
        self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, progress: float, **params: Any
    ) -> LossOutput:
        """The loss with parameters by name, the defaults for the rest (tests, one-off use)."""
        return self.loss(model, x, y, self.make_params(params, f"method {self.name!r}"), progress=progress)


def budget_free(spec: Any) -> str:
    """A method's ``budget_dependence`` when none of its steps depends on the number of epochs."""
    return ""


@functools.cache
def _discover(names: tuple[str, ...]) -> dict[str, Method]:
    found: dict[str, Method] = {}
    for dotted, module in units.imported(names, __name__, ENVIRONMENT, "training-method"):
        for value in vars(module).values():
            if not isinstance(value, Method) or found.get(value.name) is value:
                continue  # the same method imported into another module counts once
            if value.name in found:
                raise ConfigError(
                    f"two training methods are called {value.name!r} "
                    f"({', '.join(found[value.name].modules)} and {dotted}); rename one"
                )
            clash = [f.name for f in dataclasses.fields(value.params) if f.name in ENTRY_KEYS]
            if clash:
                raise ConfigError(
                    f"method {value.name!r} has a parameter named {clash[0]!r}, which a "
                    f"chapter's method entry uses itself; rename it"
                )
            declared = PARAMS.get(value.name)
            if dotted.startswith(f"{__name__}.") and declared is not value.params:
                raise ConfigError(
                    f"method {value.name!r} of {dotted}: its parameters must be the class "
                    f"robinterp.settings.methods.PARAMS names for it"
                )
            found[value.name] = value
    return found


def registry() -> dict[str, Method]:
    """Every training method, by name: this package's modules and those the environment names."""
    return _discover(units.module_names(__name__, __path__, ENVIRONMENT))


def get_method(name: str) -> Method:
    methods = registry()
    _known(name, methods)
    return methods[name]


def params_class(name: str) -> type[Config]:
    """A method's parameters dataclass, without importing torch for this package's methods
    (``robinterp.settings.methods``); with ``ROBINTERP_METHOD_MODULES`` set, from the registry,
    which imports every method's module."""
    if units.module_names_outside(ENVIRONMENT):
        return get_method(name).params
    _known(name, PARAMS)
    return PARAMS[name]


def _known(name: str, names: Mapping[str, Any]) -> None:
    if name not in names:
        hint = difflib.get_close_matches(str(name), list(names), n=1)
        also = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"unknown training method {name!r}{also}; choose one of {', '.join(sorted(names))}")


def normalise_params(method: str, values: Mapping[str, Any], source: str) -> tuple[tuple[str, Any], ...]:
    """A method's parameters validated and complete, as sorted (name, value) pairs.

    One spelling per setting (every field, defaults filled in, values of the field's
    type), so equal settings hash equal whichever way they were written.
    """
    try:
        params = params_class(method)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return tuple(sorted(params.from_mapping(values, source=source).to_dict().items()))


def _optional_positive(source: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{source}.{key} must be a number > 0 or null, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class MethodEntry:
    """One method a chapter trains: its label on the page, the method and its parameters.

    ``epochs`` and ``lr``, when set, replace the chapter's own for this method (papers
    give some methods their own schedule).
    """

    label: str
    method: str
    params: tuple[tuple[str, Any], ...] = ()
    epochs: float | None = None
    lr: float | None = None

    @classmethod
    def from_config(cls, name: str, value: Any) -> tuple[MethodEntry, ...]:
        """Entries from ``{label: {method: NAME, epochs: .., lr: .., PARAM: VALUE, ...}}``."""
        if isinstance(value, tuple) and all(isinstance(v, cls) for v in value):
            value = cls.to_config(value)
        return entry_table(
            name,
            value,
            "method",
            "{standard: {method: standard}, PGD-AT: {method: pgd_at, eps: 0.3}}",
            lambda where, label, item: cls(
                label,
                item["method"],
                normalise_params(item["method"], {k: v for k, v in item.items() if k not in ENTRY_KEYS}, where),
                _optional_positive(where, "epochs", item.get("epochs")),
                _optional_positive(where, "lr", item.get("lr")),
            ),
        )

    @classmethod
    def to_config(cls, entries: tuple[MethodEntry, ...]) -> dict[str, dict[str, Any]]:
        """The inverse of ``from_config``, with only the parameters that differ from the method's
        defaults (what a parameters cell or a YAML file would say)."""
        table = {}
        for entry in entries:
            defaults = params_class(entry.method)().to_dict()
            item: dict[str, Any] = {"method": entry.method}
            item.update({k: list(v) if isinstance(v, tuple) else v for k, v in entry.params if defaults.get(k) != v})
            item.update({k: getattr(entry, k) for k in ("epochs", "lr") if getattr(entry, k) is not None})
            table[entry.label] = item
        return table

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.params)

    def with_params(self, **changes: Any) -> MethodEntry:
        """The same entry with some parameters changed (validated again)."""
        params = normalise_params(self.method, {**self.values, **changes}, f"method {self.label!r}")
        return dataclasses.replace(self, params=params)

    def schedule(self, epochs: float, lr: float) -> tuple[float, float]:
        """The epochs and learning rate this entry trains at: its own where it sets them, else the
        chapter's ``epochs`` and ``lr``."""
        return (epochs if self.epochs is None else self.epochs, lr if self.lr is None else self.lr)

    def describe(self) -> str:
        """The parameters that differ from the method's defaults, as name=value text."""
        changed = {k: v for k, v in self.to_config((self,))[self.label].items() if k != "method"}
        return ", ".join(f"{k}={v}" for k, v in changed.items()) or "the method's defaults"


def method_table(value: Mapping[str, Mapping[str, Any]]) -> tuple[MethodEntry, ...]:
    """A chapter config's default ``methods``, written as its YAML would be."""
    return MethodEntry.from_config("methods", value)
