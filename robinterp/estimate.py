"""How long a chapter run, a ladder of runs or a whole book would take on this machine, from what
earlier runs here cost.

Every chapter run saves ``costs.json`` beside its tables (``robinterp.book.save_costs``): its
wall time, its settings and every cache entry it computed or read, with the seconds computing it
took and the hardware it took them on (``robinterp.cache.LEDGER``). An estimate reads those files
of every run in the build folder on this machine's hardware:

- **training**, per model the run would train: nothing for a model the cache holds; otherwise
  its epochs (less those it would continue from: a shorter cached run of its trajectory, or an
  earlier rung's, when its method's steps do not depend on the budget, ``robinterp.train``) times
  the measured seconds per epoch of models of the same kind (method and its parameters, data set
  and training images, architecture, batch, optimiser, device, precision); where no model of the
  same parameters was measured, the method's under other parameters (said so), else not counted
  (said so);
- **evaluation**, per model: what the latest run of the chapter under the same settings but
  seeds and budgets (else its latest run, said so) spent on everything but its models' training
  (attacks, maps, metrics, ROAR, fine-tuning), divided by the models its plan lists;
- nothing at all for a seed a run under the very same settings ran (its models and rows are
  cached);
- **start-up and pages**: that run's wall time, its kernel's start included, less what it
  computed.

So the estimate of a setting that was never run here (more seeds, a longer budget, the ``long``
profile) is measured cost times planned work; a setting whose evaluation differs from the
measured run's (more test images, another attack) is flagged, its evaluation taken as measured.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from robinterp import cache, train
from robinterp.chapters import CHAPTERS, get_chapter, resolve_config
from robinterp.codehash import stable_hash
from robinterp.config import Config
from robinterp.experiments.common import Plan
from robinterp.ladder import budget_fields, check_rungs, rung_settings
from robinterp.paths import COSTS_FILE, build_root
from robinterp.provenance import hardware

COSTS_LIMIT = 64_000_000
"""A run's costs.json is at most a few MB (the synthesis reads thousands of entries)."""

SPEED_FIELDS = (
    "dataset",
    "train_size",
    "model",
    "width",
    "method",
    "method_params",
    "batch_size",
    "optimizer",
    "device",
    "precision",
    "torch_compile",
)
"""What a training epoch's cost depends on (not the seed, the learning rate or the epochs)."""


@dataclasses.dataclass(frozen=True)
class Measured:
    """One earlier chapter run's costs.json."""

    chapter: str
    label: str
    utc: str
    hardware: str
    wall_seconds: float
    """The whole run, its kernel's start included."""
    parameters: dict[str, Any]
    entries: tuple[dict[str, Any], ...]

    def trained(self) -> list[dict[str, Any]]:
        """Its models: the training specs it asked for itself (not a teacher or a ROAR
        retraining, which count in what needs them)."""
        return [e for e in self.entries if e["kind"] == "models" and e["spec"] and e["depth"] == 0]

    def evaluation(self) -> float:
        """Seconds of everything but its models' training: attacks, maps, metrics, ROAR's
        retraining, a fine-tuning from a listed model."""
        top = [e for e in self.entries if e["depth"] == 0]
        return sum(e["seconds"] or 0 for e in top) - sum(e["seconds"] or 0 for e in self.trained())

    def fine_tuning(self) -> float:
        """The part of its evaluation that made models from listed ones (recorded without a spec of
        their own: the NsLoss chapter's fine-tuned models and its protocol's trials)."""
        return sum(
            e["seconds"] or 0 for e in self.entries if e["depth"] == 0 and e["kind"] == "models" and not e["spec"]
        )

    def overhead(self) -> float:
        """Its wall time less what it computed: kernel start, data loading, verdicts, figures."""
        computed = sum(e["seconds"] or 0 for e in self.entries if e["depth"] == 0 and e["computed"])
        return max(0.0, self.wall_seconds - computed)


