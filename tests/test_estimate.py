"""``--check``'s estimate: what a run records of its costs, and how other runs are estimated from it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from robinterp import estimate, profiles
from robinterp.config import ConfigError

MACHINE = "CPU, 2 threads of 2 cores (test)"


def entry(kind, seconds, *, computed=True, depth=0, spec=None, of_model=None, continued_from=None, key="k"):
    return {
        "kind": kind,
        "key": key,
        "seconds": seconds,
        "hardware": MACHINE,
        "computed": computed,
        "depth": depth,
        "spec": spec,
        "continued_from": continued_from,
        "of_model": of_model,
    }


def spec(method="standard", train_size=1000, epochs=2.0, **more):
    return {
        "dataset": "mnist",
        "train_size": train_size,
        "model": "small_cnn",
        "method": method,
        "epochs": epochs,
        **more,
    }


def measured(entries, wall=100.0):
    return estimate.Measured("robust_models", "default", "2026-12-07T00:00:00", MACHINE, wall, {}, tuple(entries))


def test_evaluation_is_everything_but_the_runs_own_training_per_model_and_overhead_the_rest_of_its_time():
    run = measured(
        [
            entry("models", 30.0, spec=spec(), key="a"),
            entry("models", 10.0, spec=spec(), key="b", computed=False),  # read from the cache: cost counts
            entry("models", 5.0, spec=spec(method="distillation"), depth=1),  # a teacher: its student's cost
            entry("results", 8.0, of_model="a"),
            entry("results", 4.0, of_model="b", computed=False),
            entry("results", 2.0, depth=1),  # inside the measure above
            entry("models", 6.0, spec=None),  # a fine-tune from a listed model: evaluation work
        ],
        wall=70.0,
    )
    assert [e["key"] for e in run.trained()] == ["a", "b"]
    assert run.evaluation() == pytest.approx(8.0 + 4.0 + 6.0)
    assert run.overhead() == pytest.approx(70.0 - (30.0 + 8.0 + 6.0))  # what it computed itself


def test_an_epoch_costs_per_training_image_measured_from_scratch_on_this_machine_only():
    runs = [
        measured(
            [
                entry("models", 20.0, spec=spec(train_size=1000, epochs=2.0)),
                entry("models", 60.0, spec=spec(train_size=3000, epochs=2.0)),
                entry("models", 99.0, spec=spec(), continued_from="x"),  # took only its last steps
                {**entry("models", 99.0, spec=spec()), "hardware": "a GPU"},
            ]
        )
    ]
    costs = estimate.epoch_seconds(runs, MACHINE)
    exact = estimate._speed_class(spec())
    assert costs[exact] == pytest.approx([0.01, 0.01])  # seconds per image-epoch, the same at both sizes
    assert costs["method:" + estimate._speed_class(spec(), with_params=False)] == pytest.approx([0.01, 0.01])


def test_an_estimate_says_what_it_could_not_count():
    nothing = estimate.Estimate(models=2, unmeasured={"scaat"}, unrun={"scaat"})
    assert nothing.describe().startswith(
        "no estimate: 2 of 2 models to train, and no model of their methods (scaat) has trained on this machine yet"
    )
    assert "not run on this machine yet, so their evaluation and start-up are not counted: scaat" in nothing.describe()
    partial = estimate.Estimate(training=120.0, evaluation=60.0, overhead=30.0, models=4, cached=1)
    partial.add(estimate.Estimate(models=2, unmeasured={"sgt"}, approximate={"pgd_at"}))
    text = partial.describe()
    assert text.startswith("estimated 3.5 min on this machine: training 2.0 (5 of 6 models to train")
    assert "pgd_at measured only under other parameters" in text and "not counted: sgt" in text


def test_the_long_profile_climbs_its_own_ladder_and_a_bad_one_is_one_line(tmp_path, monkeypatch):
    assert profiles.ladder_rungs("long") == (1.0, 2.0, 4.0)
    assert profiles.ladder_rungs("default") is None and profiles.ladder_rungs(None) is None
    bad = tmp_path / "long.yml"
    bad.write_text("ladder: two\nrobust_models: {}\n")
    monkeypatch.setattr(profiles, "profile_path", lambda name: bad)
    with pytest.raises(ConfigError, match="ladder must be a list of budget factors"):
        profiles.ladder_rungs("long")


def test_a_costs_file_that_is_not_one_is_skipped(tmp_path):
    folder = tmp_path / "results" / "default" / "robust_models"
    folder.mkdir(parents=True)
    (folder / "costs.json").write_text("{not json")
    other = tmp_path / "results" / "smoke" / "robust_models"
    other.mkdir(parents=True)
    (other / "costs.json").symlink_to("/dev/zero")
    assert estimate.measured_runs(tmp_path, MACHINE) == []
    (folder / "costs.json").write_text(
        json.dumps(
            {
                "chapter": "robust_models",
                "label": "default",
                "utc": "2026",
                "hardware": MACHINE,
                "wall_seconds": 3.0,
                "run_seconds": 9.0,
                "parameters": {},
                "entries": [],
            }
        )
    )
    [run] = estimate.measured_runs(tmp_path, MACHINE)
    assert run.wall_seconds == 9.0  # the kernel's start-up included
    assert estimate.measured_runs(tmp_path, "another machine") == []


def test_an_entry_a_run_read_several_times_costs_once(tmp_path):
    """A run records a cache entry each time it reads it, each time with what computing it took
    (the NsLoss chapter reads each fine-tuned model three times): counted once."""
    folder = tmp_path / "results" / "default" / "robust_models"
    folder.mkdir(parents=True)
    entries = [
        entry("models", 30.0, spec=spec(), key="a"),
        entry("models", 6.0, spec=None, key="tuned"),  # a fine-tune: evaluation work
        entry("results", 8.0, of_model="a", key="m"),
        entry("models", 6.0, spec=None, key="tuned", computed=False),
        entry("models", 6.0, spec=None, key="tuned", computed=False),
    ]
    record = {"chapter": "robust_models", "label": "default", "utc": "2026", "hardware": MACHINE}
    record |= {"wall_seconds": 60.0, "parameters": {}, "entries": entries}
    (folder / "costs.json").write_text(json.dumps(record))
    [run] = estimate.measured_runs(tmp_path, MACHINE)
    assert run.evaluation() == pytest.approx(6.0 + 8.0)
    assert run.overhead() == pytest.approx(60.0 - (30.0 + 6.0 + 8.0))


def test_the_nsloss_chapters_fine_tuned_models_count_as_its_evaluation_not_as_training():
    """Its plan lists them under a stand-in weight (the protocol picks the real one), so they are
    never in the cache under the plan's keys; a measured run spent their fine-tuning in its
    evaluation, which the estimate takes per model."""
    from robinterp import chapters

    config, _ = chapters.resolve_config("neuron_sensitivity", "smoke")
    plan = chapters.get_chapter("neuron_sensitivity").plan(config)
    tuned = {key for key in plan.specs if key[0] != "standard"}
    assert plan.fine_tuned == tuned and tuned
    # measured under another seed: 60 s of evaluation for its 4 planned models, 15 s each, and 30 s
    # fine-tuning its 3 (recorded without a spec), which scales with their epochs
    other = config.to_parameters() | {"seeds": [5]}
    entries = (entry("results", 60.0, key="r"), entry("models", 30.0, key="t"))
    measured_run = estimate.Measured("neuron_sensitivity", "smoke", "2026", MACHINE, 100.0, other, entries)
    found = estimate.estimate_configs("neuron_sensitivity", [config], [measured_run])
    assert (found.models, found.cached) == (len(plan.specs), 0) and len(plan.specs) == 8
    assert found.evaluation == pytest.approx(8 * 15.0 + 2 * 30.0)
    longer = dataclasses.replace(config, finetune_epochs=2 * config.finetune_epochs)
    assert estimate.estimate_configs("neuron_sensitivity", [longer], [measured_run]).evaluation == pytest.approx(
        8 * 15.0 + 2 * 2 * 30.0
    )  # twice the epochs: twice the fine-tuning
    assert "nsloss" not in found.unmeasured | found.approximate  # no stand-in trained from scratch


def test_a_seed_in_one_seed_list_does_not_make_the_models_of_another_list_cached():
    """The Zeng chapter trains its methods at ``seeds`` and its PGD grid at ``grid_seeds`` only: a
    run with seeds [0, 1] and grid_seeds [0] left no grid model at seed 1, so a config adding it
    to grid_seeds must train those (an earlier estimate counted every model of a seed the run
    had as cached, and put the long profile's Zeng chapter at 0.3 minutes)."""
    from robinterp import chapters

    ran, _ = chapters.resolve_config("robust_attribution", "smoke")
    ran = dataclasses.replace(ran, seeds=(0, 1), grid_seeds=(0,))
    wider = dataclasses.replace(ran, grid_seeds=(0, 1))
    plan = chapters.get_chapter("robust_attribution").plan(wider)
    grid_labels = {e.label for e in wider.grid}
    new_grid = {key for key in plan.specs if key[0] in grid_labels and key[1] == 1}
    assert new_grid and len(plan.specs) - len(new_grid) == len(
        chapters.get_chapter("robust_attribution").plan(ran).specs
    )
    run = estimate.Measured(
        "robust_attribution", "smoke", "2026", MACHINE, 100.0, ran.to_parameters(), (entry("results", 60.0, key="r"),)
    )
    same = estimate.estimate_configs("robust_attribution", [ran], [run])
    assert same.cached == same.models  # what the run planned is there
    found = estimate.estimate_configs("robust_attribution", [wider], [run])
    assert (found.models, found.cached) == (len(plan.specs), len(plan.specs) - len(new_grid))
