"""Frozen dataclass configs: validation, field docs, hashing, profiles.

A chapter's config is a frozen dataclass whose fields carry attribute docstrings
(the string literal under each field, as in CleanRL). Its defaults are the
papermill ``parameters`` cell of the chapter's notebook; a profile (a YAML file
under ``book/profiles/``) overrides some of them. Every value is checked when the
config is built, so a wrong key or value stops the run before anything is
trained or written.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import hashlib
import inspect
import json
import math
import textwrap
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from robinterp import RobinterpError, __version__
from robinterp.paths import project_root


class ConfigError(RobinterpError):
    """A config key or value that cannot be used; the message says how to fix it."""


def param(default: Any, *, low: float | None = None, high: float | None = None,
          low_open: bool = False, high_open: bool = False,
          choices: tuple | None = None) -> Any:
    """A dataclass field with a default and the range or choices it must satisfy.

    ``low``/``high`` bound numbers (and every element of a tuple of numbers);
    ``*_open`` makes a bound strict. ``choices`` lists the allowed values (for a
    tuple field: the allowed elements).
    """
    meta = {"low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "choices": choices}
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass, read from its source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise a one-line ConfigError."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(name, value, inner[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{name} must have {len(args)} elements, got {len(value)}")
        return tuple(coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got str {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"config field {name}: unsupported type {tp!r}")


def _check_range(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    choices = meta.get("choices")
    for v in values:
        if choices is not None and v not in choices:
            hint = difflib.get_close_matches(str(v), [str(c) for c in choices], n=1)
            also = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{name} = {v!r} is not one of {', '.join(map(repr, choices))}{also}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            low, high = meta.get("low"), meta.get("high")
            if low is not None and (v < low or (meta.get("low_open") and v == low)):
                op = ">" if meta.get("low_open") else ">="
                raise ConfigError(f"{name} = {v!r} is out of range: it must be {op} {low}")
            if high is not None and (v > high or (meta.get("high_open") and v == high)):
                op = "<" if meta.get("high_open") else "<="
                raise ConfigError(f"{name} = {v!r} is out of range: it must be {op} {high}")


class Config:
    """Mixin for a chapter's frozen dataclass config."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            label = f"{type(self).__name__}.{f.name}"
            value = coerce(label, getattr(self, f.name), hints[f.name])
            _check_range(label, value, f.metadata)
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Checks across fields; override in a chapter's config."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "config") -> "Config":
        """Build from a mapping (a YAML section, papermill parameters); unknown keys fail."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                hint = difflib.get_close_matches(str(key), names, n=1)
                also = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ConfigError(f"{source}: unknown key {key!r} for {cls.__name__}{also}"
                                  f" (valid keys: {', '.join(names)})")
        try:
            return cls(**values)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> "Config":
        """Build from a notebook's globals after papermill injected its parameters."""
        return cls.from_mapping({f.name: namespace[f.name] for f in dataclasses.fields(cls)},
                                source="notebook parameters")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_parameters(self) -> dict[str, Any]:
        """Values as papermill parameters (tuples become lists: JSON has no tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.to_dict().items()}

    def describe(self) -> list[dict[str, Any]]:
        """One row per field: name, value, default, doc; for the chapter's config table."""
        docs = field_docs(type(self))
        return [{"field": f.name, "value": getattr(self, f.name), "default": f.default,
                 "doc": docs.get(f.name, "")} for f in dataclasses.fields(self)]


# Modules that only present results (pages, plots, terminal output, the paper's quoted
# numbers): editing them must not retrain every model of the book.
PRESENTATION_MODULES = frozenset({"__main__.py", "book.py", "cli.py", "paper_numbers.py", "plots.py",
                                  "progress.py", "provenance.py", "runner.py"})


def _module_path(package: Path, dotted: str) -> Path | None:
    """The source file of ``robinterp.x.y`` inside ``package``, if it is one."""
    parts = dotted.split(".")[1:]
    candidates = [package.joinpath(*parts).with_suffix(".py"), package.joinpath(*parts, "__init__.py")]
    return next((c for c in candidates if parts and c.exists()), None)


def module_closure(package: Path, roots: Iterable[str]) -> list[Path]:
    """Source files of ``roots`` (dotted names) and every robinterp module they import,
    at top level or inside functions, transitively; the package's __init__ always."""
    name = package.name
    todo = [path for root in roots if (path := _module_path(package, root))]
    missing = [root for root in roots if not _module_path(package, root)]
    if missing:
        raise ConfigError(f"no module {missing[0]!r} in {package}")
    seen = {package / "__init__.py"}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for dotted in imported:
                if dotted == name or dotted.startswith(name + "."):
                    target = _module_path(package, dotted)
                    if target and target not in seen:
                        todo.append(target)
    return sorted(seen)


def source_digest(package: Path, roots: Iterable[str] | None = None) -> str:
    """sha256 of a package's computing source files: all of them, or those ``roots`` import.

    Presentation modules are left out either way.
    """
    files = sorted(package.rglob("*.py")) if roots is None else module_closure(package, roots)
    digest = hashlib.sha256()
    for path in files:
        relative = path.relative_to(package).as_posix()
        if relative in PRESENTATION_MODULES:
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
    return source_digest(Path(__file__).resolve().parent, roots)


def stable_hash(obj: Any, length: int = 16, code: tuple[str, ...] | None = None) -> str:
    """A short sha256 of a config (or any JSON-able value), the version and the code.

    Version and code (``code_version(code)``) are part of the key so that a change
    to what a method computes never reads results cached by the code before it.
    """
    if dataclasses.is_dataclass(obj):
        payload = {"type": type(obj).__name__, "fields": dataclasses.asdict(obj)}
    else:
        payload = obj
    text = json.dumps({"robinterp": __version__, "code": code_version(code), "value": payload},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


PROFILES = ("smoke", "default", "paper")


def profile_path(profile: str) -> Path:
    return project_root() / "book" / "profiles" / f"{profile}.yml"


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a syntax error is a one-line ConfigError."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of chapter names to settings, "
                          f"got {type(data).__name__}")
    return data


def profile_overrides(profile: str, chapter: str) -> dict[str, Any]:
    """The overrides a profile sets for one chapter."""
    if profile not in PROFILES:
        hint = difflib.get_close_matches(profile, PROFILES, n=1)
        also = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"unknown profile {profile!r}{also}; choose one of {', '.join(PROFILES)}")
    return section(load_yaml(profile_path(profile)), chapter, profile_path(profile))


def section(data: Mapping[str, Any], chapter: str, path: Path) -> dict[str, Any]:
    """A chapter's section of a profile or config file (empty when absent)."""
    value = data.get(chapter)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: section {chapter!r} must be a mapping of settings, "
                          f"got {type(value).__name__}")
    return dict(value)
