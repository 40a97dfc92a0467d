"""Building the HTML book: every chapter executed (or kept when current), staged with its tables
and MathJax, and built by jupyter-book; the published book is replaced only by a finished build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from robinterp import RobinterpError, executors, stamps
from robinterp.chapters import CHAPTERS, labels_read, readers
from robinterp.config import Config
from robinterp.executors import Executor, Task
from robinterp.notebooks import ChapterFailed, chapter_stamp, execute, is_current
from robinterp.paths import build_root, no_link_below, project_root

MATHJAX = "mathjax@3.2.2"


def _vendor_mathjax(stage: Path) -> bool:
    """Serve MathJax from the book itself: jupyter-book loads it from a CDN, so an
    offline reader would see raw TeX. Fetched once from the npm registry into the
    cache; returns False (the CDN stays) when that is not possible."""
    from robinterp.paths import cache_root

    vendor = cache_root() / "vendor" / MATHJAX.replace("@", "-")
    if not (vendor / "tex-chtml.js").exists():
        try:
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(
                    ["npm", "pack", MATHJAX, "--silent"], cwd=tmp, check=True, timeout=120, capture_output=True
                )
                with tarfile.open(next(Path(tmp).glob("mathjax-*.tgz"))) as tgz:
                    members = [
                        m
                        for m in tgz.getmembers()
                        if m.isfile()
                        and (
                            m.name == "package/es5/tex-chtml.js"
                            or m.name.startswith("package/es5/output/chtml/fonts/woff-v2/")
                        )
                    ]
                    for m in members:
                        m.name = m.name.removeprefix("package/es5/")
                    tgz.extractall(Path(tmp) / "mathjax", members=members, filter="data")
                vendor.parent.mkdir(parents=True, exist_ok=True)
                partial = vendor.with_name(f".{vendor.name}.{os.getpid()}")
                shutil.copytree(Path(tmp) / "mathjax", partial)
                os.replace(partial, vendor)  # complete or absent, never half there
        except (OSError, subprocess.SubprocessError, StopIteration, tarfile.TarError) as err:
            print(f"MathJax stays on its CDN (could not fetch {MATHJAX}: {err})", flush=True)
            return False
    # not under _static: jupyter-book adds every script it finds there to every page, so MathJax
    # was loaded three times (a console error on every page)
    shutil.copytree(vendor, stage / "_vendor" / "mathjax", dirs_exist_ok=True)
    return True


def _stage_config(root: Path, stage: Path, local_mathjax: bool) -> None:
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    if local_mathjax:
        sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
        sphinx["mathjax_path"] = "mathjax/tex-chtml.js"  # html_static_path is copied into _static/
        sphinx["html_static_path"] = ["_vendor"]
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def failure_page(chapter: str, error: str) -> str:
    return (
        f"# {chapter}: not executed\n\n```{{error}}\nThis chapter failed and its earlier "
        f"output is not published.\n\n{error}\n```\n"
    )


def _stage_results(build: Path, stage: Path, labels: set[str]) -> None:
    """The book's published tables (and their run.json) into its source, so that pages link them for
    download and the Results page documents them."""
    target = stage / "book" / "results"
    shutil.rmtree(target, ignore_errors=True)
    for label in labels:  # a book runs under one label
        source = build / "results" / label
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)


def publish(
    configs: dict[str, tuple[Config, str]], echo: bool, executor: Executor, rerun: Sequence[str] | None = None
) -> Path:
    root, build = project_root(), build_root()
    no_link_below(build, build / "source" / "book", build / "html" / "index.html", build / "jupyter-book.log")
    # the published book is replaced only by a finished build (below): a build that cannot start
    # (an unreachable scheduler, say) or fails before jupyter-book leaves the last one standing
    stage = build / "source"
    shutil.rmtree(stage, ignore_errors=True)
    # the book's pages and data, but not the notebook sources: their executed copies go in
    shutil.copytree(root / "book", stage / "book", ignore=shutil.ignore_patterns("*.ipynb"))
    shutil.copy2(root / "_toc.yml", stage / "_toc.yml")
    _stage_config(root, stage, _vendor_mathjax(stage))
    # the stamps every chapter will have once this build is done: the readers' from the others'
    will_have: dict[str, str] = {}
    for name, (config, label) in sorted(configs.items(), key=lambda item: CHAPTERS[item[0]].reads_others):
        upstream = (
            stamps.upstream(build / "executed", readers(), labels_read(label), will_have)
            if CHAPTERS[name].reads_others
            else None
        )
        will_have[f"{label}/{name}"] = chapter_stamp(name, config, label, upstream)
    tasks: list[Task] = []
    outcomes: dict[str, Path | RobinterpError] = {}
    for name, (config, label) in configs.items():
        output = build / "executed" / label / f"{name}.ipynb"
        forced = rerun is not None and (not rerun or name in rerun)
        if not forced and is_current(name, label, output, will_have[f"{label}/{name}"]):
            print(f"{name} under {label}: unchanged since it last ran (notebook, settings, code, inputs): kept")
            outcomes[name] = output
            continue
        after = tuple(range(len(tasks))) if CHAPTERS[name].reads_others else ()
        tasks.append(Task(name, config, label, output, after))
    outcomes.update(
        {task.chapter: outcome for task, outcome in zip(tasks, executors.run(tasks, executor, execute, echo))}
    )
    failures = []
    for name in configs:
        outcome = outcomes[name]
        staged = stage / "book" / "chapters" / f"{name}.ipynb"  # where _toc.yml lists it
        staged.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(outcome, ChapterFailed):
            failures.append(str(outcome))
            staged.with_suffix(".md").write_text(failure_page(name, str(outcome)))
        elif isinstance(outcome, RobinterpError):  # not the chapter's fault (a folder, a lost worker): stop
            raise outcome
        else:
            shutil.copy2(outcome, staged)
    _stage_results(build, stage, {label for _, label in configs.values()})
    print("building the HTML book ...", flush=True)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            str(stage),
            "--path-output",
            str(stage),
            "--warningiserror",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
    )
    built = stage / "_build" / "html"
    if result.returncode != 0 or not (built / "index.html").exists():
        log = build / "jupyter-book.log"
        log.write_text(result.stdout + result.stderr)
        warnings = [line for line in (result.stdout + result.stderr).splitlines() if "WARNING" in line]
        first = warnings[0] if warnings else (result.stdout + result.stderr).strip().splitlines()[-1]
        raise RobinterpError(
            f"jupyter-book build failed ({len(warnings)} warnings, first: {first.strip()}); full log in {log}"
        )
    html = build / "html"
    shutil.rmtree(html, ignore_errors=True)
    os.replace(built, html)
    if failures:
        raise ChapterFailed(f"{len(failures)} chapter(s) failed (their pages say so): " + "; ".join(failures))
    return html / "index.html"
