"""Frozen dataclass configs: validation and field docs.

A chapter's config is a frozen dataclass whose fields carry attribute docstrings
(the string literal under each field, as in CleanRL). Its defaults are the
papermill ``parameters`` cell of the chapter's notebook; a profile (a YAML file
under ``book/profiles/``) overrides some of them. Every value is checked when the
config is built, so a wrong key or value stops the run before anything is
trained or written.

Cache keys are computed in ``robinterp.codehash``; YAML files and profiles are read
in ``robinterp.profiles``.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import math
import re
import reprlib
import textwrap
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from robinterp import RobinterpError

# Bounds on what a config may hold and what an error may quote: a few hundred bytes of YAML
# aliases must not become a multi-megabyte message, a minute of parsing or ten thousand seeds.
MAX_MESSAGE = 300
MAX_ITEMS = 100
"""Elements a list or table field may hold."""
MAX_INT = 2**31 - 1
"""Largest integer a field may hold (numpy seeds must be below 2**32; no size needs more)."""
MAX_ALIASES = 100
MAX_VALUES = 100_000
"""Values a YAML document may expand to, counting every use of an alias."""
# nesting and digits a config value may have: no setting nests deeper than a few levels or needs more
# than a few digits (PyYAML recurses per level, and Python refuses to read over 4300 digits)
MAX_DEPTH = 20
MAX_DIGITS = 30


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """The first line of ``message``, at most ``limit`` characters: its head (what failed) and its
    tail (how to fix it) around an ellipsis."""
    lines = str(message).strip().splitlines()
    line = lines[0] if lines else ""
    if len(line) <= limit:
        return line
    tail = limit // 3
    return f"{line[: limit - tail - 3]} … {line[-tail + 2 :]}"


def shown(value: Any) -> str:
    """A value as an error message quotes it: its repr, cut short."""
    short = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
    short.maxstring = short.maxother = 60
    short.maxlist = short.maxtuple = short.maxset = 6
    short.maxdict, short.maxlevel = 4, 2
    return short.repr(value)


class ConfigError(RobinterpError):
    """A config key or value that cannot be used; the message (one line, at most ``MAX_MESSAGE``
    characters) says how to fix it."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


LABEL_LENGTH = 40
PLAIN_LABEL = re.compile(r"[^\W_][\w ._=()+,'/-]*")
"""A label (of a method, an attack) names table rows and figure legends and is written into HTML
and markdown, so it is a plain name: a letter or digit, then letters, digits, spaces and
. _ = ( ) + , ' / - (no newline, backquote, asterisk, bracket or other markup)."""


def check_label(name: str, label: Any) -> None:
    """ConfigError unless ``label`` (a key of the table ``name``) is a plain name."""
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"{name}: every label must be a non-empty string, got {label!r}")
    if len(label) > LABEL_LENGTH or not PLAIN_LABEL.fullmatch(label):
        cut = label if len(label) <= 20 else label[:20] + "..."
        raise ConfigError(
            f"{name}: label {cut!r} is not a plain name (at most {LABEL_LENGTH} letters, digits, "
            "spaces and . _ = ( ) + , ' / -)"
        )


def entry_table(
    name: str, value: Any, kind: str, example: str, make: Callable[[str, str, Mapping[str, Any]], Any]
) -> tuple[Any, ...]:
    """The entries of a chapter's table setting ``{label: {<kind>: NAME, ...}}`` (its methods,
    attacks or metrics): a non-empty mapping, every label a plain name, every item a mapping that
    names its unit. ``make(where, label, item)`` builds one entry; an error it raises is prefixed by
    where the entry is (a ConfigError says so itself)."""
    if not isinstance(value, Mapping) or not value:
        got = "an empty mapping" if isinstance(value, Mapping) else type(value).__name__
        raise ConfigError(f"{name} must map labels to {kind}s, e.g. {example}; got {got}")
    entries = []
    for label, item in value.items():
        where = f"{name}[{label!r}]"
        check_label(name, label)
        if not isinstance(item, Mapping) or not isinstance(item.get(kind), str):
            raise ConfigError(f"{where} must be a mapping with a {kind!r} name, got {shown(item)}")
        try:
            entries.append(make(where, label, item))
        except ConfigError:
            raise
        except RobinterpError as err:
            raise ConfigError(f"{where}: {err}") from None
    return tuple(entries)


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple | None = None,
    min_items: int = 0,
) -> Any:
    """A dataclass field with a default and the range or choices it must satisfy.

    ``low``/``high`` bound numbers (and every element of a tuple of numbers);
    ``*_open`` makes a bound strict. ``choices`` lists the allowed values (for a
    tuple field: the allowed elements). ``min_items``: the fewest values a tuple field lists
    (1 where an empty list would run nothing, or run something else than it says). A tuple
    field never lists a value twice (it would compute and show every row twice).
    """
    meta = {
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
        "min_items": min_items,
    }
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
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


# the longest text a list or table parameter may be given as (a method table is a few hundred bytes)
MAX_PARAMETER_TEXT = 20_000


