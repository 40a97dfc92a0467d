"""What a run can be told is read without torch (``robinterp.settings``, ``robinterp.configs``): a
config error is reported before anything heavy is imported, and the declarations agree with the
units that compute."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from robinterp import attacks, data, explain, explanation_quality, methods, models, train
from robinterp.attacks import _steps
from robinterp.codehash import NEUTRAL_MODULES, PACKAGE, module_closure
from robinterp.config import ConfigError
from robinterp.configs.robust_attribution import RobustAttributionConfig
from robinterp.experiments import benchmark_measures, common
from robinterp.methods import attribution_alignment, nsloss
from robinterp.profiles import PROFILES
from robinterp.settings import choices
from robinterp.settings import methods as method_settings
from robinterp.settings import metrics as metric_settings
from robinterp.settings.attacks import OPTIONS
from tests.conftest import REPO

HEAVY = ("torch", "torchvision", "captum", "quantus", "numpy", "pandas", "matplotlib", "scipy")


def imported_after(code: str, tmp_path) -> dict:
    """Run ``code`` in a fresh interpreter (its last value in ``result``) and return it and
    which heavy libraries it had imported by then."""
    script = f"import json, sys\n{code}\nprint(json.dumps({{'result': result, 'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_chapter_config_under_every_profile_resolves_without_importing_torch(tmp_path):
    code = (
        "from robinterp import chapters\n"
        f"result = [chapters.resolve_config(name, profile)[1] for name in chapters.CHAPTERS for profile in {PROFILES!r}]\n"
        "chapters.book_configs('default', {'saliency_images': 3})"
    )
    found = imported_after(code, tmp_path)
    assert len(found["result"]) == 6 * len(PROFILES)
    assert found["heavy"] == []


@pytest.mark.parametrize(
    "section,match",
    [
        ("robust_modles: {}", "unknown chapter section 'robust_modles'"),
        ("robust_models: {sedes: [0]}", "unknown key 'sedes'"),
        ("robust_models: {methods: {x: {method: pgd, eps: 0.3}}}", "unknown training method 'pgd'"),
        ("robust_models: {methods: {x: {method: pgd_at, eps: -1}}}", "eps = -1.0 is out of range"),
        ("robust_models: {attacks: {x: {attack: pgd, step: 3}}}", "attack 'pgd' has no option 'step'"),
        ("neuron_sensitivity: {metrics: {m: {metric: sparsenes}}}", "unknown explanation metric 'sparsenes'"),
        ("robust_attribution: {seeds: [0], grid_seeds: [1]}", "grid_seeds .* must be among seeds"),
        (
            "robust_attribution: {methods: {alignment: {method: attribution_alignment}}}",
            "teacher .* must be one of the listed methods",
        ),
    ],
)
def test_a_config_error_ends_in_one_line_before_torch_is_imported(tmp_path, section, match):
    bad = tmp_path / "bad.yml"
    bad.write_text(section + "\n")
    chapter = section.split(":")[0].replace("robust_modles", "robust_models")
    code = (
        "import contextlib, io\n"
        "from robinterp import cli\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        f"    rc = cli.main(['run', {chapter!r}, '--config', {str(bad)!r}])\n"
        "result = [rc, err.getvalue()]"
    )
    found = imported_after(code, tmp_path)
    rc, message = found["result"]
    assert rc == 2 and len(message.strip().splitlines()) == 1, message
    assert __import__("re").search(match, message), message
    assert found["heavy"] == [], f"{found['heavy']} imported before the config error"


def test_a_mistyped_chapter_to_rerun_ends_in_one_line_before_torch_is_imported(tmp_path):
    code = (
        "import contextlib, io\n"
        "from robinterp import cli\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        "    rc = cli.main(['book', '--rerun', 'robust_modles'])\n"
        "result = [rc, err.getvalue()]"
    )
    found = imported_after(code, tmp_path)
    rc, message = found["result"]
    assert rc == 2 and "unknown chapter 'robust_modles'" in message and len(message.strip().splitlines()) == 1
    assert found["heavy"] == []


def test_the_declared_names_are_the_implementations_names():
    assert choices.DATASETS == tuple(data.DATASETS)
    assert choices.MODELS == tuple(models.MODELS)
    assert choices.OPTIMIZERS == tuple(train.OPTIMIZERS)
    assert choices.NORMS == tuple(_steps.NORMS)
    assert choices.RANDOM_GUESS_CE == tuple(nsloss.RANDOM_GUESS_CE)
    assert choices.EXPLAINERS == tuple(explain.EXPLAINERS)
    assert choices.MEASURE_GROUPS == tuple(benchmark_measures.GROUPS)


def test_every_unit_of_the_package_is_declared_as_it_computes():
    package_methods = {n: m for n, m in methods.registry().items() if m.loss.__module__.startswith("robinterp.")}
    assert {n: m.params for n, m in package_methods.items()} == method_settings.PARAMS
    package_attacks = {n: a for n, a in attacks.registry().items() if a.module.startswith("robinterp.")}
    assert {n: a.options_class for n, a in package_attacks.items()} == OPTIONS
    for name, attack in package_attacks.items():
        assert [f.name for f in dataclasses.fields(attack.options_class)] == attack.options(), name
    metrics = explanation_quality.registry()
    assert {n: m.options() for n, m in metrics.items()} == metric_settings.OPTIONS


def test_a_package_method_whose_parameters_are_not_the_declared_ones_is_refused(monkeypatch):
    monkeypatch.setitem(method_settings.PARAMS, "pgd_at", method_settings.FGSMATParams)
    names = ("robinterp.methods.pgd_at",)
    with pytest.raises(ConfigError, match="method 'pgd_at' of robinterp.methods.pgd_at: its parameters must be"):
        methods._discover.__wrapped__(names)


def test_the_configs_teacher_is_the_model_the_method_trains_as_its_teacher():
    """The config finds a listed teacher without torch; it must be the model whose training spec the
    method's own derivation gives (``attribution_alignment.teacher_spec``)."""
    cfg = RobustAttributionConfig()
    student = next(e for e in cfg.methods if e.method == "attribution_alignment")
    label = cfg.teacher_label(student)
    spec = common.train_spec(cfg, student, 0, epochs=cfg.epochs, lr=cfg.lr)
    teacher = next(e for e in cfg.methods if e.label == label)
    assert common.train_spec(cfg, teacher, 0, epochs=cfg.epochs, lr=cfg.lr) == attribution_alignment.teacher_spec(spec)
    # a teacher trained for other epochs is another model: no listed one matches
    longer = student.with_params(teacher_epochs=cfg.epochs * 2)
    assert cfg.teacher_label(longer) is None


def test_the_declarations_key_nothing_and_the_teacher_derivation_keys_the_students():
    def files(method: str) -> set[str]:
        """The package files whose source keys a model of ``method``."""
        spec = train.TrainSpec(method=method)
        closure = {p.relative_to(PACKAGE).as_posix() for p in module_closure(PACKAGE, train.model_code(spec))}
        return closure - NEUTRAL_MODULES

    student = files("attribution_alignment")
    assert "settings/teachers.py" in student and "methods/attribution_alignment.py" in student
    assert not {"settings/methods.py", "settings/choices.py", "settings/attacks.py"} & student
    assert not any(f.startswith("settings/") for f in files("pgd_at"))
