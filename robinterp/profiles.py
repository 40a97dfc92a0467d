"""YAML config files and the book's profiles (``book/profiles/<name>.yml``).

A profile or config file has one section per chapter; a section's keys are the
fields of that chapter's config dataclass. Reading them is all this module does:
validation belongs to ``robinterp.config``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Mapping

import yaml

from robinterp.config import ConfigError
from robinterp.paths import project_root

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
