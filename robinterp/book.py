"""Helpers a chapter notebook calls: provenance banner, glue, result files."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from robinterp.config import Config, stable_hash

# captum and quantus import tqdm.auto, which warns in a kernel without ipywidgets;
# robinterp prints its own line-based progress, so the warning is only noise on the page.
warnings.filterwarnings("ignore", message="IProgress not found")
from robinterp.paths import build_root
from robinterp.provenance import provenance


def show_provenance(cfg: Config, profile: str) -> dict[str, Any]:
    """Print what this page was executed with, as an admonition at the top of the page."""
    info = provenance()
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    seeds = getattr(cfg, "seeds", getattr(cfg, "seed", "n/a"))
    display(Markdown(
        f":::{{note}}\nExecuted under profile **{profile}** (config `{stable_hash(cfg)}`), "
        f"seeds {list(seeds) if isinstance(seeds, tuple) else seeds}, commit `{info['commit']}`, "
        f"{info['utc']}, on {info['hardware']}.\n\nLibraries: {versions}.\n:::"))
    return info


def config_table(cfg: Config) -> pd.DataFrame:
    """The config as a two-column table (value, meaning); changed values first, with their default."""
    rows = cfg.describe()
    # compared in Python, before pandas turns None into NaN (and NaN != NaN)
    changed = [row["value"] != row["default"] for row in rows]
    df = pd.DataFrame({
        "field": [row["field"] for row in rows],
        "value": [f"{row['value']} (default: {row['default']})" if c else str(row["value"])
                  for row, c in zip(rows, changed)],
        "meaning": [row["doc"] for row in rows],
        "changed": changed})
    df = df.sort_values("changed", ascending=False, kind="stable")
    return df.drop(columns="changed").set_index("field")


def for_display(df: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """A table as a page shows it: numbers rounded, missing values as an em dash, not NaN."""
    rounded = df.round(digits)
    return rounded.astype(object).where(rounded.notna(), "\u2014")


def glue_key(*parts: Any) -> str:
    """A glue name from labels like "SGT k=0.3": letters, digits and underscores only."""
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(str(p) for p in parts)).strip("_")


def glue(name: str, value: Any) -> Any:
    """myst-nb's glue without displaying the value in place; returns it."""
    from myst_nb import glue as myst_glue

    myst_glue(name, plain(value), display=False)
    return value


def plain(value: Any) -> Any:
    """numpy scalars as Python numbers: numpy 2 writes repr(np.float64(1.5)) as
    'np.float64(1.5)', which myst-nb's {glue:text}`name:.1f` cannot format."""
    return value.item() if isinstance(value, np.generic) else value


def save_table(df: pd.DataFrame, chapter: str, name: str, profile: str) -> Path:
    """Write a result table as CSV under ``_build/results/<profile>/<chapter>/``."""
    folder = build_root() / "results" / profile / chapter
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    df.to_csv(path, index=False)
    return path


def mean_sd(df: pd.DataFrame, by: list[str], value: str, scale: float = 1.0,
            digits: int = 1) -> pd.DataFrame:
    """mean +- sd over seeds as strings, one row per group (for tables in prose)."""
    g = df.groupby(by)[value].agg(["mean", "std", "count"]).reset_index()
    g["mean +- sd"] = [f"{scale * m:.{digits}f} +- {scale * (s if s == s else 0):.{digits}f}"
                       for m, s in zip(g["mean"], g["std"])]
    return g