def _is_collection(tp: Any) -> bool:
    """Whether a field of type ``tp`` holds a list or a table (a tuple, maybe optional)."""
    args = (
        [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType)
        else [tp]
    )
    return any(typing.get_origin(a) is tuple for a in args)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice (it would silently keep the last) and
    more than ``MAX_ALIASES`` aliases."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    f"line {mark.line + 1}: more than {MAX_ALIASES} aliases (*name); write the values out"
                )
        self.depth += 1
        if self.depth > MAX_DEPTH:  # PyYAML recurses per level: Python's own limit would end it
            mark = self.peek_event().start_mark
            raise ConfigError(f"line {mark.line + 1}: values nested more than {MAX_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: Any) -> Any:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_DIGITS:  # Python refuses more than 4300 with a message about sys.set_int_max_str_digits
            raise ConfigError(
                f"line {node.start_mark.line + 1}: a whole number of {digits} digits; at most {MAX_DIGITS}"
            )
        return super().construct_yaml_int(node)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {shown(key)} is given twice; keep one")
            if isinstance(key, typing.Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _count_values(value: Any, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(
            f"the YAML expands to more than {MAX_VALUES} values (through aliases?); write a smaller config"
        )
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        _count_values(child, budget)


def load_bounded_yaml(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` within the bounds above (aliases, expanded size, keys given
    twice: one-line ConfigErrors); syntax errors raise yaml.YAMLError as safe_load does."""
    loader = _BoundedLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    _count_values(data, [MAX_VALUES])
    return data


def _yaml_value(name: str, text: str) -> Any:
    """A list or mapping written as YAML text (``-p seeds "[0, 1]"``); other text is returned as
    it is, for validation to refuse with the field's own message."""
    if len(text) > MAX_PARAMETER_TEXT:
        raise ConfigError(f"{name}: the text is {len(text)} characters long; at most {MAX_PARAMETER_TEXT}")
    try:
        value = load_bounded_yaml(text)
    except ConfigError as err:
        raise ConfigError(f"{name}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{name}: {shown(text)} is not valid YAML ({getattr(err, 'problem', err)})") from None
    return value if isinstance(value, (list, dict)) else text


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
        args = typing.get_args(tp)
        if isinstance(value, (list, tuple, dict)) and len(value) > MAX_ITEMS:
            raise ConfigError(f"{name} holds {len(value)} values; at most {MAX_ITEMS}")
        if len(args) == 2 and args[1] is Ellipsis and hasattr(args[0], "from_config"):
            return args[0].from_config(name, value)  # a table of entries (a chapter's methods)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {type(value).__name__} {shown(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{name} must have {len(args)} elements, got {len(value)}")
        return tuple(coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {type(value).__name__} {shown(value)}")
        if abs(value) > MAX_INT:
            raise ConfigError(f"{name} = {shown(value)} is out of range: it must be at most {MAX_INT} in size")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got str {shown(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {type(value).__name__} {shown(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {type(value).__name__} {shown(value)}")
        return value
    raise TypeError(f"config field {name}: unsupported type {tp!r}")


def _check_range(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    if value is None:  # an optional field left unset: no range or choice applies
        return
    if isinstance(value, tuple):
        if len(value) < meta.get("min_items", 0):
            raise ConfigError(f"{name} must list at least {meta['min_items']} value(s), got none")
        seen: list[Any] = []
        for v in value:
            if isinstance(v, (str, int, float)) and v in seen:
                raise ConfigError(f"{name} lists {shown(v)} twice; list each value once")
            seen.append(v)
    values = value if isinstance(value, tuple) else (value,)
    choices = meta.get("choices")
    for v in values:
        if choices is not None and v not in choices:
            hint = difflib.get_close_matches(str(v), [str(c) for c in choices], n=1)
            also = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{name} = {shown(v)} is not one of {', '.join(map(repr, choices))}{also}")
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
    def from_mapping(cls, values: Mapping[str, Any], source: str = "config") -> Config:
        """Build from a mapping (a YAML section, papermill parameters); unknown keys fail."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                hint = difflib.get_close_matches(str(key), names, n=1)
                also = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ConfigError(
                    f"{source}: unknown key {shown(key)} for {cls.__name__}{also} (valid keys: {', '.join(names)})"
                )
        try:
            return cls(**values)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> Config:
        """Build from a notebook's globals after papermill injected its parameters.

        ``papermill -p seeds "[0, 1]"`` injects text: a list or table field given as text is
        read as YAML (as ``-y`` would), and what does not parse is a one-line error."""
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            value = namespace[f.name]
            if isinstance(value, str) and _is_collection(hints[f.name]):
                value = _yaml_value(f.name, value)
            values[f.name] = value
        return cls.from_mapping(values, source="notebook parameters")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_parameters(self) -> dict[str, Any]:
        """Values as papermill parameters (tuples become lists: JSON has no tuples; a table of
        entries becomes the mapping a YAML file would hold)."""
        hints = typing.get_type_hints(type(self))
        result = {}
        for name, value in self.to_dict().items():
            args = typing.get_args(hints[name])
            if args and hasattr(args[0], "to_config"):
                result[name] = args[0].to_config(value)
            else:
                result[name] = list(value) if isinstance(value, tuple) else value
        return result

    def describe(self) -> list[dict[str, Any]]:
        """One row per field: name, value, default, doc; for the chapter's config table."""
        docs = field_docs(type(self))
        return [
            {"field": f.name, "value": getattr(self, f.name), "default": f.default, "doc": docs.get(f.name, "")}
            for f in dataclasses.fields(self)
        ]


def parse_settings(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as a mapping, each value read as YAML (``seeds=[0, 1]``,
    ``epochs=2``, ``explainer=integrated_gradients``) within the bounds of a config file."""
    settings: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE (a setting and a YAML value), got {shown(item)}")
        if key in settings:
            raise ConfigError(f"--set {key} is given twice; keep one")
        try:
            settings[key] = load_bounded_yaml(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(
                f"--set {key}: {shown(text)} is not valid YAML ({getattr(err, 'problem', err)})"
            ) from None
    return settings


def settings_label(label: str, settings: Mapping[str, Any]) -> str:
    """The label of a run with ``--set`` settings: its profile's or file's, and a digest of the
    settings, so that its outputs never overwrite the plain profile's."""
    if not settings:
        return label
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{label}-set-{digest}"
