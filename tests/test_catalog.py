"""robinterp list and robinterp run CHAPTER --help: read from the registries, one line each."""

from __future__ import annotations

import contextlib
import dataclasses
import io

import pytest

from robinterp import (
    __version__,
    attacks,
    catalog,
    chapters,
    cli,
    data,
    explain,
    explanation_quality,
)
from robinterp.methods import registry
from robinterp.profiles import PROFILES


def cli_output(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(args))
    return code, out.getvalue()


def test_the_listing_names_every_registered_item_on_its_own_line():
    code, text = cli_output("list")
    assert code == 0
    lines = text.splitlines()
    names = [
        *chapters.CHAPTERS,
        *PROFILES,
        *registry(),
        *attacks.registry(),
        *explain.EXPLAINERS,
        *explanation_quality.registry(),
        *data.DATASETS,
    ]
    for name in names:
        rows = [line for line in lines if line.strip().split(" ")[0] == name]
        assert rows, f"{name} is not listed"
        assert len(rows[0].split(name, 1)[1].strip()) > 5, f"{name} has no description"
    assert "Robust models see differently" in text and "the papers' own settings, for a GPU." in text


@pytest.mark.parametrize("chapter", list(chapters.CHAPTERS))
def test_a_chapters_help_lists_each_setting_with_its_default_and_meaning(chapter):
    code, text = cli_output("run", chapter, "--help")
    assert code == 0
    for field in dataclasses.fields(chapters.CHAPTERS[chapter].config):
        assert f"\n  {field.name} = " in text, field.name
    assert "seeds = [0, 1, 2]" in text or chapter not in ("scaat", "synthesis")


def test_help_for_a_mistyped_chapter_says_the_chapter_is_unknown():
    """``robinterp run robust_model --help`` printed the command's help with exit 0, as if the
    chapter existed."""
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(["run", "robust_model", "--help"])
    assert code == 2 and err.getvalue().startswith("robinterp: error: unknown chapter 'robust_model'")
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(io.StringIO()) as out:
        cli.main(["run", "--help"])  # the command's own help, with no chapter named
    assert exit_.value.code == 0 and "--profile" in out.getvalue()
    assert catalog.profile_summary("smoke").startswith("every chapter end to end")


def test_the_listing_names_data_sets_by_title_and_says_which_are_offline():
    text = cli_output("list")[1]
    assert "fashion_mnist  Fashion-MNIST: 28x28x1, 10 classes (offline source here)" in text
    assert "cifar10        CIFAR-10: 32x32x3, 10 classes (needs internet once)" in text


def test_version():
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(io.StringIO()) as out:
        cli.main(["--version"])
    assert exit_.value.code == 0 and out.getvalue().strip() == f"robinterp {__version__}"
