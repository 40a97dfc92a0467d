"""YAML config files and the book's profiles (``book/profiles/<name>.yml``).

A profile or config file has one section per chapter; a section's keys are the
fields of that chapter's config dataclass. Reading them is all this module does:
validation belongs to ``robinterp.config``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from robinterp.config import ConfigError, load_bounded_yaml
from robinterp.paths import project_root

PROFILES = ("smoke", "default", "long", "paper")
BESIDE = "paper"
"""The profile whose verdicts the scoreboard shows beside each claim's, where it was run
(``robinterp.reports.scoreboard``)."""


def profile_path(profile: str) -> Path:
    return project_root() / "book" / "profiles" / f"{profile}.yml"


MAX_CONFIG_BYTES = 1_000_000
"""A config file is a few hundred bytes; anything past this is refused unread."""


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping: a missing or unreadable file (a folder, a pipe, binary or non-UTF-8
    content, over ``MAX_CONFIG_BYTES``), a syntax error, a key given twice or too many aliases is a
    one-line ConfigError naming the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file (a folder, a pipe or a device); give a YAML file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read config file {path} ({err.strerror}); check its permissions") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {path} is over {MAX_CONFIG_BYTES // 1_000_000} MB; a config is a few hundred bytes of YAML"
        )
    try:
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\0"), raw.index(b"\0") + 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8 YAML") from None
    try:
        data = load_bounded_yaml(text)
    except ConfigError as err:
        raise ConfigError(f"{path} {err}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of chapter names to settings, got {type(data).__name__}")
    return data


def profile_overrides(profile: str, chapter: str) -> dict[str, Any]:
    """The overrides a profile sets for one chapter."""
    known(profile)
    return section(load_yaml(profile_path(profile)), chapter, profile_path(profile))


def known(profile: str) -> str:
    """``profile``, or a one-line error naming the closest of the profiles."""
    if profile not in PROFILES:
        hint = difflib.get_close_matches(profile, PROFILES, n=1)
        also = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"unknown profile {profile!r}{also}; choose one of {', '.join(PROFILES)}")
    return profile


LADDER_KEY = "ladder"
"""A profile's top-level setting (not a chapter's section): the budget factors ``robinterp ladder``
climbs under it."""


def ladder_rungs(profile: str | None) -> tuple[float, ...] | None:
    """The rungs a profile sets for ``robinterp ladder`` (None: it sets none)."""
    if profile is None:
        return None
    path = profile_path(known(profile))
    rungs = load_yaml(path).get(LADDER_KEY)
    if rungs is None:
        return None
    if not isinstance(rungs, list) or not all(isinstance(r, int | float) and not isinstance(r, bool) for r in rungs):
        raise ConfigError(f"{path}: {LADDER_KEY} must be a list of budget factors (e.g. [1, 2, 4]), got {rungs!r}")
    return tuple(float(r) for r in rungs)


def section(data: Mapping[str, Any], chapter: str, path: Path) -> dict[str, Any]:
    """A chapter's section of a profile or config file (empty when absent)."""
    value = data.get(chapter)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: section {chapter!r} must be a mapping of settings, got {type(value).__name__}")
    return dict(value)
