"""Configs: one-line errors for bad keys and values; profiles and notebooks agree with them."""

from __future__ import annotations

import ast
import dataclasses
import json

import pytest

from robinterp import RobinterpError, chapters, data_sources
from robinterp.codehash import stable_hash
from robinterp.config import ConfigError, field_docs
from robinterp.configs.robust_models import RobustModelsConfig
from robinterp.profiles import PROFILES
from tests.conftest import REPO

CHAPTER_CONFIGS = [(name, ch.config) for name, ch in chapters.CHAPTERS.items()]


@pytest.mark.parametrize(
    "values,match",
    [
        ({"epsilon": [0.1]}, "unknown key 'epsilon'.*did you mean 'epsilons'"),
        ({"epochs": "two"}, "epochs must be a number, got str 'two'"),
        ({"epochs": 0}, "epochs = 0.0 is out of range: it must be > 0"),
        ({"epsilons": [0.1, -0.2]}, r"epsilons = -0.2 is out of range: it must be >= 0"),
        ({"epsilons": [0.1, 2.0]}, r"epsilons = 2.0 is out of range: it must be <= 1"),
        ({"seeds": 3}, "seeds must be a list, got int"),
        ({"seeds": [1, 1]}, "seeds lists 1 twice"),
        ({"seeds": []}, "seeds must list at least 1 value"),
        ({"epsilons": []}, "epsilons must list at least 1 value"),
        ({"epsilons": [0.1, 0.3, 0.1]}, "epsilons lists 0.1 twice"),
        ({"model": "resnet50"}, "model = 'resnet50' is not one of"),
        ({"dataset": "mnits"}, "did you mean 'mnist'"),
        ({"methods": {"PGD-AT": {"method": "pgd_at", "eps": float("nan")}}}, r"methods\['PGD-AT'\]: .*must be finite"),
        ({"methods": {"PGD-AT": {"method": "pgd_at", "eps_warmup": 1.5}}}, "eps_warmup = 1.5 is out of range"),
        ({"methods": {"PGD-AT": {"method": "pgd_att"}}}, r"unknown training method 'pgd_att' \(did you mean 'pgd_at'"),
        ({"methods": {"PGD-AT": {"eps": 0.3}}}, r"methods\['PGD-AT'\] must be a mapping with a 'method' name"),
        ({"methods": {"PGD-AT": {"method": "pgd_at", "epochs": -1}}}, "epochs must be a number > 0 or null"),
        (
            {"methods": {"PGD-AT": {"method": "pgd_at", "stpes": 3}}},
            "unknown key 'stpes' for PGDATParams; did you mean 'steps'",
        ),
        ({"methods": ["standard"]}, "methods must map labels to methods"),
        ({"methods": {}}, "methods must map labels to methods"),
        ({"train_size": True}, "must be an integer, got bool"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_source(values, match):
    with pytest.raises(ConfigError, match=match) as err:
        RobustModelsConfig.from_mapping(values, source="my.yml")
    assert str(err.value).startswith("my.yml: ") and "\n" not in str(err.value)


def test_lists_become_tuples_and_ints_become_floats():
    cfg = RobustModelsConfig.from_mapping({"epsilons": [0, 0.5], "epochs": 2, "seeds": [4]})
    assert cfg.epsilons == (0.0, 0.5) and cfg.epochs == 2.0 and cfg.seeds == (4,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3.0


def test_hash_changes_with_any_field_and_not_otherwise():
    a, b = RobustModelsConfig(), RobustModelsConfig()
    assert stable_hash(a) == stable_hash(b)
    assert stable_hash(a) != stable_hash(dataclasses.replace(a, eval_size=21))


@pytest.mark.parametrize("chapter,config", CHAPTER_CONFIGS)
def test_every_field_has_a_docstring(chapter, config):
    docs = field_docs(config)
    assert all(docs.get(f.name) for f in dataclasses.fields(config)), chapter


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("chapter,config", CHAPTER_CONFIGS)
def test_every_profile_validates_for_every_chapter(profile, chapter, config):
    cfg, label = chapters.resolve_config(chapter, profile)
    assert isinstance(cfg, config) and label == profile


def test_unknown_profile_and_chapter(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'smok'.*did you mean 'smoke'"):
        chapters.resolve_config("robust_models", "smok")
    with pytest.raises(ConfigError, match="unknown chapter 'robust'"):
        chapters.resolve_config("robust", "smoke")


@pytest.mark.parametrize(
    "text,match",
    [
        ("robust_models: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("robust_models: 3\n", "section 'robust_models' must be a mapping"),
        ("robust_modles: {}\n", "unknown chapter section 'robust_modles'"),
        ("robust_models:\n  seeds: zero\n", "seeds must be a list"),
    ],
)
def test_bad_config_files(tmp_path, text, match):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        chapters.resolve_config("robust_models", config_file=path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        chapters.resolve_config("robust_models", config_file=tmp_path / "nope.yml")


def _parameters_cell(path):
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{path}: exactly one cell must be tagged 'parameters'"
    return {
        t.id: ast.literal_eval(node.value) for node in ast.parse("".join(cells[0]["source"])).body for t in node.targets
    }


@pytest.mark.parametrize("chapter", list(chapters.CHAPTERS))
def test_parameters_cell_equals_the_config_defaults(chapter):
    spec = chapters.CHAPTERS[chapter]
    values = _parameters_cell(REPO / spec.notebook)
    assert values.pop("profile") == "default"
    assert spec.config.from_mapping(values) == spec.config()


def test_notebook_sources_in_git_carry_no_outputs():
    for path in (REPO / "book").rglob("*.ipynb"):
        nb = json.loads(path.read_text())
        dirty = [
            i
            for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
        ]
        assert not dirty, f"{path}: cells {dirty} carry outputs; clear them before committing"


def test_every_chapter_is_in_the_toc_where_the_book_stages_it():
    toc = (REPO / "_toc.yml").read_text()
    for name, chapter in chapters.CHAPTERS.items():
        assert chapter.notebook == f"book/chapters/{name}.ipynb"
        assert f"file: book/chapters/{name}\n" in toc


@pytest.mark.parametrize("path", sorted((REPO / "book" / "configs").glob("*.yml")), ids=lambda p: p.name)
def test_every_shipped_config_file_validates(path):
    from robinterp.profiles import load_yaml

    for chapter in load_yaml(path):
        cfg, label = chapters.resolve_config(chapter, config_file=path)
        assert label == f"config-{path.stem}"


def test_the_cifar_config_stops_with_the_data_layers_message_when_cifar_is_absent(tmp_path, monkeypatch):
    from robinterp import data
    from robinterp.experiments import saliency_guided_training as chapter

    monkeypatch.setenv("ROBINTERP_DATA", str(tmp_path))
    monkeypatch.setattr(
        data_sources, "torchvision_download", lambda spec, root: (_ for _ in ()).throw(OSError("offline"))
    )
    cfg, _ = chapters.resolve_config(
        "saliency_guided_training", config_file=REPO / "book" / "configs" / "saliency_guided_training_cifar10_paper.yml"
    )
    with pytest.raises(data.DataError, match="cifar10: missing .*no offline source exists"):
        chapter.train_all(cfg)


@pytest.mark.parametrize("present", [None, "cifar10"])
def test_the_scaat_paper_settings_stop_with_the_data_layers_message_for_each_absent_data_set(
    tmp_path, monkeypatch, present
):
    """CIFAR-10 first; with it there (faked), PathMNIST, the second data set, stops the run."""
    from robinterp import data
    from robinterp.experiments import scaat as chapter

    monkeypatch.setenv("ROBINTERP_DATA", str(tmp_path))
    monkeypatch.setattr(
        data_sources, "torchvision_download", lambda spec, root: (_ for _ in ()).throw(OSError("offline"))
    )
    offline = dataclasses.replace(data.DATASETS["pathmnist"], downloader=lambda spec, root: 1 / 0)
    monkeypatch.setitem(data.DATASETS, "pathmnist", offline)
    cfg, _ = chapters.resolve_config("scaat", profile="paper")
    assert (cfg.dataset, cfg.extra_datasets) == ("cifar10", ("pathmnist",))
    if present:  # the first data set's models come from elsewhere; only the second one is missing
        import pandas as pd

        real = chapter.common.train_grid

        def cifar_from_elsewhere(specs):
            return ({}, pd.DataFrame()) if next(iter(specs.values())).dataset == "cifar10" else real(specs)

        monkeypatch.setattr(chapter.common, "train_grid", cifar_from_elsewhere)
        with pytest.raises(data.DataError, match="pathmnist: missing .*pathmnist.npz.*no offline source"):
            chapter.train_all(cfg)
    else:
        with pytest.raises(data.DataError, match="cifar10: missing .*no offline source exists"):
            chapter.train_all(cfg)


@pytest.mark.parametrize("config_file", [None, "neuron_sensitivity_vgg19_paper.yml"])
def test_the_nsloss_paper_settings_stop_with_the_data_layers_message_when_imagenette_is_absent(
    tmp_path, monkeypatch, config_file
):
    from robinterp import data
    from robinterp.experiments import neuron_sensitivity as chapter

    monkeypatch.setenv("ROBINTERP_DATA", str(tmp_path))
    offline = dataclasses.replace(data.DATASETS["imagenette"], downloader=lambda spec, root: 1 / 0)
    monkeypatch.setitem(data.DATASETS, "imagenette", offline)
    cfg, _ = (
        chapters.resolve_config("neuron_sensitivity", profile="paper")
        if config_file is None
        else chapters.resolve_config("neuron_sensitivity", config_file=REPO / "book" / "configs" / config_file)
    )
    assert (cfg.dataset, cfg.model) == ("imagenette", "preresnet10" if config_file is None else "vgg19")
    with pytest.raises(data.DataError, match="imagenette: missing .*imagenette2-320.tgz.*no offline source"):
        chapter.train_all(cfg)
    assert not list(tmp_path.iterdir())


def test_the_config_table_lists_changed_fields_first_with_their_defaults():
    from robinterp.book import config_table

    plain = config_table(RobustModelsConfig())
    assert not plain["value"].str.contains("default").any()  # None defaults count as unchanged
    table = config_table(dataclasses.replace(RobustModelsConfig(), eval_size=7, lr=0.01))
    assert list(table.index[:2]) == ["lr", "eval_size"]
    assert table.loc["eval_size", "value"] == f"7 (default: {RobustModelsConfig().eval_size})"
    assert table["value"].str.contains("default").sum() == 2 and list(table.columns) == ["value", "meaning"]
    # as a reader reads them: a tuple's items, a docstring without its literal marks
    seeds = config_table(dataclasses.replace(RobustModelsConfig(), seeds=(3,)))
    assert seeds.loc["seeds", "value"] == f"3 (default: {', '.join(map(str, RobustModelsConfig().seeds))})"
    from robinterp.configs.saliency_guided_training import SaliencyGuidedConfig

    assert any("``" in row["doc"] for row in SaliencyGuidedConfig().describe())
    assert not config_table(SaliencyGuidedConfig())["meaning"].str.contains("``").any()


def test_the_code_version_follows_computing_modules_only(tmp_path):
    import shutil

    from robinterp.codehash import source_digest

    package = tmp_path / "robinterp"
    shutil.copytree(REPO / "robinterp", package, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest(package)
    (package / "plots.py").write_text((package / "plots.py").read_text() + "\n# a caption fix\n")
    assert source_digest(package) == before, "a plotting edit would retrain every model"
    (package / "attacks" / "pgd.py").write_text((package / "attacks" / "pgd.py").read_text() + "\n# a step fix\n")
    assert source_digest(package) != before
    (package / "experiments" / "common.py").write_text("# changed\n")
    assert source_digest(package) != before


def test_glued_values_are_plain_python_numbers_that_format_strings_accept():
    import numpy as np

    from robinterp.book import plain

    for value in (np.float64(20.46), np.float32(1.5), np.int64(3), 2.5, "text"):
        assert repr(plain(value)) == repr(value.item() if isinstance(value, np.generic) else value)
        if not isinstance(value, str):
            assert float(repr(plain(value))) == float(value)  # what myst-nb does with text/plain


def test_tables_for_display_round_and_show_missing_values_as_a_dash():
    import numpy as np
    import pandas as pd

    from robinterp.book import for_display

    shown = for_display(pd.DataFrame({"claim": ["a", "b"], "paper": [98.8, np.nan], "ours": [1.234, 2.0]}))
    assert shown["paper"].tolist() == [98.8, "\u2014"] and shown["ours"].tolist() == [1.23, 2.0]
    assert shown["claim"].tolist() == ["a", "b"]
    # a tie as the prose's glue formats it: 75.45 (a mean of 0s and 100s over 2000 images) is 75.5
    tie = for_display(pd.DataFrame({"leak": [75.45, 0.125]}), digits=1)["leak"].tolist()
    assert tie == [float(f"{75.45:.1f}"), float(f"{0.125:.1f}")] == [75.5, 0.1]


def test_a_tables_index_name_heads_its_column_in_the_one_header_row():
    import pandas as pd

    from robinterp.book import config_table, for_display

    for table in (
        config_table(RobustModelsConfig()),
        for_display(pd.DataFrame({"a": [1.0]}, index=pd.Index(["x"], name="claim"))),
    ):
        head = table.to_html().split("<tbody>")[0]
        assert head.count("<tr") == 1, head  # pandas puts a named index on a second header row
    assert "<th>field</th>" in config_table(RobustModelsConfig()).to_html().split("<tbody>")[0]
    two_levels = for_display(
        pd.DataFrame({"a": [1.0]}, index=pd.MultiIndex.from_tuples([("m", 0)], names=["method", "seed"]))
    )
    assert list(two_levels.index.names) == ["method", "seed"]  # several names keep their row


def test_mean_sd_over_seeds_shows_the_mean_alone_for_one_seed():
    import pandas as pd

    from robinterp.book import mean_sd

    runs = pd.DataFrame({"method": ["A", "A", "B"], "accuracy": [0.90, 0.94, 0.815]})
    cells = mean_sd(runs, ["method"], "accuracy", scale=100).set_index("method")["mean ± sd"]
    assert cells.to_dict() == {"A": "92.0 ± 2.8", "B": "81.5"}  # one seed: no sd, not "± 0.0"


def _package_copy(tmp_path):
    import shutil

    package = tmp_path / "robinterp"
    shutil.copytree(REPO / "robinterp", package, ignore=shutil.ignore_patterns("__pycache__"))
    return package


def _edit(path, old=None, new=None):
    text = path.read_text()
    assert old is None or old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new) if old else text + "\n# an edit\n")


def _model_roots():
    """The code roots of one model per registered method (what keys each model)."""
    from robinterp import train
    from robinterp.methods import registry

    return {name: train.model_code(train.TrainSpec(method=name)) for name in registry()}


def test_model_keys_follow_the_loop_and_their_own_method_only(tmp_path):
    from robinterp.codehash import module_closure, source_digest

    package = _package_copy(tmp_path)
    roots = _model_roots()

    def keys():
        return {name: source_digest(package, r) for name, r in roots.items()}

    def changed_by(path, old=None, new=None):
        before = keys()
        _edit(path, old, new)
        after = keys()
        return {name for name in before if before[name] != after[name]}

    closure = {p.relative_to(package).as_posix() for p in module_closure(package, roots["standard"])}
    assert {"train.py", "models.py", "data.py", "methods/standard.py"} <= closure
    assert not any(n.startswith(("attacks/", "experiments/", "measures/")) for n in closure)
    assert changed_by(package / "methods" / "pgd_at.py") == {"pgd_at"}
    assert changed_by(package / "methods" / "saliency_guided.py") == {"sgt", "sga", "asgt"}
    assert changed_by(package / "methods" / "nsloss.py") == {"nsloss"}
    # shared maths keys the methods that import it, and no other
    assert changed_by(package / "methods" / "_schedules.py") == {"fgsm_at", "pgd_at", "scaat"}
    assert changed_by(package / "attacks" / "_steps.py") == {"fgsm_at", "pgd_at", "sgt", "sga", "asgt", "scaat"}
    # an attack keys the methods that train with it; an evaluation-only one keys none
    assert changed_by(package / "attacks" / "pgd.py") == {"pgd_at", "sgt", "sga", "asgt", "scaat"}
    assert changed_by(package / "attacks" / "fgsm.py") == {"fgsm_at", "sgt", "sga", "asgt"}
    assert changed_by(package / "attacks" / "autoattack.py") == set()
    # messages, YAML, the registry, the cache, how robust accuracy is counted, chapters and verdicts
    # key no model
    assert changed_by(package / "config.py", "must be an integer", "must be a whole number") == set()
    for neutral in (
        "profiles.py",
        "methods/__init__.py",
        "attacks/__init__.py",
        "attacks/autoattack.py",
        "measures/__init__.py",
        "measures/attack.py",
        "data_sources.py",
        "cache.py",
        "codehash.py",
        "runner.py",
        "robustness.py",
        "experiments/common.py",
        "experiments/saliency_guided_training.py",
        "reports/neuron_sensitivity.py",
    ):
        assert changed_by(package / neutral) == set(), f"editing {neutral} would retrain models"
    # the loop, the models and the data key every model
    for shared in ("train.py", "models.py", "data.py"):
        assert changed_by(package / shared) == set(roots), shared
    with pytest.raises(RobinterpError, match="no module 'robinterp.nope'"):
        module_closure(package, ("robinterp.nope",))


def test_a_method_module_outside_the_package_keys_its_models_by_its_own_source(tmp_path, monkeypatch):
    from robinterp.codehash import module_closure, source_digest

    (tmp_path / "outside_method.py").write_text("from robinterp.attacks import pgd\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    package = _package_copy(tmp_path / "copy")
    roots = ("robinterp.train", "outside_method")
    files = {p.name for p in module_closure(package, roots)}
    assert {"outside_method.py", "pgd.py", "_steps.py", "train.py"} <= files
    before = source_digest(package, roots)
    _edit(tmp_path / "outside_method.py")
    assert source_digest(package, roots) != before


def test_verdicts_and_tables_key_no_cached_result(tmp_path):
    """Rewording a verdict must not retrain a chapter's models or recompute its results."""
    from robinterp.chapters import CHAPTERS
    from robinterp.codehash import source_digest

    package = _package_copy(tmp_path)
    keyed = [*_model_roots().values(), *((f"robinterp.experiments.{name}",) for name in CHAPTERS)]
    before = [source_digest(package, roots) for roots in keyed]
    for report in (package / "reports").glob("*.py"):
        _edit(report)
    _edit(package / "book.py")
    _edit(package / "plots.py")
    assert [source_digest(package, roots) for roots in keyed] == before
    chapter = package / "experiments" / "neuron_sensitivity.py"
    _edit(chapter)
    assert (
        source_digest(package, ("robinterp.experiments.neuron_sensitivity",))
        != before[keyed.index(("robinterp.experiments.neuron_sensitivity",))]
    )


def test_no_measure_is_keyed_by_a_training_method_a_page_title_or_a_verdict(tmp_path):
    """A measure's rows are keyed by the model's key (which holds its method's code), its settings
    and the measure's own code: an edit to the SGT family's module (the masking it shares with the
    removal test lives in ``robinterp.masking``), to the page titles or to a chapter's verdicts
    recomputes no measure of any other model, while an edit to the masking recomputes the removal
    test's (and those of the other measures built on ``robinterp.metrics``, which imports it: a
    cache key follows files, not functions), never the attacks' or the Quantus metrics'."""
    from robinterp import measures
    from robinterp.codehash import source_digest
    from robinterp.measures.attack import AttackSettings

    package = _package_copy(tmp_path)
    units = {name: (unit.module,) for name, unit in measures.MEASURES.items()}
    attack = AttackSettings("mnist", 4, RobustModelsConfig().attacks[1].spec, (0.1,))
    units["attack"] += measures.MEASURES["attack"].code(attack)
    before = {name: source_digest(package, roots) for name, roots in units.items()}
    for neutral in ("titles.py", "methods/saliency_guided.py", "methods/nsloss.py", "reports/rules.py"):
        _edit(package / neutral)
        assert {name: source_digest(package, roots) for name, roots in units.items()} == before, neutral
    _edit(package / "masking.py")
    changed = {name for name, roots in units.items() if source_digest(package, roots) != before[name]}
    assert "removal" in changed and not changed & {"attack", "clean", "quality"}, changed


def test_papermill_text_parameters_for_lists_and_tables_are_read_as_yaml():
    """``papermill -p seeds "[0, 1]"`` injects the text "[0, 1]": read it as YAML, as -y would."""
    namespace = RobustModelsConfig().to_parameters()
    cfg = RobustModelsConfig.from_namespace(
        {**namespace, "seeds": "[0, 1]", "methods": "{standard: {method: standard}}"}
    )
    assert cfg.seeds == (0, 1) and cfg.labels() == ["standard"]
    with pytest.raises(ConfigError, match=r"^seeds: '\[0, 1' is not valid YAML"):
        RobustModelsConfig.from_namespace({**namespace, "seeds": "[0, 1"})
    with pytest.raises(ConfigError, match="seeds must be a list, got str 'zero'"):
        RobustModelsConfig.from_namespace({**namespace, "seeds": "zero"})
    with pytest.raises(ConfigError, match="at most 20000"):
        RobustModelsConfig.from_namespace({**namespace, "seeds": "[" + "0, " * 10000 + "0]"})
    with pytest.raises(ConfigError, match="dataset"):  # a text field's text is never read as YAML
        RobustModelsConfig.from_namespace({**namespace, "dataset": "[mnist]"})


def test_the_training_table_a_page_shows_is_indexed_by_method_and_seed_with_short_keys():
    import pandas as pd

    from robinterp import book

    records = pd.DataFrame(
        {
            "method": ["standard", "PGD-AT"],
            "seed": [0, 0],
            "trained_by": ["standard", "pgd_at"],
            "cache_key": ["0123456789abcdef", "fedcba9876543210"],
            "from_cache": [True, False],
            "train_minutes": [0.11694, 1.71991],
            "test_accuracy": [0.96512, 0.94031],
            "parameters": [215370, 215370],
        }
    )
    shown = book.training_table(records)
    assert list(shown.index.names) == ["method", "seed"] and "parameters" not in shown
    assert shown["cache key"].tolist() == ["01234567…", "fedcba98…"]
    assert shown["minutes"].tolist() == [0.117, 1.72]