def _read(path: Path) -> Measured | None:
    """A costs.json, or None when it is not a regular file this package wrote."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > COSTS_LIMIT:
            return None
        record = json.loads(path.read_text())
        return Measured(
            record["chapter"],
            record["label"],
            record["utc"] or "",
            record["hardware"],
            float(record.get("run_seconds", record["wall_seconds"])),  # the kernel's start-up included
            dict(record["parameters"]),
            _once(record["entries"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _once(entries: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Each cache entry once, where the run first met it: a run records an entry every time it
    reads it (a model read by each of its measures), each time with what computing it took, which
    counted again would add the same seconds several times over."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        first.setdefault((entry["kind"], entry["key"]), entry)
    return tuple(first.values())


def measured_runs(build: Path | None = None, machine: str | None = None) -> list[Measured]:
    """Every run in the build folder on ``machine``'s hardware (this one's by default), oldest
    first."""
    machine = machine or hardware()
    found = [_read(path) for path in sorted(Path(build or build_root()).glob(f"results/*/*/{COSTS_FILE}"))]
    return sorted((m for m in found if m is not None and m.hardware == machine), key=lambda m: m.utc)


def _speed_class(spec: Mapping[str, Any], with_params: bool = True) -> str:
    """What an epoch's cost per training image depends on (a spec's size counts only as known or
    not: a cost measured on 20000 images is a cost per image)."""
    fields = {name: spec.get(name) for name in SPEED_FIELDS if with_params or name != "method_params"}
    fields["train_size"] = "all" if spec.get("train_size") is None else "subset"
    return json.dumps(fields, sort_keys=True, default=str)


def _work(spec: Mapping[str, Any], epochs: float) -> float:
    """Image-epochs (epochs alone where a spec trains on the whole data set)."""
    return epochs * (spec.get("train_size") or 1)


def _plain(spec: train.TrainSpec) -> dict[str, Any]:
    """A spec as its cache metadata records it."""
    return json.loads(json.dumps(dataclasses.asdict(spec), default=str))


def epoch_seconds(runs: Iterable[Measured], machine: str) -> dict[str, list[float]]:
    """Seconds per image-epoch (``_work``) of every model the runs trained on ``machine`` from
    scratch, by speed class (with its parameters, and under ``method:<name>`` without them)."""
    found: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for entry in run.entries:
            spec = entry.get("spec")
            if entry["kind"] != "models" or not spec or entry.get("continued_from") or entry["hardware"] != machine:
                continue
            if not entry.get("seconds") or not spec.get("epochs"):
                continue
            per_epoch = entry["seconds"] / _work(spec, spec["epochs"])
            found[_speed_class(spec)].append(per_epoch)
            found["method:" + _speed_class(spec, with_params=False)].append(per_epoch)
    return found


@dataclasses.dataclass
class Estimate:
    """Minutes a run (or several) would take here, and what the number rests on."""

    training: float = 0.0
    evaluation: float = 0.0
    overhead: float = 0.0
    models: int = 0
    cached: int = 0
    continued: int = 0
    approximate: set[str] = dataclasses.field(default_factory=set)
    """Methods whose epoch cost was measured only under other parameters."""
    unmeasured: set[str] = dataclasses.field(default_factory=set)
    """Methods never measured here: their training is not counted."""
    unrun: set[str] = dataclasses.field(default_factory=set)
    """Chapters never run here: their evaluation and start-up are not counted."""
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def minutes(self) -> float:
        return (self.training + self.evaluation + self.overhead) / 60

    def add(self, other: Estimate) -> None:
        for name in ("training", "evaluation", "overhead", "models", "cached", "continued"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.approximate |= other.approximate
        self.unmeasured |= other.unmeasured
        self.unrun |= other.unrun
        self.notes += [note for note in other.notes if note not in self.notes]

    def describe(self) -> str:
        unrun = (
            f"not run on this machine yet, so their evaluation and start-up are not counted: "
            f"{', '.join(sorted(self.unrun))} (every run records what it cost; under --profile smoke a "
            "chapter runs in a minute)"
        )
        if self.unmeasured and not (self.training or self.evaluation or self.overhead):
            text = (
                f"no estimate: {self.models - self.cached} of {self.models} models to train, and no model of "
                f"their methods ({', '.join(sorted(self.unmeasured))}) has trained on this machine yet"
            )
            return "\n".join([text, *(f"note: {note}" for note in [unrun] * bool(self.unrun) + self.notes)])
        text = (
            f"estimated {self.minutes:.1f} min on this machine: training {self.training / 60:.1f} "
            f"({self.models - self.cached} of {self.models} models to train, {self.continued} of them "
            f"continued from a shorter run), evaluation {self.evaluation / 60:.1f}, start-up and pages "
            f"{self.overhead / 60:.1f}"
        )
        if self.approximate:
            text += f"; {', '.join(sorted(self.approximate))} measured only under other parameters"
        if self.unmeasured:
            text += f"; not counted: {', '.join(sorted(self.unmeasured))} (never trained here yet)"
        notes = [unrun, *self.notes] if self.unrun else self.notes
        return "\n".join([text, *(f"note: {note}" for note in notes)])


def _comparable(config: Config) -> dict[str, Any]:
    """A config's settings but its seeds and training budgets: what its evaluation depends on."""
    values = dict(config.to_parameters())
    for name in [*_seed_fields(config), *budget_fields(config)]:
        values.pop(name, None)
    if isinstance(values.get("methods"), dict):
        values["methods"] = {
            label: {k: v for k, v in item.items() if k != "epochs"} for label, item in values["methods"].items()
        }
    return values


