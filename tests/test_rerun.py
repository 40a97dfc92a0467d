"""``robinterp book --rerun``: which chapters a book executes when every chapter is current."""

from __future__ import annotations

import subprocess

import pytest

from robinterp import chapters, executors, site
from robinterp.paths import build_root
from tests.test_runner import ToyConfig, saving_notebook, toy_plan

LABEL = "good"


@pytest.fixture
def two_chapters(tmp_path, monkeypatch):
    """Chapters a and b (toy notebooks, registered in the one registry dict the site reads), and a
    book whose HTML build is stubbed: what is under test is which chapters execute, and building
    the real jupyter-book HTML (of the real _toc.yml, which does not list a and b) takes minutes."""
    for name in ("a", "b"):
        path = saving_notebook(tmp_path / f"{name}.ipynb", name)  # a chapter is current with its tables published
        monkeypatch.setitem(chapters.CHAPTERS, name, chapters.Chapter(name, str(path), ToyConfig, toy_plan))
    monkeypatch.setattr(site, "_vendor_mathjax", lambda stage: False)  # no npm fetch: MathJax stays on its CDN
    builds = []
    real_run = subprocess.run

    def jupyter_book(command, *args, **kwargs):
        """The one subprocess publish runs: recorded, and its index.html made, as a build would."""
        if not str(command[0]).endswith("jupyter-book"):
            return real_run(command, *args, **kwargs)
        builds.append(command)
        stage = build_root() / "source"
        (stage / "_build" / "html").mkdir(parents=True)
        (stage / "_build" / "html" / "index.html").write_text("<html></html>")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(site.subprocess, "run", jupyter_book)
    return builds


def test_rerun_names_the_chapters_to_execute_again_and_keeps_the_others(two_chapters, capsys):
    configs = {name: (ToyConfig(), LABEL) for name in ("a", "b")}
    executed = {name: build_root() / "executed" / LABEL / f"{name}.ipynb" for name in configs}

    def book(rerun):
        """Publish the book; which chapters it executed (their notebooks rewritten) and kept."""
        before = {name: path.stat().st_mtime_ns if path.exists() else None for name, path in executed.items()}
        capsys.readouterr()
        assert site.publish(configs, False, executors.IN_PROCESS, rerun) == build_root() / "html" / "index.html"
        out = capsys.readouterr().out
        ran = {name for name, path in executed.items() if path.stat().st_mtime_ns != before[name]}
        kept = {name for name in configs if f"{name} under {LABEL}: unchanged since it last ran" in out}
        assert ran.isdisjoint(kept) and ran | kept == set(configs), out
        assert {name for name in configs if f"executing {name} under {LABEL}" in out} == ran, out
        return ran

    assert book(None) == {"a", "b"}  # nothing ran yet: every chapter runs
    assert book(None) == set()  # every chapter current: all kept
    assert book(["a"]) == {"a"}  # only the one named, b kept
    assert book([]) == {"a", "b"}  # --rerun naming none: every chapter
    assert len(two_chapters) == 4  # and the book was built every time
    assert all(len(list((build_root() / "results" / LABEL / name).glob("*.csv"))) == 2 for name in configs)
