"""The package's layers (pyproject.toml, [tool.importlinter]): every module imports only from
the layers below its own, so that data and models know nothing of methods, methods nothing of
training, measures nothing of chapters, and chapters nothing of their pages."""

from __future__ import annotations

from importlinter.cli import lint_imports

from tests.conftest import REPO


def test_the_package_imports_only_down_its_layers(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0
