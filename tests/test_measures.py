"""Measures as units: each model's rows are one cache entry, keyed by exactly what they read."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pandas as pd
import pytest

from robinterp import measures
from robinterp.chapters import resolve_config
from robinterp.experiments import common
from robinterp.experiments import robust_models as robust_chapter
from robinterp.experiments import saliency_guided_training as sgt_chapter
from robinterp.measures.attack import AttackSettings
from robinterp.methods import method_table
from tests.test_methods import toy_method  # noqa: F401 (the toy training method's fixture)


def counting(monkeypatch) -> Counter:
    """Count every computation (not cache read) of every registered measure, by measure name and
    model key."""
    computed: Counter = Counter()
    for name, unit in list(measures.MEASURES.items()):

        def rows(model, settings, *, _unit=unit, **kw):
            computed[_unit.name, kw["model_key"]] += 1
            return _unit.rows(model, settings, **kw)

        monkeypatch.setitem(measures.MEASURES, name, dataclasses.replace(unit, rows=rows))
    return computed


def sgt_tables(cfg) -> dict[str, pd.DataFrame]:
    trained, records = sgt_chapter.train_all(cfg)
    return {
        "robust": sgt_chapter.robust_per_image(cfg, trained),
        "focus": sgt_chapter.map_focus(cfg, trained),
        "removal": sgt_chapter.faithfulness(cfg, trained),
        "records": records,
    }


def rows_of(table: pd.DataFrame, label: str) -> pd.DataFrame:
    return table[table.method == label].drop(columns="method").reset_index(drop=True)


@pytest.mark.slow
def test_a_newly_listed_method_computes_only_its_own_rows_and_the_same_rows_alone(
    toy_method,  # noqa: F811
    monkeypatch,
    tmp_path,
):
    """Real MNIST, the smoke profile's SGT chapter on one seed: listing a toy method next to
    standard training attacks and scores only the toy model (counted per measure and model), the
    standard model's rows are read back unchanged, and the toy model's rows equal those computed
    when it is listed alone, in a cache of its own."""
    smoke, _ = resolve_config("saliency_guided_training", profile="smoke")
    base = dataclasses.replace(smoke, seeds=(0,), methods=method_table({"standard": {"method": "standard"}}))
    toy = {"noise": {"method": "gaussian_noise", "sigma": 0.2}}  # a user's module (tests.test_methods)
    both = dataclasses.replace(base, methods=method_table({"standard": {"method": "standard"}, **toy}))
    alone = dataclasses.replace(base, methods=method_table(toy))

    monkeypatch.setenv("ROBINTERP_CACHE", str(tmp_path / "alone"))
    by_itself = sgt_tables(alone)

    monkeypatch.setenv("ROBINTERP_CACHE", str(tmp_path / "shared"))
    first = sgt_tables(base)
    computed = counting(monkeypatch)
    second = sgt_tables(both)
    toy_key = second["records"].set_index("method").loc["noise", "cache_key"]
    # one entry per listed attack, one per other measure: the toy model's only
    assert computed == Counter(
        {("attack", toy_key): len(both.attacks), ("background", toy_key): 1, ("removal", toy_key): 1}
    )
    for table in ("robust", "focus", "removal"):
        assert rows_of(second[table], "standard").equals(rows_of(first[table], "standard")), table
        assert rows_of(second[table], "noise").equals(rows_of(by_itself[table], "noise")), table


@pytest.mark.slow
def test_a_verdict_threshold_or_a_figure_size_computes_nothing_again(monkeypatch):
    """The issue's example: changing ``near_zero`` (a verdict threshold) or ``saliency_images`` (a
    figure's size) re-attacked every model while tables were keyed by the whole config."""
    smoke, _ = resolve_config("robust_models", profile="smoke")
    cfg = dataclasses.replace(smoke, seeds=(0,))
    trained, _ = robust_chapter.train_all(cfg)
    before = robust_chapter.robust_per_image(cfg, trained), robust_chapter.alignment_per_image(cfg, trained)
    computed = counting(monkeypatch)
    changed = dataclasses.replace(cfg, near_zero=cfg.near_zero / 2, saliency_images=cfg.saliency_images + 1)
    after = robust_chapter.robust_per_image(changed, trained), robust_chapter.alignment_per_image(changed, trained)
    assert not computed
    assert all(a.equals(b) for a, b in zip(before, after))
    computed_again = dataclasses.replace(cfg, attack_early_stop=not cfg.attack_early_stop)
    robust_chapter.robust_per_image(computed_again, trained)
    assert {name for name, _ in computed} == {"attack"} and len(computed) == len(trained)


def test_every_chapter_config_field_keys_the_measures_that_read_it_and_no_other():
    """Each field of the robust-models chapter changed one at a time: the attack measure's key
    changes exactly for the fields its settings are built from, and a field that no measure reads
    (a verdict threshold, a figure size, the training schedule: the model's own key holds that)
    changes none."""
    cfg = robust_chapter.RobustModelsConfig()
    reads = {"dataset", "eval_size", "epsilons", "attacks", "attack_early_stop"}
    changed_values = {
        "dataset": "fashion_mnist",
        "eval_size": 7,
        "epsilons": (0.0, 0.11),
        "attacks": robust_chapter.RobustModelsConfig.from_mapping(
            {"attacks": {"fgsm": {"attack": "fgsm"}, "pgd": {"attack": "pgd", "steps": 3}}}
        ).attacks,
        "attack_early_stop": False,
        "near_zero": 5.0,
        "saliency_images": 3,
        "alignment_size": 9,
        "epochs": 2.0,
        "lr": 0.01,
        "seeds": (4,),
        "train_size": 100,
        "batch_size": 64,
    }

    def keys(config) -> list:
        return [measures.cache_key(common.attack_settings(config, entry), "model", 0) for entry in config.attacks]

    for field, value in changed_values.items():
        moved = keys(dataclasses.replace(cfg, **{field: value})) != keys(cfg)
        assert moved == (field in reads), field


def test_unkeyed_settings_change_no_key_and_keyed_ones_do():
    settings = AttackSettings("mnist", 10, robust_chapter.RobustModelsConfig().attacks[1].spec, (0.1,))
    key = measures.cache_key(settings, "m", 0)
    assert measures.cache_key(dataclasses.replace(settings, batch_size=3), "m", 0) == key
    for field, value in (("size", 11), ("epsilons", (0.2,)), ("norm", "l2"), ("early_stop", False)):
        assert measures.cache_key(dataclasses.replace(settings, **{field: value}), "m", 0) != key, field
    assert measures.cache_key(settings, "m", 1) != key and measures.cache_key(settings, "n", 0) != key


def test_every_measure_is_registered_with_a_settings_class_a_title_and_documented_fields():
    assert {"attack", "clean", "removal", "background", "quality", "alignment", "road", "roar"} <= set(
        measures.MEASURES
    )
    for unit in measures.MEASURES.values():
        assert dataclasses.is_dataclass(unit.settings) and unit.settings.__dataclass_params__.frozen
        assert unit.title and unit.module.startswith("robinterp.measures.")
        source = __import__(unit.module, fromlist=["x"]).__file__
        text = open(source).read()
        for field in dataclasses.fields(unit.settings):  # every field carries a docstring
            assert f"    {field.name}:" in text and '"""' in text.split(f"    {field.name}:", 1)[1].split("\n", 2)[1]
