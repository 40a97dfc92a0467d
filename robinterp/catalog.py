"""What there is to run, read from the registries: ``robinterp list`` and ``robinterp run CHAPTER
--help``. Nothing here is typed twice: a chapter, profile, method, attack, explainer or metric
added to its registry appears here."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from typing import Any

from robinterp.paths import project_root


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def chapter_title(notebook: str) -> str:
    """The first heading of a chapter's notebook."""
    cells = json.loads((project_root() / notebook).read_text())["cells"]
    for cell in cells:
        for line in "".join(cell["source"]).splitlines():
            if cell["cell_type"] == "markdown" and line.startswith("#"):
                return line.lstrip("#").strip()
    return ""


def profile_summary(profile: str) -> str:
    """The first comment line of a profile's YAML file, without its leading "name:"."""
    from robinterp.profiles import profile_path

    for line in profile_path(profile).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").removeprefix(f"{profile}:").strip()
    return ""


def _section(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in rows)
    return [f"{title}:"] + [f"  {name.ljust(width)}  {text}" for name, text in rows] + [""]


def _dataset_line(spec: Any) -> str:
    """A data set's title, its images and classes, and whether it can be had offline here."""
    from robinterp.titles import dataset_title

    channels, height, width = spec.shape
    source = "offline source here" if spec.offline_source is not None else "needs internet once"
    return f"{dataset_title(spec.name)}: {height}x{width}x{channels}, {spec.num_classes} classes ({source})"


def listing() -> str:
    """Every chapter, profile, training method, attack, explainer and explanation metric, one line each."""
    from robinterp import attacks, data, explain, explanation_quality
    from robinterp.chapters import CHAPTERS
    from robinterp.methods import registry
    from robinterp.profiles import PROFILES

    lines = _section(
        "chapters (robinterp run CHAPTER --help: its settings)",
        [(name, chapter_title(c.notebook)) for name, c in CHAPTERS.items()],
    )
    lines += _section("profiles (--profile)", [(name, profile_summary(name)) for name in PROFILES])
    lines += _section(
        "data sets (a chapter's dataset; robinterp data fetch NAME)",
        [(name, _dataset_line(spec)) for name, spec in data.DATASETS.items()],
    )
    lines += _section(
        "training methods (a chapter's methods: {label: {method: NAME, ...}})",
        [(name, m.summary) for name, m in sorted(registry().items())],
    )
    lines += _section("attacks", [(name, attack.summary) for name, attack in attacks.registry().items()])
    lines += _section(
        "explainers (attributions, through captum)",
        [(name, _first_line(fn.__doc__)) for name, fn in explain.EXPLAINERS.items()],
    )
    lines += _section(
        "explanation metrics (Quantus; robinterp's batched implementation is tested equal)",
        [
            (
                name,
                f"{'quantus.' + spec.quantus_name if spec.quantus_name else 'no Quantus class'}, "
                f"{'higher' if spec.higher_is_better else 'lower'} is better",
            )
            for name, spec in explanation_quality.registry().items()
        ],
    )
    return "\n".join(lines).rstrip() + "\n"


def chapter_help(chapter: str) -> str:
    """A chapter's config fields with their defaults and docstrings."""
    from robinterp.attacks import AttackEntry
    from robinterp.chapters import get_chapter
    from robinterp.config import field_docs
    from robinterp.methods import MethodEntry
    from robinterp.settings.metrics import MetricEntry

    spec = get_chapter(chapter)
    docs = field_docs(spec.config)
    lines = [
        f"robinterp run {chapter} [--profile NAME | --config FILE] [--check]",
        "",
        chapter_title(spec.notebook),
        "",
        f"Settings (a --config file's `{chapter}:` section, or papermill -p NAME VALUE), with defaults:",
    ]
    for field in dataclasses.fields(spec.config):
        default = field.default
        if isinstance(default, tuple) and default and isinstance(default[0], MethodEntry | MetricEntry):
            shown = ", ".join(entry.label for entry in default)
        elif isinstance(default, tuple) and default and isinstance(default[0], AttackEntry):
            shown = ", ".join(f"{entry.label}: {entry.describe()}" for entry in default)
        else:
            shown = repr(list(default) if isinstance(default, tuple) else default)
        lines.append(f"  {field.name} = {shown}")
        lines += textwrap.wrap(docs.get(field.name, ""), width=96, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines) + "\n"
