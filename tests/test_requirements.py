"""Every third-party package the code imports is declared, pinned, in requirements.txt: a fresh
machine installs what the package needs, not what happened to come along as a dependency. And
requirements.lock (what ``make`` installs, with hashes) is requirements.txt resolved: the same
pins, every package hashed, and the environment the tests run in is the lock's."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

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


def pinned(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements or lock file, by normalised distribution name."""
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def declared() -> dict[str, str]:
    """The pins of requirements.txt and of the benchmarks' extras (``make bench`` installs them)."""
    return pinned((REPO / "requirements.txt").read_text() + (REPO / "benchmarks" / "requirements.txt").read_text())


def locked(path: Path = REPO / "requirements.lock") -> dict[str, list[str]]:
    """Every entry of a pip-compile lock file with its hashes, as ``name==version`` -> sha256s."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if re.match(r"^[A-Za-z0-9_.-]+==", line):  # an entry; its hashes follow on indented lines
            current = line.split()[0]
            entries[current] = []
        elif not line.startswith(" "):
            current = None
        elif current and "--hash=sha256:" in line:
            entries[current].append(line.split("--hash=sha256:")[1].split()[0])
    return entries


def lock_problems(requirements: str, lock: Path) -> list[str]:
    """How a lock file fails to be its requirements resolved: a pin missing or at another version,
    an entry without a hash."""
    pins = pinned(lock.read_text())
    problems = [
        f"{name}=={want} is {'missing' if name not in pins else f'locked at {pins[name]}'}"
        for name, want in pinned(requirements).items()
        if pins.get(name) != want
    ]
    problems += [f"{entry} has no hash" for entry, hashes in locked(lock).items() if not hashes]
    return problems


def test_the_lock_is_requirements_txt_resolved_with_a_hash_for_every_package():
    problems = lock_problems((REPO / "requirements.txt").read_text(), REPO / "requirements.lock")
    assert not problems, "requirements.lock disagrees with requirements.txt (run make lock): " + "; ".join(problems)
    assert len(locked()) > 2 * len(declared()), "the lock should hold every package, not only the direct ones"


def test_the_lock_check_fails_on_a_bumped_pin_and_a_missing_hash(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==2.4.6 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via -r requirements.txt\nsix==1.17.0\n")
    assert lock_problems("numpy==2.4.6\n", lock) == ["six==1.17.0 has no hash"]
    assert lock_problems("numpy==2.5.0\nscipy==1.17.1\n", lock)[:2] == [
        "numpy==2.5.0 is locked at 2.4.6",
        "scipy==1.17.1 is missing",
    ]


def test_the_environment_the_tests_run_in_is_the_lock():
    """make installs from the lock: every locked package is installed at its locked version (more
    may be installed, e.g. the benchmarks' extras)."""
    wrong = []
    for name, want in pinned((REPO / "requirements.lock").read_text()).items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "not installed"
        if have != want:
            wrong.append(f"{name} {have} (locked {want})")
    assert not wrong, "the environment is not the lock's (rerun make): " + "; ".join(wrong)


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
