"""Run chapters headless with papermill and publish the book with jupyter-book: the commands.

A chapter (``robinterp.chapters``) is a notebook and a config dataclass; its config is resolved
and validated *before* a kernel starts, then passed as papermill parameters
(``robinterp.notebooks`` executes one); ``robinterp.site`` builds the HTML book. One command at a
time per build folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from robinterp import RobinterpError, cache, executors, site
from robinterp.chapters import book_configs, get_chapter, resolve_config
from robinterp.config import ConfigError
from robinterp.executors import Executor, Task
from robinterp.notebooks import ChapterFailed, execute
from robinterp.paths import build_root


def check(
    chapter: str,
    profile: str | None = None,
    config_file: Path | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """A dry run: the config validated and every training spec, attack and metric a run would
    use built, without data or training; returns a summary of them."""
    config, label = resolve_config(chapter, profile, config_file, settings)
    try:
        plan = get_chapter(chapter).plan(config)
    except RobinterpError as err:
        raise ConfigError(f"{chapter} under {label}: {err}") from None
    return f"{chapter} under {label}: ok; {plan.summary()}"


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One command at a time per build folder: a second ``robinterp book`` (or run, or sweep) on
    the same folder waits for the first instead of tearing down its staging under it."""
    build = build_root()
    try:
        build.mkdir(parents=True, exist_ok=True)
        (build / ".lock").touch()
    except OSError as err:
        raise RobinterpError(
            f"cannot write to the build folder {build} ({err.strerror}); "
            f"make it writable or set ROBINTERP_BUILD to another folder"
        ) from None
    with cache.file_lock(build / ".lock", f"another robinterp command is using {build}; waiting for it to finish"):
        yield


def run(
    chapter: str,
    profile: str | None = None,
    config_file: Path | None = None,
    echo: bool = False,
    threads: int | None = None,
    settings: Mapping[str, Any] | None = None,
    cell_timeout: float | None = None,
) -> Path:
    config, label = resolve_config(chapter, profile, config_file, settings)
    output = build_root() / "executed" / label / f"{chapter}.ipynb"
    with build_lock():
        return execute(chapter, config, label, output, echo, threads, cell_timeout)


def sweep(
    chapter: str,
    config_files: list[Path],
    echo: bool = False,
    executor: Executor = executors.IN_PROCESS,
    settings: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Execute one chapter under several config files, on ``executor``; all are validated before
    any runs, and a config that fails does not stop the others (the command fails at the end).
    ``settings`` (``--set``) apply to every config."""
    resolved = [resolve_config(chapter, config_file=f, settings=settings) for f in config_files]
    labels = [label for _, label in resolved]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"config files must have distinct names, got {', '.join(labels)}")
    tasks = [
        Task(chapter, config, label, build_root() / "sweeps" / chapter / f"{label}.ipynb") for config, label in resolved
    ]
    with build_lock():
        outcomes = executors.run(tasks, executor, execute, echo)
    failures = [outcome for outcome in outcomes if isinstance(outcome, RobinterpError)]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise ChapterFailed(f"{len(failures)} of {len(tasks)} runs failed: " + "; ".join(map(str, failures)))
    return outcomes


def book(
    profile: str = "default",
    echo: bool = False,
    executor: Executor = executors.IN_PROCESS,
    rerun: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Execute every chapter under ``profile`` on ``executor`` and build the HTML book into
    ``_build/html``.

    Configs are all validated first. A chapter whose executed copy is current (``is_current``:
    the same notebook, settings, code and inputs as when it last ran) is kept, unless ``rerun``
    names it (an empty list: every chapter). ``settings`` (``--set``) apply to every chapter that
    has them, and the whole book runs under the profile's label with their digest. A chapter that
    fails is published as a page saying so (never its stale output) and makes the command fail at
    the end.
    """
    configs = book_configs(profile, settings)
    for name in rerun or ():
        get_chapter(name)
    with build_lock():
        return site.publish(configs, echo, executor, rerun)
