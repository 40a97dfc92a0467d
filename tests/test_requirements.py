"""Every third-party package the code imports is declared, pinned, in requirements.txt: a fresh
machine installs what the package needs, not what happened to come along as a dependency."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions

from tests.conftest import REPO

# imported by the tests, the benchmarks and the book's machinery only through the packages above them
ROOTS = ("robinterp", "tests", "benchmarks")


def imported_top_levels() -> dict[str, str]:
    """Every absolute top-level module imported anywhere under ``ROOTS``, with one file importing it."""
    found: dict[str, str] = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def declared() -> dict[str, str]:
    """The pins of requirements.txt and of the benchmarks' extras (``make bench`` installs them),
    by normalised distribution name."""
    pins = {}
    text = (REPO / "requirements.txt").read_text() + (REPO / "benchmarks" / "requirements.txt").read_text()
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_every_third_party_import_is_declared_and_pinned():
    ours = {"robinterp", "tests", "benchmarks"}
    distributions = packages_distributions()
    pins = declared()
    missing = []
    for module, where in sorted(imported_top_levels().items()):
        if module in ours or module in sys.stdlib_module_names or module == "__future__":
            continue
        # a package not installed here (the benchmarks' extras before make bench) by its own name
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        if not names & set(pins):
            missing.append(f"{module} ({where}; distribution {sorted(names) or 'not installed'})")
    assert not missing, "imported but not pinned in requirements.txt: " + "; ".join(missing)


def test_the_check_fails_on_an_undeclared_import(monkeypatch):
    """The check itself: a module importing a package requirements.txt leaves out is reported."""
    real = imported_top_levels

    monkeypatch.setattr(
        sys.modules[__name__], "imported_top_levels", lambda: {**real(), "packaging": "robinterp/toy.py"}
    )
    try:
        test_every_third_party_import_is_declared_and_pinned()
    except AssertionError as err:
        assert "packaging (robinterp/toy.py" in str(err)
    else:
        raise AssertionError("an undeclared import passed the check")
