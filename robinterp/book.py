"""Helpers a chapter notebook calls: provenance banner, glue, result files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from robinterp import RobinterpError, cache
from robinterp.attacks import AttackEntry
from robinterp.codehash import stable_hash
from robinterp.config import Config
from robinterp.methods import MethodEntry, get_method
from robinterp.paths import COSTS_FILE, LABEL_ENV, RESULTS_ENV, RUN_FILE, build_root, plain_name
from robinterp.provenance import provenance
from robinterp.settings.metrics import MetricEntry


def _show_one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    shell.showtraceback((etype, value, tb), exception_only=True)


def _one_line_errors() -> None:
    """In a kernel, robinterp's own errors (a bad parameter, missing data: messages that say what
    to fix) show as their one line, not as a traceback through the package; papermill still stops
    at the cell and names the error."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((RobinterpError,), _show_one_line)


_one_line_errors()


@dataclasses.dataclass(frozen=True)
class ResultsPlace:
    """Where this kernel's result tables go, and what the page says ran."""

    root: Path
    """Tables go to ``root/<chapter>/<name>.csv``."""
    label: str
    """The profile or config file the runner ran, or ``adhoc-<config hash>`` outside it."""
    by_runner: bool
    config: str = ""
    """The config's hash (``stable_hash``)."""
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The commit and time of the run (``robinterp.provenance``), for its ``run.json``."""
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The config's settings, for its ``costs.json``."""
    hardware: str = ""
    started: float = 0.0
    """``time.perf_counter()`` when the page started its work."""


_place: ResultsPlace | None = None


def results_place(cfg: Config, profile: str) -> ResultsPlace:
    """Where a run's tables go. Under ``robinterp run``/``book`` (the runner sets
    ``ROBINTERP_LABEL`` and ``ROBINTERP_RESULTS``): the runner's staging folder, labelled by what
    it ran. Anywhere else (papermill by hand, JupyterLab) the ``profile`` parameter is only a name
    for the page and never a folder: tables go to ``results/adhoc-<config hash>/``, named by what
    really ran, so they can neither overwrite a profile's results nor leave the build folder."""
    plain_name(profile, "the notebook parameter profile")
    label, staging = os.environ.get(LABEL_ENV), os.environ.get(RESULTS_ENV)
    if label == profile and staging:
        return ResultsPlace(Path(staging), label, True)
    adhoc = f"adhoc-{stable_hash(cfg)[:12]}"
    return ResultsPlace(build_root() / "results" / adhoc, adhoc, False)


def show_provenance(cfg: Config, profile: str) -> dict[str, Any]:
    """Print what this page was executed with, as an admonition at the top of the page, and
    decide where its result tables go (``results_place``)."""
    global _place
    info = provenance()
    cache.LEDGER.clear()  # what this page computes or reads from here on: its costs.json
    _place = dataclasses.replace(
        results_place(cfg, profile),
        config=stable_hash(cfg),
        provenance={"commit": info["commit"], "utc": info["utc"]},
        parameters=cfg.to_parameters(),
        hardware=str(info["hardware"]),
        started=time.perf_counter(),
    )
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    seeds = getattr(cfg, "seeds", getattr(cfg, "seed", "n/a"))
    ran = (
        f"Executed under **{_place.label}**"
        if _place.by_runner
        else f"Executed outside `robinterp run` (papermill or Jupyter), so not under a profile: its "
        f"tables are in `results/{_place.label}/`"
    )
    display(
        Markdown(
            f":::{{note}}\n{ran} (config `{stable_hash(cfg)}`), "
            f"seeds {list(seeds) if isinstance(seeds, tuple) else seeds}, commit `{info['commit']}`, "
            f"{info['utc']}, on {info['hardware']}.\n\nLibraries: {versions}.\n:::"
        )
    )
    return info


def _shown(value: Any) -> str:
    """A config value as the table shows it: a chapter's methods by their labels, a tuple as its
    items (not Python's repr: ``(0,)`` reads as 0)."""
    if isinstance(value, tuple) and value and isinstance(value[0], MethodEntry):
        return ", ".join(entry.label for entry in value) + " (the methods table below)"
    if isinstance(value, tuple) and value and isinstance(value[0], AttackEntry):
        return ", ".join(f"{entry.label}: {entry.describe()}" for entry in value)
    if isinstance(value, tuple) and value and isinstance(value[0], MetricEntry):
        return ", ".join(
            entry.label if entry.label == entry.describe() else f"{entry.label}: {entry.describe()}" for entry in value
        )
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) if value else "none"
    return str(value)


