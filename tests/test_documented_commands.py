"""Every command README.md, docs/guide.md and the book's introduction show, run as written, under the smoke
profile's sizes: a reader copies them, so each must work exactly as printed.

Sizing: ``--profile X`` runs as ``--profile smoke`` (``--check`` runs as written: it trains
nothing); a config file the text names is written from the text's YAML block over the smoke
profile's section (the text's settings win); papermill gets the smoke settings before the
text's own ``-p`` values, which win. ``make`` targets are dry-run (``make -n``): CI runs
``make test`` itself and the smoke book is built by tests/test_runner.py, as is
``robinterp book``.
"""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
import yaml

from robinterp.paths import build_root
from robinterp.profiles import load_yaml, profile_path
from tests.conftest import REPO, run_cli

DOCUMENTS = ("README.md", "docs/guide.md", "book/intro.md")


def blocks(document: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (REPO / document).read_text(), re.S)


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for every command line of its bash blocks, comments stripped, once each."""
    found: dict[str, str] = {}
    for document in DOCUMENTS:
        for block in blocks(document, "bash"):
            for line in block.splitlines():
                command = line.split("  #")[0].split(" # ")[0].strip()
                if command:  # a command naming my.yml runs with each document's own my.yml
                    found.setdefault((command, document if "my.yml" in command else ""), document)
    return [(document, command) for (command, _), document in found.items()]


def smoke_section(chapter: str) -> dict:
    return dict(load_yaml(profile_path("smoke")).get(chapter) or {})


def test_the_documents_show_the_commands_this_test_knows_how_to_size():
    kinds = {shlex.split(command)[0].split("/")[-1] for _, command in documented_commands()}
    assert kinds == {"make", "robinterp", "papermill"}, kinds


@pytest.mark.slow
@pytest.mark.parametrize("document,command", documented_commands(), ids=lambda v: v[:60])
def test_a_documented_command_works_as_written(tmp_path, monkeypatch, shared_smoke_cache, document, command):
    argv = shlex.split(command)
    program = argv[0].split("/")[-1]
    if program == "make":
        result = subprocess.run(["make", "-n", *argv[1:]], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return
    monkeypatch.chdir(tmp_path)  # files a command writes (out.ipynb) land here, not in the checkout
    for name in (".venv", "book"):
        (tmp_path / name).symlink_to(REPO / name)
    if program == "papermill":
        chapter = re.search(r"book/chapters/(\w+)\.ipynb", command).group(1)
        sizes = ["-y", yaml.safe_dump(smoke_section(chapter))]
        result = subprocess.run(
            [*argv[:3], *sizes, *argv[3:], "--no-progress-bar"], capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert (tmp_path / argv[2]).exists()
        adhoc = [p.name for p in (build_root() / "results").iterdir()]
        assert len(adhoc) == 1 and adhoc[0].startswith("adhoc-"), adhoc
        return
    args = argv[1:]
    if "book" in args[:1] and "--check" not in args:
        pytest.skip("robinterp book: the smoke book is built by tests/test_runner.py")
    if "--profile" in args and "--check" not in args:
        args[args.index("--profile") + 1] = "smoke"
    chapter = args[1] if len(args) > 1 else None
    for i, arg in enumerate(args):
        if arg == "--config":
            settings = smoke_section(chapter)
            written = [yaml.safe_load(b) for b in blocks(document, "yaml")]
            if args[i + 1] == "my.yml":  # the file the text's YAML block shows
                (section,) = [w[chapter] for w in written if chapter in w]
                settings.update(section)
            else:  # the sweep's files: the text leaves them to the reader
                settings["seeds"] = [ord(args[i + 1][0]) - ord("a")]
            (tmp_path / args[i + 1]).write_text(yaml.safe_dump({chapter: settings}))
    result = run_cli(*args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]


def test_readme_is_a_guide_not_a_measurement_log():
    """Issue 33: README at most a third of the 16 kB it had grown to, and no measurement history
    (commit hashes, dated or repeated timings): those live in benchmarks/results/."""
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= 16_000 // 3, len(text.encode())
    assert not re.findall(r"\b[0-9a-f]{7,40}\b", text), "a commit hash: measurement history"
    assert not re.findall(r"\b20\d\d-\d\d-\d\d\b", text), "a date: measurement history"
