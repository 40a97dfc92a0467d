"""Where the project, the data and the cache live (environment variables override)."""

from __future__ import annotations

import os
from pathlib import Path


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
