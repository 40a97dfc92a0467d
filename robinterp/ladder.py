"""The budget ladder: a chapter's models at 1x, 2x, 4x ... of their epochs, every claim judged at
every rung, and whether each verdict holds, emerges, fades or flips as the budget grows.

A rung is the chapter run with every training budget of its config (``budget_fields``, and a
method entry's own epochs) multiplied by the rung's factor. A model whose method's steps do not
depend on the budget continues from the previous rung's cached model of the same trajectory
(``robinterp.train``: bit for bit what training from scratch would give), so a ladder of 1x, 2x
and 4x trains each such model for 4x its epochs once, not 7x.

A reader's first question about a CPU reproduction is whether a verdict would survive more
training; the ladder answers it per claim, in ``ladder.csv``:

- **holds**: the same settled verdict at every rung;
- **emerges**: unsettled at the first rung, settled at the last, never two settled verdicts;
- **fades**: settled at the first rung, unsettled at the last;
- **flips**: two different settled verdicts (consistent at one rung, inconsistent at another);
- **wavers**: settled only in between;
- **unsettled**: never settled.

Settled: any verdict but *inconclusive* and *not judged* (``robinterp.reports.rules``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from robinterp import runner
from robinterp.chapters import get_chapter, resolve_config
from robinterp.config import Config, ConfigError
from robinterp.methods import MethodEntry
from robinterp.paths import build_root, no_link_below, plain_name
from robinterp.reports.rules import INCONCLUSIVE, NOT_JUDGED

RUNGS = (1.0, 2.0, 4.0)
"""The factors a ladder climbs unless told otherwise."""

UNSETTLED = (INCONCLUSIVE, NOT_JUDGED)
COURSES = ("holds", "emerges", "fades", "flips", "wavers", "unsettled")


def budget_fields(config: Config) -> tuple[str, ...]:
    """The config's fields that set how long its models train (the chapter's ``BUDGET_FIELDS``,
    else ``epochs``); a measure's own retraining (ROAR's) is not among them."""
    return tuple(getattr(type(config), "BUDGET_FIELDS", ("epochs",)))


def rung_settings(config: Config, factor: float) -> dict[str, Any]:
    """The ``--set`` settings of the rung ``factor``: every training budget multiplied (none at 1x,
    so that the first rung is the plain run)."""
    if factor == 1:
        return {}
    settings: dict[str, Any] = {name: getattr(config, name) * factor for name in budget_fields(config)}
    methods = getattr(config, "methods", ())
    if any(entry.epochs is not None for entry in methods):
        scaled = {
            label: {**item, "epochs": item["epochs"] * factor} if "epochs" in item else item
            for label, item in MethodEntry.to_config(methods).items()
        }
        settings["methods"] = scaled
    return settings


def check_rungs(rungs: Sequence[float]) -> tuple[float, ...]:
    """Rungs as the ladder climbs them: at least two, increasing, the first 1 (the plain run)."""
    rungs = tuple(float(r) for r in rungs)
    if len(rungs) < 2 or rungs[0] != 1 or any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise ConfigError(f"rungs must start at 1 and increase, at least two of them (e.g. 1 2 4); got {list(rungs)}")
    return rungs


def course(verdicts: Sequence[str]) -> str:
    """What a claim's verdicts, rung after rung, do as the budget grows (see the module docstring)."""
    settled = [v for v in verdicts if v not in UNSETTLED]
    if len(set(settled)) > 1:
        return "flips"
    first, last = verdicts[0] not in UNSETTLED, verdicts[-1] not in UNSETTLED
    if len(settled) == len(verdicts):
        return "holds"
    if not settled:
        return "unsettled"
    if last and not first:
        return "emerges"
    if first and not last:
        return "fades"
    return "wavers"


def _rung_label(factor: float) -> str:
    return f"{factor:g}x"


def ladder_table(verdicts: Mapping[float, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim: its verdict at each rung (``verdict <f>x``) and its ``course``. A claim is
    its text and, where a chapter words several rows alike, the order of its occurrence; a claim
    missing at a rung (a model collapsed there, say) counts as not judged."""
    keyed = {}
    for factor, table in verdicts.items():
        occurrence = table.groupby("claim").cumcount()
        keyed[factor] = pd.Series(
            table["verdict"].to_numpy(), index=pd.MultiIndex.from_arrays([table["claim"], occurrence])
        )
    first = next(iter(keyed.values()))
    claims = list(first.index) + [c for table in keyed.values() for c in table.index if c not in first.index]
    rows = []
    for claim in dict.fromkeys(claims):
        row: dict[str, Any] = {"claim": claim[0]}
        for factor, table in keyed.items():
            row[f"verdict {_rung_label(factor)}"] = table.get(claim, NOT_JUDGED)
        row["course"] = course([row[f"verdict {_rung_label(f)}"] for f in keyed])
        rows.append(row)
    return pd.DataFrame(rows)


def climb(
    chapter: str,
    profile: str | None = None,
    rungs: Sequence[float] = RUNGS,
    echo: bool = False,
    threads: int | None = None,
) -> Path:
    """Run ``chapter`` at every rung under ``profile`` and write its ladder table: the path of
    ``results/<profile>-ladder/<chapter>/ladder.csv``. Every rung's run is an ordinary run (its
    pages and tables under its own label); the configs are all validated before any runs."""
    get_chapter(chapter)
    rungs = check_rungs(rungs)
    base, label = resolve_config(chapter, profile)
    settings = {factor: rung_settings(base, factor) for factor in rungs}
    labels = {factor: resolve_config(chapter, profile, settings=s)[1] for factor, s in settings.items()}
    verdicts = {}
    for factor in rungs:
        print(f"ladder of {chapter} under {label}: rung {_rung_label(factor)} ({labels[factor]})", flush=True)
        runner.run(chapter, profile, echo=echo, threads=threads, settings=settings[factor])
        verdicts[factor] = pd.read_csv(build_root() / "results" / labels[factor] / chapter / "verdicts.csv")
    table = ladder_table(verdicts)
    folder = build_root() / "results" / plain_name(f"{label}-ladder", "the ladder's label") / chapter
    target = folder / "ladder.csv"
    no_link_below(build_root(), target)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".ladder.{os.getpid()}.csv"
    table.to_csv(partial, index=False)
    os.replace(partial, target)  # complete or absent
    return target
