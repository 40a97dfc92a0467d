"""Where the project, the data and the cache live (environment variables override)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from robinterp import RobinterpError
from robinterp.config import ConfigError

# Set by ``robinterp.runner`` for the kernel it starts: the label it runs under and the staging
# folder this run's tables go to (published under results/<label>/ only when the run succeeds).
LABEL_ENV, RESULTS_ENV = "ROBINTERP_LABEL", "ROBINTERP_RESULTS"
RUN_FILE = "run.json"
"""Beside a run's published tables: which run made them (label, config hash, commit)."""
COSTS_FILE = "costs.json"
"""Beside a run's tables: what the run cost (``robinterp.book.save_costs``)."""
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def project_root() -> Path:
    """The repository root when the package runs from a checkout, else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "_toc.yml").exists() else Path.cwd()


def data_root() -> Path:
    """Data sets: ``$ROBINTERP_DATA``, else ``data/`` in the repository."""
    return Path(os.environ.get("ROBINTERP_DATA") or project_root() / "data")


def cache_root() -> Path:
    """Trained models and results: ``$ROBINTERP_CACHE``, else ``.cache/`` in the repository."""
    return Path(os.environ.get("ROBINTERP_CACHE") or project_root() / ".cache")


def build_root() -> Path:
    """Executed notebooks and the HTML book: ``$ROBINTERP_BUILD``, else ``_build/``."""
    return Path(os.environ.get("ROBINTERP_BUILD") or project_root() / "_build")


def plain_name(value: Any, what: str) -> str:
    """``value`` if it is a plain name (letters, digits, ``_.-``; no path), else a ConfigError."""
    if not isinstance(value, str) or not PLAIN_NAME.fullmatch(value):
        raise ConfigError(f"{what} must be a plain name (letters, digits, _ . -; at most 100), got {str(value)[:60]!r}")
    return value


def no_link_below(root: Path, *paths: Path) -> None:
    """Refuse, with one line, a path under ``root`` that passes through a symbolic link below it:
    the build folder is shared on a cluster, and a link planted in it (results/<label> pointing
    elsewhere, say) would have a run delete and overwrite files outside it. ``root`` itself may
    be a link (the user's choice); a path not under ``root`` is not checked."""
    root = Path(root)
    for path in map(Path, paths):
        if not path.is_relative_to(root):
            continue
        current = root
        for part in path.relative_to(root).parts:
            current = current / part
            if current.is_symlink():
                raise RobinterpError(
                    f"{current} is a symbolic link: the build folder never follows one out of itself; remove it"
                )