def _plain_doc(doc: str) -> str:
    """A field's docstring as a table cell shows it: a cell shows no markup, so the docstring's
    ``literal`` marks go."""
    return re.sub(r"``(.+?)``", r"\1", doc)


def index_in_corner(df: pd.DataFrame) -> pd.DataFrame:
    """The table with its index's name in the header row's first cell, over the index column:
    pandas' HTML gives a named index a second header row of its own, empty but for that name.
    A table indexed by several columns keeps that row, where it names each of them, and so does
    one whose columns are named or have several levels (the corner holds their names)."""
    if (
        isinstance(df.index, pd.MultiIndex)
        or isinstance(df.columns, pd.MultiIndex)
        or df.index.name is None
        or df.columns.name is not None
    ):
        return df
    return df.rename_axis(index=None, columns=df.index.name)


def set_up_tables() -> None:
    """How a chapter's page shows a table (call once, in its set-up cell): whole cells (config
    docs are sentences), and one header row where pandas would give a named index a row of its
    own (``index_in_corner``), for every DataFrame a cell shows."""
    from IPython import get_ipython

    pd.set_option("display.max_colwidth", None)
    shell = get_ipython()
    if shell is not None:  # a kernel (papermill's, JupyterLab's); a plain interpreter shows text
        html = shell.display_formatter.formatters["text/html"]
        html.for_type(pd.DataFrame, lambda df: index_in_corner(df)._repr_html_())


def config_table(cfg: Config) -> pd.DataFrame:
    """The config as a two-column table (value, meaning); changed values first, with their default."""
    rows = cfg.describe()
    # compared in Python, before pandas turns None into NaN (and NaN != NaN)
    changed = [row["value"] != row["default"] for row in rows]
    df = pd.DataFrame(
        {
            "field": [row["field"] for row in rows],
            "value": [
                f"{_shown(row['value'])} (default: {_shown(row['default'])})" if c else _shown(row["value"])
                for row, c in zip(rows, changed)
            ],
            "meaning": [_plain_doc(row["doc"]) for row in rows],
            "changed": changed,
        }
    )
    df = df.sort_values("changed", ascending=False, kind="stable")
    return index_in_corner(df.drop(columns="changed").set_index("field"))


def methods_table(cfg: Config, field: str = "methods") -> pd.DataFrame:
    """One row per method the chapter trains (listed in ``field``): its label, the registered
    method, what it is, the parameters it changes from the method's defaults, and its own
    schedule if any."""
    table = pd.DataFrame(
        [
            {"label": e.label, "method": e.method, "what": get_method(e.method).summary, "settings": e.describe()}
            for e in getattr(cfg, field)
        ]
    )
    return index_in_corner(table.set_index("label"))


def training_table(records: pd.DataFrame, key_chars: int = 8) -> pd.DataFrame:
    """The training records as a page shows them, narrow enough for the page: one row per method
    and seed (they index it), the cache key cut to its first ``key_chars`` characters (enough to
    find the entry under ``.cache/models/``; the saved table keeps it whole) and the parameter
    count left to the prose."""
    shown = records.drop(columns=[c for c in ("parameters",) if c in records])
    if "cache_key" in shown:
        shown = shown.assign(cache_key=shown["cache_key"].str[:key_chars] + "…")
    if {"method", "seed"} <= set(shown.columns):
        shown = shown.set_index(["method", "seed"])
    # headers that wrap: the underscored names were the widest cells of the table
    headers = {"trained_by": "trained by", "cache_key": "cache key", "from_cache": "cached"}
    headers.update({"train_minutes": "minutes", "test_accuracy": "test accuracy"})
    return for_display(shown.rename(columns=headers), digits=3)


def _round_as_prose(value: Any, digits: int) -> Any:
    """``value`` rounded as a glued number is in prose (Python's format: the float's exact value
    decides), where pandas' ``round`` takes a tie on the scaled float to even: 75.45 is 75.5 in
    prose, and was 75.4 in the table beside it."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return float(f"{value:.{digits}f}")
    return value


def for_display(df: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """A table as a page shows it: numbers rounded as the prose rounds them, missing values as an
    em dash, not NaN."""
    rounded = df.map(lambda value: _round_as_prose(value, digits))
    return index_in_corner(rounded.astype(object).where(rounded.notna(), "\u2014"))


def glue_key(*parts: Any) -> str:
    """A glue name from labels like "SGT k=0.3": letters, digits and underscores only."""
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(str(p) for p in parts)).strip("_")


def glue(name: str, value: Any) -> Any:
    """myst-nb's glue without displaying the value in place; returns it."""
    from myst_nb import glue as myst_glue

    myst_glue(name, plain(value), display=False)
    return value


