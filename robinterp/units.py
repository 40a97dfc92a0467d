"""Finding the units of a folder (training methods, attacks, explanation metrics): the folder's
modules and those a user names in an environment variable, each imported once.

Every folder of units registers the same way: a module per unit (a name starting with an
underscore holds what several units share and is skipped), plus modules outside the package
named in ``ROBINTERP_<KIND>_MODULES`` (comma-separated dotted names). Keys nothing: a unit's
own module keys what it computes.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

from robinterp.config import ConfigError


def module_names(package: str, path: Iterable[str], environment: str) -> tuple[str, ...]:
    """The package's unit modules, then those the environment variable names."""
    inside = [f"{package}.{info.name}" for info in pkgutil.iter_modules(path) if not info.name.startswith("_")]
    return (*inside, *module_names_outside(environment))


def module_names_outside(environment: str) -> tuple[str, ...]:
    """The modules outside the package that the environment variable names."""
    return tuple(name.strip() for name in os.environ.get(environment, "").split(",") if name.strip())


def imported(names: Iterable[str], package: str, environment: str, kind: str) -> Iterator[tuple[str, ModuleType]]:
    """Each module, imported; one that fails ends in one line naming it and the cause."""
    for dotted in names:
        try:
            module = importlib.import_module(dotted)
        except Exception as err:  # any failure: the registry names the module and the cause
            where = "" if dotted.startswith(f"{package}.") else f"{environment} names it; "
            cause = str(err).splitlines()[0] if str(err) else ""
            raise ConfigError(
                f"{kind} module {dotted!r} does not import ({where}{type(err).__name__}: {cause})"
            ) from None
        yield dotted, module


def registered(
    names: Iterable[str], package: str, environment: str, kind: str, attribute: str, unit: type
) -> dict[str, Any]:
    """Every module's ``<attribute> = <unit>(...)``, by the unit's name (attacks' ``ATTACK``,
    metrics' ``METRIC``); a module without one, or two units of one name, is a one-line error."""
    found: dict[str, Any] = {}
    for dotted, module in imported(names, package, environment, kind):
        value = getattr(module, attribute, None)
        if not isinstance(value, unit):
            raise ConfigError(f"{dotted} defines no {attribute} = {unit.__name__}(...)")
        if value.name in found:
            raise ConfigError(f"two {kind}s are called {value.name!r} ({dotted} and another module); rename one")
        found[value.name] = value
    return found
