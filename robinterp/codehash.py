"""Cache identity: which source code a cached entry depends on, and the hash of it.

An entry's key hashes its config, the package version, the versions of the libraries
that compute its numbers (``NUMERIC_LIBRARIES``) and the source of the modules that
compute it, followed through their imports (at top level or inside functions). Modules that cannot change a computed result are left out, and their
own imports are not followed: they validate or present (config validation, YAML
and profiles, the cache's bookkeeping, progress lines, pages, plots, the CLI, the
method and measure registries' discovery). So rewording an error message or a plot retrains
nothing, while a fix to a loss, an attack, a model or the data retrains exactly
the models that run it.

A module outside the package (a user's training method, see
``robinterp.methods``) keys an entry by its own source and the package modules it
imports.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from robinterp import RobinterpError, __version__

PACKAGE = Path(__file__).resolve().parent

# Modules (paths inside the package) whose source never changes a computed value.
NEUTRAL_MODULES = frozenset(
    {
        # presentation: pages, plots, terminal output, the papers' quoted numbers, verdicts
        "__main__.py",
        "book.py",
        "cli.py",
        "paper_numbers.py",
        "plots.py",
        "progress.py",
        "provenance.py",
        "runner.py",
        "chapters.py",
        "notebooks.py",
        "site.py",
        "ladder.py",
        "executors.py",
        "stamps.py",
        "reports/__init__.py",
        "titles.py",
        # bookkeeping: validation and field docs, YAML and profiles, hashing, the cache's files,
        # folders, and the registry that discovers training methods (each method keys its own)
        "config.py",
        "profiles.py",
        "codehash.py",
        "cache.py",
        "paths.py",
        "data_sources.py",
        "units.py",
        "methods/__init__.py",
        "measures/__init__.py",
        "attacks/__init__.py",
        # declarations: names, parameters and options whose every value is in the key of what uses
        # them (complete, normalised), and metric settings checked against the metrics' own
        # signatures; settings/teachers.py derives a teacher, so it keys
        "settings/__init__.py",
        "settings/choices.py",
        "settings/methods.py",
        "settings/attacks.py",
        "settings/metrics.py",
        "configs/__init__.py",
    }
)


NUMERIC_LIBRARIES = ("torch", "torchvision", "captum", "quantus", "numpy", "scipy")
"""The libraries whose version can change a cached number (kernels, attributions, metrics, the
statistics): an entry computed under other versions is computed again, never served."""


def installed_version(name: str, missing: str = "absent") -> str:
    """The installed version of the distribution ``name``, or ``missing``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return missing


@functools.cache
def numeric_versions() -> dict[str, str]:
    """The installed version of every ``NUMERIC_LIBRARIES`` entry ("absent" if not installed)."""
    return {name: installed_version(name) for name in NUMERIC_LIBRARIES}


def _neutral(relative: str) -> bool:
    return relative in NEUTRAL_MODULES or relative.startswith("reports/")


def _module_path(package: Path, dotted: str) -> Path | None:
    """The source file of ``robinterp.x.y`` inside ``package``, if it is one."""
    parts = dotted.split(".")[1:]
    candidates = [package.joinpath(*parts).with_suffix(".py"), package.joinpath(*parts, "__init__.py")]
    return next((c for c in candidates if parts and c.exists()), None)


def _outside_path(dotted: str) -> Path | None:
    """The source file of an importable module outside the package (a user's method)."""
    try:
        found = importlib.util.find_spec(dotted)
    except (ImportError, ValueError):
        return None
    return Path(found.origin) if found and found.origin and found.origin.endswith(".py") else None


def module_closure(package: Path, roots: Iterable[str]) -> list[Path]:
    """Source files of ``roots`` (dotted names) and every package module they import,
    transitively, except the imports of neutral modules; the package's __init__ always.

    A root outside the package is resolved on ``sys.path`` and walked the same way.
    """
    name = package.name
    todo: list[Path] = []
    for root in roots:
        inside = root == name or root.startswith(name + ".")
        path = _module_path(package, root) if inside else _outside_path(root)
        if path is None:
            raise RobinterpError(f"no module {root!r} in {package} or on sys.path")
        todo.append(path)
    seen = {package / "__init__.py"}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.is_relative_to(package) and _neutral(path.relative_to(package).as_posix()):
            continue
        for dotted in _absolute_imports(path.read_text()):
            if dotted == name or dotted.startswith(name + "."):
                target = _module_path(package, dotted)
                if target and target not in seen:
                    todo.append(target)
    return sorted(seen)


@functools.lru_cache(maxsize=1024)
def _absolute_imports(source: str) -> tuple[str, ...]:
    """Every dotted name a module's source imports absolutely, at top level or inside functions
    (``from a import b`` gives a and a.b: b may be a module). Parsed once per distinct source: a
    run keys every cached entry by the closure of its modules, and parsing was most of that."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return tuple(found)


def source_digest(package: Path, roots: Iterable[str] | None = None) -> str:
    """sha256 of a package's computing source files: all of them, or those ``roots`` import.

    Neutral modules are left out either way; a file outside the package counts by
    its own name.
    """
    files = sorted(package.rglob("*.py")) if roots is None else module_closure(package, roots)
    digest = hashlib.sha256()
    for path in files:
        inside = path.is_relative_to(package)
        relative = path.relative_to(package).as_posix() if inside else path.name
        if inside and _neutral(relative):
            continue
        digest.update(relative.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def code_version(roots: tuple[str, ...] | None = None) -> str:
    """sha256 of the computing source files (all, or those the modules ``roots`` import).

    Part of every cache key: a fix to an attack, a loss or a model must never
    read models or results that the old code computed, and a new chapter module
    must not retrain the models of the others.
    """
    return source_digest(PACKAGE, roots)


def stable_hash(obj: Any, length: int = 16, code: tuple[str, ...] | None = None) -> str:
    """A short sha256 of a config (or any JSON-able value), the version, the code and the
    numeric libraries' versions.

    Version and code (``code_version(code)``) are part of the key so that a change
    to what a method computes never reads results cached by the code before it; the
    libraries' versions (``numeric_versions``) so that an upgrade of torch or scipy
    never serves numbers computed by the old release.
    """
    if dataclasses.is_dataclass(obj):
        payload = {"type": type(obj).__name__, "fields": dataclasses.asdict(obj)}
    else:
        payload = obj
    key = {"robinterp": __version__, "code": code_version(code), "libraries": numeric_versions(), "value": payload}
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