def glue_each(prefix: str, values: Mapping[Any, Any] | pd.Series, scale: float = 1.0) -> None:
    """Glue every value of a column under ``<prefix>_<label>`` (a tuple label joins its parts),
    e.g. ``glue_each("clean", accuracy_by_method, 100)`` glues ``clean_ST``, ``clean_SGT_k_0_3``..."""
    for label, value in values.items():
        parts = label if isinstance(label, tuple) else (label,)
        glue(glue_key(prefix, *parts), scale * value)


def plain(value: Any) -> Any:
    """numpy scalars as Python numbers: numpy 2 writes repr(np.float64(1.5)) as
    'np.float64(1.5)', which myst-nb's {glue:text}`name:.1f` cannot format."""
    return value.item() if isinstance(value, np.generic) else value


def save_table(df: pd.DataFrame, chapter: str, name: str) -> Path:
    """Write a result table as CSV where this run's results go (``show_provenance`` decides:
    ``results/<profile>/<chapter>/`` once the runner publishes the run, else
    ``results/adhoc-<config hash>/<chapter>/``); each file is complete or absent."""
    if _place is None:
        raise RuntimeError(
            "call book.show_provenance(cfg, profile) before book.save_table: it decides where this run's results go"
        )
    folder = _place.root / plain_name(chapter, "chapter")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{plain_name(name, 'table name')}.csv"
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    df.to_csv(partial, index=False)
    os.replace(partial, path)
    run = folder / RUN_FILE
    if not run.exists():  # which run made the tables: robinterp results puts it beside their rows
        partial = run.with_name(f".{run.name}.{os.getpid()}")
        partial.write_text(json.dumps({"label": _place.label, "config": _place.config, **_place.provenance}))
        os.replace(partial, run)
    _saved.setdefault(chapter, []).append(path.name)
    return path


_saved: dict[str, list[str]] = {}


def save_costs(chapter: str) -> Path:
    """Write what this run cost, beside its tables: its wall time since ``show_provenance``, the
    hardware, its settings and every cache entry it computed or read with the seconds computing
    it took (``robinterp.cache.LEDGER``). ``robinterp run --check`` estimates other runs of the
    chapter on this machine from it (``robinterp.estimate``)."""
    if _place is None:
        raise RuntimeError("call book.show_provenance(cfg, profile) before book.save_costs")
    folder = _place.root / plain_name(chapter, "chapter")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / COSTS_FILE
    record = {
        "chapter": chapter,
        "label": _place.label,
        "config": _place.config,
        "utc": _place.provenance.get("utc"),
        "hardware": _place.hardware,
        "wall_seconds": round(time.perf_counter() - _place.started, 3),
        "parameters": _place.parameters,
        "entries": cache.LEDGER,
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record, default=str))
    os.replace(partial, path)
    return path


def results_links(chapter: str) -> Markdown:
    """The tables this page saved, each a link to download its CSV from the built book, and the
    page that says what their columns mean (as markdown for the page's last cell). The page's last
    cell: so this is also where the run's costs are saved (``save_costs``)."""
    save_costs(chapter)
    names = sorted(set(_saved.get(chapter, [])))
    links = ", ".join(f"{{download}}`{name} <../results/{chapter}/{name}>`" for name in names)
    return Markdown(
        f"Every table on this page, as tidy CSV (one row per observation): {links or 'none'}. "
        "{doc}`../results` says what each column means; `robinterp results TABLE --chapter "
        f"{chapter}` stacks a table of several runs."
    )


def mean_sd(df: pd.DataFrame, by: list[str], value: str, scale: float = 1.0, digits: int = 1) -> pd.DataFrame:
    """Mean ± sd over seeds as strings ("92.0 ± 2.8"), one row per group (for tables in prose); the
    mean alone for a group of one seed, whose sd is undefined ("± 0" would claim that seeds agree),
    as ``reports.mean_sd`` writes it."""
    g = df.groupby(by)[value].agg(["mean", "std", "count"]).reset_index()
    g["mean ± sd"] = [
        f"{scale * m:.{digits}f}" if math.isnan(s) else f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"
        for m, s in zip(g["mean"], g["std"])
    ]
    return g
