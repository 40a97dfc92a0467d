"""The book's chapters: each a notebook under ``book/chapters/`` and a config dataclass, and how
a chapter's config is resolved (dataclass defaults <- profile or config file <- ``--set``) and
validated before a kernel starts, without importing torch (``robinterp.configs``): a config error
costs a fraction of a second. A chapter's computations are imported only for ``--check``'s plan."""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from robinterp.config import Config, ConfigError, settings_label, shown
from robinterp.configs import (
    neuron_sensitivity,
    robust_attribution,
    robust_models,
    saliency_guided_training,
    scaat,
    synthesis,
)
from robinterp.paths import plain_name
from robinterp.profiles import BESIDE, load_yaml, profile_overrides, section


@dataclasses.dataclass(frozen=True)
class Chapter:
    name: str
    notebook: str
    """Path from the repository root, as listed in _toc.yml (with extension)."""
    config: type[Config]
    planner: Callable[[Any], Any] | None = None
    """What a run under a config would build, without data or training (``--check``); None: the
    ``plan`` of ``robinterp.experiments.<name>``, imported only when asked (it imports torch)."""
    reads_others: bool = False
    """Reads what the chapters before it saved in the same build: a book runs it after them."""

    def plan(self, config: Any) -> Any:
        """The plan of a run under ``config`` (``planner``)."""
        planner = self.planner or importlib.import_module(f"robinterp.experiments.{self.name}").plan
        return planner(config)


CHAPTERS: dict[str, Chapter] = {
    "robust_models": Chapter("robust_models", "book/chapters/robust_models.ipynb", robust_models.RobustModelsConfig),
    "saliency_guided_training": Chapter(
        "saliency_guided_training",
        "book/chapters/saliency_guided_training.ipynb",
        saliency_guided_training.SaliencyGuidedConfig,
    ),
    "neuron_sensitivity": Chapter(
        "neuron_sensitivity", "book/chapters/neuron_sensitivity.ipynb", neuron_sensitivity.NeuronSensitivityConfig
    ),
    "robust_attribution": Chapter(
        "robust_attribution", "book/chapters/robust_attribution.ipynb", robust_attribution.RobustAttributionConfig
    ),
    "scaat": Chapter("scaat", "book/chapters/scaat.ipynb", scaat.SCAATConfig),
    # last: its scoreboard reads the verdicts the chapters above saved in the same build
    "synthesis": Chapter("synthesis", "book/chapters/synthesis.ipynb", synthesis.SynthesisConfig, reads_others=True),
}


def get_chapter(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ConfigError(f"unknown chapter {name!r}; choose one of {', '.join(CHAPTERS)}")
    return CHAPTERS[name]


def readers() -> list[str]:
    return [name for name, spec in CHAPTERS.items() if spec.reads_others]


def labels_read(label: str) -> tuple[str, ...]:
    """The runs a reader chapter under ``label`` reads: the other chapters' under the same label,
    and the profile the scoreboard shows beside it (``profiles.BESIDE``)."""
    return tuple(dict.fromkeys((label, BESIDE)))


def resolve_config(
    chapter: str,
    profile: str | None = None,
    config_file: Path | None = None,
    settings: Mapping[str, Any] | None = None,
) -> tuple[Config, str]:
    """The chapter's validated config and a label for it (profile name or file stem); ``settings``
    (``--set``) replace the profile's or the file's values, and the label says so."""
    config, label = _resolve_config(chapter, profile, config_file)
    if not settings:
        return config, label
    values = {**config.to_parameters(), **settings}
    return get_chapter(chapter).config.from_mapping(values, source=f"--set on {label}"), settings_label(label, settings)


def book_configs(profile: str, settings: Mapping[str, Any] | None = None) -> dict[str, tuple[Config, str]]:
    """Every chapter's validated config under ``profile`` and the book's label: ``settings``
    (``--set``) apply to every chapter that has them, and one that no chapter has is an error."""
    settings = dict(settings or {})
    fields = {name: {f.name for f in dataclasses.fields(spec.config)} for name, spec in CHAPTERS.items()}
    for key in settings:
        if not any(key in names for names in fields.values()):
            raise ConfigError(f"--set {key}: no chapter has this setting (robinterp run CHAPTER --help lists them)")
    label = settings_label(profile, settings)
    return {
        name: (
            resolve_config(name, profile, settings={k: v for k, v in settings.items() if k in fields[name]})[0],
            label,
        )
        for name in CHAPTERS
    }


def _resolve_config(chapter: str, profile: str | None = None, config_file: Path | None = None) -> tuple[Config, str]:
    spec = get_chapter(chapter)
    if config_file is not None:
        path = Path(config_file)
        data = load_yaml(path)
        unknown = [k for k in data if k not in CHAPTERS]
        if unknown:
            raise ConfigError(
                f"{path}: unknown chapter section {shown(unknown[0])}; "
                f"sections are chapter names: {', '.join(CHAPTERS)}"
            )
        if chapter not in data:
            raise ConfigError(
                f"{path} has no section {chapter!r}, so nothing in it applies; add one "
                f"(`{chapter}: {{}}` runs the chapter's defaults)"
            )
        # a file's label never reads as a profile name: its outputs must not overwrite one
        label = plain_name(f"config-{path.stem}", f"the label of {path.name} (config-<file stem>)")
        return spec.config.from_mapping(section(data, chapter, path), source=str(path)), label
    profile = profile or "default"
    overrides = profile_overrides(profile, chapter)
    return spec.config.from_mapping(overrides, source=f"profile {profile}"), profile


def parameter_names(notebook: Path) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters``; error if it has none."""
    import ast

    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            return [
                t.id
                for node in ast.parse(source).body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    raise ConfigError(
        f"{notebook} has no cell tagged 'parameters'; tag the cell that sets the "
        f"defaults (View > Cell Toolbar > Tags in Jupyter) so papermill can inject"
    )