def _budgets(config: Config) -> dict[str, Any]:
    """How long a config's models train: its budget fields and its methods' own epochs."""
    own = {entry.label: entry.epochs for entry in getattr(config, "methods", ())}
    return {**{name: getattr(config, name) for name in budget_fields(config)}, "methods": own}


def _seed_fields(config: Config) -> list[str]:
    """Its fields that list seeds (``seeds``, and a chapter's ``grid_seeds``, ``ablation_seeds``...)."""
    return [f.name for f in dataclasses.fields(config) if f.name.endswith("seeds")]


def _still_cached(run: Measured) -> bool:
    """Whether every model ``run`` trained for itself is still in the cache."""
    return all(cache.intact_entry("models", entry["key"]) is not None for entry in run.trained())


def _config_of(run: Measured, like: Config) -> Config | None:
    """A measured run's settings, as a config of ``like``'s class (None: a run under an older
    config class, nothing in common to rely on)."""
    try:
        return type(like).from_mapping(run.parameters, source=f"the costs of {run.label}")
    except Exception:
        return None


class _Trainer:
    """Which models exist by the time each planned one trains: the cache's, then those planned
    before it (an earlier rung's, a shorter budget's), by trajectory."""

    def __init__(self, per_epoch: Mapping[str, list[float]]) -> None:
        self.per_epoch = per_epoch
        self.planned: set[str] = set()
        self.reached: dict[str, float] = {}  # trajectory -> the longest epochs planned so far

    def cost(self, spec: train.TrainSpec, into: Estimate) -> str:
        """Add one model's training to ``into``; returns its cache key."""
        key = stable_hash(spec, code=train.model_code(spec))
        into.models += 1
        if key in self.planned or cache.intact_entry("models", key) is not None:
            into.cached += 1
            return key
        self.planned.add(key)
        epochs = spec.epochs
        if not train.budget_dependence(spec):
            trajectory = train.trajectory_key(spec)
            reached = self.reached.get(trajectory, 0.0)
            start = max((e for e in [*self._cached_stops(trajectory), reached] if 0 < e < epochs), default=0.0)
            self.reached[trajectory] = max(reached, epochs)
            if start > 0:
                into.continued += 1
                epochs -= start
        plain = _plain(spec)
        exact = self.per_epoch.get(_speed_class(plain))
        rough = self.per_epoch.get("method:" + _speed_class(plain, with_params=False))
        if exact:
            into.training += _work(plain, epochs) * statistics.median(exact)
        elif rough:
            into.training += _work(plain, epochs) * statistics.median(rough)
            into.approximate.add(spec.method)
        else:
            into.unmeasured.add(spec.method)
        return key

    @staticmethod
    def _cached_stops(trajectory: str) -> list[float]:
        """Epochs of the cached runs of ``trajectory`` a longer one could continue."""
        epochs = []
        for key in cache.stops(trajectory).values():
            found = cache.intact_entry("models", key)
            if found is not None and train.RESUME_FILE in found[1].get("files", {}):
                epochs.append(float(found[1]["config"]["epochs"]))
        return epochs


