"""Run chapters headless with papermill and publish the book with jupyter-book.

A chapter is a notebook under ``book/chapters/`` and a config dataclass. Its
config is resolved (dataclass defaults <- profile or config file) and validated
*before* a kernel starts, then passed as papermill parameters. The executed copy
is written next to its final place and renamed into it only on success, so a
failed run never leaves a half-executed notebook where the book would publish it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from robinterp import RobinterpError, cache, executors, stamps
from robinterp.config import Config, ConfigError, settings_label, shown
from robinterp.executors import Executor, Task
from robinterp.experiments import (
    neuron_sensitivity,
    robust_attribution,
    robust_models,
    saliency_guided_training,
    scaat,
    synthesis,
)
from robinterp.experiments.common import Plan
from robinterp.paths import LABEL_ENV, RESULTS_ENV, build_root, no_link_below, plain_name, project_root
from robinterp.profiles import load_yaml, profile_overrides, section


class ChapterFailed(RobinterpError):
    """A chapter whose notebook raised while executing."""

    exit_code = 1  # the command line's: 2 is for bad input


def _kernels(log: Any, env: dict[str, str]) -> type:
    """A kernel manager whose kernel process gets ``env`` (set per kernel, not in this process,
    so that runs in one process never see each other's) and writes its own stdout and stderr
    (its log lines, and its tracebacks when the run is interrupted mid-cell) to ``log``, not to
    the user's terminal; what the notebook prints still reaches the page and, with ``echo``, the
    terminal."""
    from jupyter_client.manager import AsyncKernelManager

    class ChapterKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            kw.setdefault("env", env)
            return await super().start_kernel(**kw)

    return ChapterKernelManager


def kernel_environment(label: str, staging: Path, threads: int | None) -> dict[str, str]:
    """The environment of a chapter's kernel: this process's, with the run's label and staging
    folder, without MPLBACKEND (Agg in the kernel would drop every figure), and with ``threads``
    for torch and its BLAS when given (a Dask worker's own setting is 1)."""
    env = {name: value for name, value in os.environ.items() if name != "MPLBACKEND"}
    env.update({LABEL_ENV: label, RESULTS_ENV: str(staging)})
    if threads is not None:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    return env


@dataclasses.dataclass(frozen=True)
class Chapter:
    name: str
    notebook: str
    """Path from the repository root, as listed in _toc.yml (with extension)."""
    config: type[Config]
    plan: Callable[[Any], Plan]
    """What a run under a config would build, without data or training (``--check``)."""
    reads_others: bool = False
    """Reads what the chapters before it saved in the same build: a book runs it after them."""


CHAPTERS: dict[str, Chapter] = {
    "robust_models": Chapter(
        "robust_models", "book/chapters/robust_models.ipynb", robust_models.RobustModelsConfig, robust_models.plan
    ),
    "saliency_guided_training": Chapter(
        "saliency_guided_training",
        "book/chapters/saliency_guided_training.ipynb",
        saliency_guided_training.SaliencyGuidedConfig,
        saliency_guided_training.plan,
    ),
    "neuron_sensitivity": Chapter(
        "neuron_sensitivity",
        "book/chapters/neuron_sensitivity.ipynb",
        neuron_sensitivity.NeuronSensitivityConfig,
        neuron_sensitivity.plan,
    ),
    "robust_attribution": Chapter(
        "robust_attribution",
        "book/chapters/robust_attribution.ipynb",
        robust_attribution.RobustAttributionConfig,
        robust_attribution.plan,
    ),
    "scaat": Chapter("scaat", "book/chapters/scaat.ipynb", scaat.SCAATConfig, scaat.plan),
    # last: its scoreboard reads the verdicts the chapters above saved in the same build
    "synthesis": Chapter(
        "synthesis", "book/chapters/synthesis.ipynb", synthesis.SynthesisConfig, synthesis.plan, reads_others=True
    ),
}


def get_chapter(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ConfigError(f"unknown chapter {name!r}; choose one of {', '.join(CHAPTERS)}")
    return CHAPTERS[name]


def resolve_config(
    chapter: str,
    profile: str | None = None,
    config_file: Path | None = None,
    settings: Mapping[str, Any] | None = None,
) -> tuple[Config, str]:
    """The chapter's validated config and a label for it (profile name or file stem); ``settings``
    (``--set``) replace the profile's or the file's values, and the label says so."""
    config, label = _resolve_config(chapter, profile, config_file)
    if not settings:
        return config, label
    values = {**config.to_parameters(), **settings}
    return get_chapter(chapter).config.from_mapping(values, source=f"--set on {label}"), settings_label(label, settings)


def _resolve_config(chapter: str, profile: str | None = None, config_file: Path | None = None) -> tuple[Config, str]:
    spec = get_chapter(chapter)
    if config_file is not None:
        path = Path(config_file)
        data = load_yaml(path)
        unknown = [k for k in data if k not in CHAPTERS]
        if unknown:
            raise ConfigError(
                f"{path}: unknown chapter section {shown(unknown[0])}; "
                f"sections are chapter names: {', '.join(CHAPTERS)}"
            )
        if chapter not in data:
            raise ConfigError(
                f"{path} has no section {chapter!r}, so nothing in it applies; add one "
                f"(`{chapter}: {{}}` runs the chapter's defaults)"
            )
        # a file's label never reads as a profile name: its outputs must not overwrite one
        label = plain_name(f"config-{path.stem}", f"the label of {path.name} (config-<file stem>)")
        return spec.config.from_mapping(section(data, chapter, path), source=str(path)), label
    profile = profile or "default"
    overrides = profile_overrides(profile, chapter)
    return spec.config.from_mapping(overrides, source=f"profile {profile}"), profile


def parameter_names(notebook: Path) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters``; error if it has none."""
    import ast

    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            return [
                t.id
                for node in ast.parse(source).body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    raise ConfigError(
        f"{notebook} has no cell tagged 'parameters'; tag the cell that sets the "
        f"defaults (View > Cell Toolbar > Tags in Jupyter) so papermill can inject"
    )


def execute(
    chapter: str,
    config: Config,
    label: str,
    output: Path,
    echo: bool = False,
    threads: int | None = None,
    cell_timeout: float | None = None,
) -> Path:
    """Execute one chapter under ``config`` into ``output``; raise ChapterFailed naming the cell.

    ``echo`` copies what the notebook prints (its progress lines) to this process's
    stdout and stderr as it runs; papermill's per-cell bookkeeping stays out. ``threads``:
    torch's threads in the kernel (None: as this process has them). ``cell_timeout``: seconds
    one cell may run before the chapter fails (None: no limit).
    """
    import papermill

    spec = get_chapter(chapter)
    source = project_root() / spec.notebook
    names = parameter_names(source)
    expected = [f.name for f in dataclasses.fields(config)] + ["profile"]
    missing = [n for n in expected if n not in names]
    if missing:
        raise ConfigError(f"{source}: the parameters cell does not set {', '.join(missing)}")
    output = Path(output)
    build = build_root()
    results = build / "results"
    logs = build / "logs"
    no_link_below(build, output, results / label / chapter, logs / f"{label}.{chapter}.kernel.log")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.stem}.{os.getpid()}.running.ipynb")
        tmp.touch()
    except OSError as err:
        raise RobinterpError(
            f"cannot write to the build folder {output.parent} ({err.strerror}); "
            f"make it writable or set ROBINTERP_BUILD to another folder"
        ) from None
    output.unlink(missing_ok=True)  # a stale copy must not survive a failed run
    stamps.forget(output)
    _remove_orphans(output.parent, f".{output.stem}", ".running.ipynb")
    # The chapter writes its tables into a staging folder, published under results/<label>/ only
    # when it succeeds: a killed or failed run leaves neither its tables nor an earlier run's.
    published = results / label / chapter
    shutil.rmtree(published, ignore_errors=True)
    _remove_orphans(results, f".{label}.{chapter}", ".running")
    staging = results / f".{label}.{chapter}.{os.getpid()}.running"
    shutil.rmtree(staging, ignore_errors=True)
    parameters: dict[str, Any] = {**config.to_parameters(), "profile": label}
    stamp = chapter_stamp(chapter, config, label)
    logs.mkdir(parents=True, exist_ok=True)
    kernel_log = open(logs / f"{label}.{chapter}.kernel.log", "w")
    try:
        print(f"executing {chapter} under {label} ...", flush=True)
        papermill.execute_notebook(
            str(source),
            str(tmp),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(source.parent),
            progress_bar=False,
            log_output=False,
            execution_timeout=cell_timeout,
            stdout_file=sys.stdout if echo else None,
            stderr_file=sys.stderr if echo else None,
            kernel_manager_class=_kernels(kernel_log, kernel_environment(label, staging, threads)),
        )
    except papermill.PapermillExecutionError as err:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise ChapterFailed(
            f"chapter {chapter} failed under config {label!r} in cell "
            f"{err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {str(err.evalue).splitlines()[0] if err.evalue else ''}"
        ) from None
    except (KeyboardInterrupt, SystemExit):
        tmp.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as err:  # a dead kernel, a timeout: the chapter failed all the same
        tmp.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise ChapterFailed(
            f"chapter {chapter} failed under config {label!r}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    finally:
        kernel_log.close()
    _fold_parameter_cells(tmp)
    if (staging / chapter).is_dir():
        published.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / chapter, published)
    shutil.rmtree(staging, ignore_errors=True)
    os.replace(tmp, output)
    stamps.record(output, stamp)
    return output


def _stage_results(build: Path, stage: Path, labels: set[str]) -> None:
    """The book's published tables (and their run.json) into its source, so that pages link them for
    download and the Results page documents them."""
    target = stage / "book" / "results"
    shutil.rmtree(target, ignore_errors=True)
    for label in labels:  # a book runs under one label
        source = build / "results" / label
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)


def readers() -> list[str]:
    return [name for name, spec in CHAPTERS.items() if spec.reads_others]


def chapter_stamp(chapter: str, config: Config, label: str, upstream: dict[str, str] | None = None) -> str:
    """The stamp of running ``chapter`` under ``config`` (``robinterp.stamps``); a chapter that
    reads the others' results takes their stamps from ``upstream``, or else as executed."""
    spec = get_chapter(chapter)
    if spec.reads_others and upstream is None:
        upstream = stamps.upstream(build_root() / "executed", readers())
    return stamps.chapter_stamp(
        project_root() / spec.notebook,
        {**config.to_parameters(), "profile": label},
        upstream if spec.reads_others else None,
    )


def is_current(chapter: str, label: str, output: Path, stamp: str) -> bool:
    """Whether ``output`` was executed under ``stamp`` and its tables are published."""
    return (
        output.is_file() and (build_root() / "results" / label / chapter).is_dir() and stamps.recorded(output) == stamp
    )


def _remove_orphans(folder: Path, prefix: str, suffix: str) -> None:
    """Delete what earlier runs that were killed (their process is gone) left in ``folder``:
    ``<prefix>.<pid><suffix>``, a notebook or a folder of staged results."""
    for orphan in folder.glob(f"{prefix}.*{suffix}"):
        pid = orphan.name[len(prefix) + 1 : -len(suffix)]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            if orphan.is_dir() and not orphan.is_symlink():
                shutil.rmtree(orphan, ignore_errors=True)
            else:
                orphan.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: exists? (PermissionError: yes, someone else's)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _fold_parameter_cells(notebook: Path) -> None:
    """Fold the parameter cells in the published page; the config table shows their values."""
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "hide-cell" not in tags:
            cell["metadata"]["tags"] = tags + ["hide-cell"]
    notebook.write_text(json.dumps(nb, indent=1))


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
    settings = dict(settings or {})
    fields = {name: {f.name for f in dataclasses.fields(spec.config)} for name, spec in CHAPTERS.items()}
    for key in settings:
        if not any(key in names for names in fields.values()):
            raise ConfigError(f"--set {key}: no chapter has this setting (robinterp run CHAPTER --help lists them)")
    for name in rerun or ():
        get_chapter(name)
    label = settings_label(profile, settings)
    configs = {
        name: (
            resolve_config(name, profile, settings={k: v for k, v in settings.items() if k in fields[name]})[0],
            label,
        )
        for name in CHAPTERS
    }
    with build_lock():
        return _book(configs, echo, executor, rerun)


def _book(
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
        upstream = stamps.upstream(build / "executed", readers(), will_have) if CHAPTERS[name].reads_others else None
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
