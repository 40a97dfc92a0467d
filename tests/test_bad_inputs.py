"""Bad config inputs, by class: every one ends in exit code 2 and one line on stderr, under 300
characters, naming the cause and the fix, and nothing is written to the cache, build or data
folders. The cases are members of classes (unbounded input, unreadable files, silent
defaults), not an exhaustive list."""

from __future__ import annotations

import os
import subprocess

import pytest

from robinterp import config, profiles
from robinterp.config import ConfigError
from robinterp.configs.robust_models import RobustModelsConfig


def nested_aliases(levels: int, width: int) -> str:
    """The billion-laughs pattern: each level lists the one below ``width`` times."""
    text = "robust_models:\n  methods:\n    standard: {method: standard}\n"
    text += "l0: &l0 [" + ", ".join(["lol"] * width) + "]\n"
    for i in range(1, levels):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]\n"
    return text


BAD_TEXTS = {
    "nested aliases": (nested_aliases(9, 9), "expands to more than"),
    "doubling aliases": (nested_aliases(60, 2), "more than 100 aliases"),
    "a list inside a list": ("robust_models:\n  epsilons: [[" + ", ".join(["0.1"] * 5000) + "]]\n", "must be a number"),
    "a key given twice": ("robust_models:\n  eval_size: 10\n  eval_size: 20\n", "given twice"),
    "a chapter given twice": ("robust_models: {}\nrobust_models: {eval_size: 3}\n", "given twice"),
    "ten thousand seeds": (
        "robust_models:\n  seeds: [" + ", ".join(map(str, range(10000))) + "]\n",
        "holds 10000 values; at most 100",
    ),
    "a seed of 2**64": (f"robust_models:\n  seeds: [{2**64}]\n", "out of range"),
    "a negative huge size": (f"robust_models:\n  eval_size: {-(2**70)}\n", "out of range"),
    "a megabyte string": ("robust_models:\n  dataset: '" + "x" * 200_000 + "'\n", "dataset"),
    "a long unknown key": ("robust_models:\n  " + "k" * 1000 + ": 1\n", "unknown key"),
    "no section for the chapter": ("saliency_guided_training:\n  epochs: 1\n", "has no section 'robust_models'"),
    "values nested 5000 deep": ("robust_models:\n  eval_size: " + "[" * 5000 + "]" * 5000 + "\n", "levels deep"),
    "a number of 19000 digits": ("robust_models:\n  eval_size: " + "9" * 19000 + "\n", "19000 digits"),
    "a label with a newline": ('robust_models:\n  methods:\n    "a\\nb": {method: standard}\n', "plain name"),
    "a label with markup": ("robust_models:\n  methods:\n    '`x` **y**': {method: standard}\n", "plain name"),
    "a label of 1000 characters": (
        "robust_models:\n  methods:\n    " + "L" * 1000 + ": {method: standard}\n",
        "plain name",
    ),
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The command line in this process (what ``python -m robinterp`` runs, without the start-up
    cost; tests/test_runner.py runs it as a process too)."""
    import contextlib
    import io

    from robinterp import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_refused(result: subprocess.CompletedProcess, needle: str) -> None:
    from robinterp.paths import build_root, cache_root, data_root

    err = result.stderr
    assert result.returncode == 2, err[-500:]
    assert err.count("\n") == 1 and len(err) < 300, f"{len(err)} characters: {err[:300]}"
    assert needle in err, err
    assert not build_root().exists() and not cache_root().exists()
    assert not any(p.name.startswith(".") for p in data_root().glob("*")) if data_root().exists() else True


@pytest.mark.parametrize("case", list(BAD_TEXTS))
def test_an_unbounded_or_ambiguous_config_is_one_short_line(tmp_path, case):
    text, needle = BAD_TEXTS[case]
    path = tmp_path / "bad.yml"
    path.write_text(text)
    assert_refused(run_cli("run", "robust_models", "--config", str(path)), needle)


def write_bad_file(tmp_path, kind: str):
    path = tmp_path / "bad.yml"
    if kind == "a folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "latin-1":
        path.write_bytes("robust_models:\n  dataset: 'caf\u00e9'\n".encode("latin-1"))
    elif kind == "a NUL byte":
        path.write_bytes(b"robust_models:\n  eval_size: 1\x00\n")
    elif kind == "over a megabyte":
        path.write_text("# " + "x" * (profiles.MAX_CONFIG_BYTES + 10) + "\n")
    elif kind == "an endless stream":
        return "/dev/zero"
    elif kind == "a pipe":
        os.mkfifo(path)
    elif kind == "a file name with a space":
        path = tmp_path / "my config.yml"
        path.write_text("robust_models: {}\n")
    return str(path)


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("a folder", "not a regular file"),
        ("an endless stream", "not a regular file"),
        ("a pipe", "not a regular file"),
        ("binary", "not UTF-8"),
        ("latin-1", "not UTF-8"),
        ("a NUL byte", "not UTF-8"),
        ("over a megabyte", "over 1 MB"),
        ("a file name with a space", "plain name"),
    ],
)
def test_a_config_file_that_is_not_readable_yaml_text_is_one_short_line(tmp_path, kind, needle):
    assert_refused(run_cli("run", "robust_models", "--config", write_bad_file(tmp_path, kind)), needle)


def test_papermill_text_parameters_are_bounded_too():
    """``-p seeds "[...]"`` is YAML text read in the kernel: the same bounds, naming the parameter."""
    namespace = {**RobustModelsConfig().to_parameters(), "seeds": "[" + ", ".join(map(str, range(500))) + "]"}
    with pytest.raises(ConfigError, match="seeds holds 500 values") as err:
        RobustModelsConfig.from_namespace(namespace)
    assert len(str(err.value)) <= config.MAX_MESSAGE
    namespace["seeds"] = nested_aliases(9, 9).split("\n", 3)[3]
    with pytest.raises(ConfigError, match="seeds: .*expands to more than"):
        RobustModelsConfig.from_namespace(namespace)


def test_an_error_keeps_what_failed_and_how_to_fix_it_when_cut():
    message = "field x = " + "9" * 1000 + " is out of range: it must be <= 3"
    line = config.one_line(message)
    assert len(line) <= config.MAX_MESSAGE and line.startswith("field x = ") and line.endswith("<= 3")
    assert config.one_line("first\nsecond") == "first"
    assert config.shown("y" * 10_000).count("y") < 100 and len(config.shown(list(range(10**5)))) < 100


def test_labels_are_plain_names_in_any_alphabet():
    cfg = RobustModelsConfig.from_mapping(
        {"methods": {"Linf eps 4/255 (20 steps)": {"method": "pgd_at"}, "λ 0.1 (ours)": {"method": "standard"}}}
    )
    assert cfg.labels() == ["Linf eps 4/255 (20 steps)", "λ 0.1 (ours)"]


def test_an_empty_section_runs_the_defaults_and_says_so_in_the_label(tmp_path):
    from robinterp import chapters

    path = tmp_path / "empty.yml"
    path.write_text("robust_models: {}\n")
    cfg, label = chapters.resolve_config("robust_models", config_file=path)
    assert cfg == RobustModelsConfig() and label == "config-empty"