def estimate_configs(
    chapter: str, configs: Sequence[Config], runs: Sequence[Measured] | None = None, trainer: _Trainer | None = None
) -> Estimate:
    """The estimate of running ``chapter`` under each of ``configs`` in turn (a ladder's rungs:
    each may continue the models of the ones before), from ``runs`` (this machine's by default);
    ``trainer`` carries the models planned by chapters estimated before it (a book's)."""
    machine = hardware()
    runs = measured_runs(None, machine) if runs is None else runs
    trainer = trainer or _Trainer(epoch_seconds(runs, machine))
    mine = [run for run in runs if run.chapter == chapter]
    total = Estimate(unrun={chapter} if not mine else set())
    if not configs:
        return total
    # what each measured run was, worked out once for every config (a ladder's rungs)
    measured = [_Reference(run, settings) for run in mine if (settings := _config_of(run, configs[0])) is not None]
    for config in configs:
        part = Estimate()
        # runs under the same settings but seeds and budgets; the latest is the reference, else the latest run
        alike = [ref for ref in measured if ref.comparable == _comparable(config)]
        reference = (alike or measured or [None])[-1]
        # a model a run under these very settings (budgets included) planned, its models still in
        # the cache: the model and its rows are there (a plan may list models under other keys than
        # they train under: the NsLoss chapter's fine-tuned ones). By plan entry, not by seed: a
        # chapter with several seed lists (the Zeng grid's, the SCAAT ablation's) trains only some
        # of its models at a seed
        done = {key for ref in alike if ref.budgets == _budgets(config) and ref.still_cached for key in ref.plan.specs}
        per_model, tuning_rate = 0.0, 0.0
        if reference is not None:
            per_model, tuning_rate = reference.evaluation_per_model, reference.fine_tuning_rate
            part.overhead += reference.run.overhead()
            if not alike:
                part.notes.append(
                    f"{chapter}: settings other than seeds and budgets differ from its measured run (under "
                    f"{reference.run.label}): its evaluation per model is taken as measured there"
                )
        plan = get_chapter(chapter).plan(config)
        for key, spec in sorted(plan.specs.items(), key=lambda item: item[1].epochs):
            if key in done:
                part.models += 1
                part.cached += 1
                continue
            if key in plan.fine_tuned:  # made in the evaluation, at the rate the reference's took
                part.models += 1
                part.evaluation += tuning_rate * _work(_plain(spec), spec.epochs)
            else:
                trainer.cost(spec, part)
            part.evaluation += per_model
        total.add(part)
    return total


class _Reference:
    """A measured run of a chapter with its settings, and what an estimate asks of it, each worked
    out once (a plan, the cache's files)."""

    def __init__(self, run: Measured, settings: Config) -> None:
        self.run, self.settings = run, settings
        self.comparable = _comparable(settings)
        self.budgets = _budgets(settings)

    @functools.cached_property
    def plan(self) -> Plan:
        return get_chapter(self.run.chapter).plan(self.settings)

    @functools.cached_property
    def evaluation_per_model(self) -> float:
        """Its evaluation divided by the models its plan lists; where the plan fine-tunes models in
        its evaluation, less that fine-tuning (``fine_tuning_rate``: it scales with their epochs)."""
        tuning = self.run.fine_tuning() if self.plan.fine_tuned else 0.0
        return (self.run.evaluation() - tuning) / max(1, len(self.plan.specs))

    @functools.cached_property
    def fine_tuning_rate(self) -> float:
        """Seconds per image-epoch (``_work``) of the models its plan fine-tunes in its evaluation
        (0 where it fine-tunes none): a rung of twice their epochs costs twice as much."""
        work = sum(_work(_plain(self.plan.specs[key]), self.plan.specs[key].epochs) for key in self.plan.fine_tuned)
        return self.run.fine_tuning() / work if work else 0.0

    @functools.cached_property
    def still_cached(self) -> bool:
        return _still_cached(self.run)


def run_estimate(
    chapter: str,
    profile: str | None = None,
    config_file: Path | None = None,
    settings: Mapping[str, Any] | None = None,
    rungs: Sequence[float] = (1.0,),
) -> Estimate:
    """A chapter's run (or its ladder over ``rungs``) under a profile or config file."""
    base, _ = resolve_config(chapter, profile, config_file, settings)
    if len(rungs) > 1:
        rungs = check_rungs(rungs)
    configs = [
        resolve_config(chapter, profile, config_file, {**(settings or {}), **rung_settings(base, factor)})[0]
        for factor in rungs
    ]
    return estimate_configs(chapter, configs)


def book_estimate(profile: str, settings: Mapping[str, Any] | None = None) -> tuple[Estimate, dict[str, Estimate]]:
    """Every chapter of the book under ``profile``: the total and each chapter's."""
    machine = hardware()
    runs = measured_runs(None, machine)
    trainer = _Trainer(epoch_seconds(runs, machine))
    chapters = {}
    total = Estimate()
    for chapter in CHAPTERS:
        config, _ = resolve_config(chapter, profile, None, settings)
        chapters[chapter] = estimate_configs(chapter, [config], runs, trainer)
        total.add(chapters[chapter])
    return total, chapters
