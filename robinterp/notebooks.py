"""Executing one chapter's notebook headless with papermill, and whether an executed copy is current.

The executed copy is written next to its final place and renamed into it only on success, and
the chapter's tables are staged and published only then, so a failed run never leaves a
half-executed notebook or half its tables where the book would publish them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from robinterp import RobinterpError, stamps
from robinterp.chapters import get_chapter, labels_read, parameter_names, readers
from robinterp.config import Config, ConfigError
from robinterp.paths import COSTS_FILE, LABEL_ENV, RESULTS_ENV, build_root, no_link_below, project_root


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
        started = time.perf_counter()
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
    _add_run_seconds(staging / chapter / COSTS_FILE, time.perf_counter() - started)
    if (staging / chapter).is_dir():
        published.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / chapter, published)
    shutil.rmtree(staging, ignore_errors=True)
    os.replace(tmp, output)
    stamps.record(output, stamp)
    return output


def _add_run_seconds(costs: Path, seconds: float) -> None:
    """Add to a run's costs the whole time its kernel took, start-up included (the page measures
    only from its first cell on): what ``--check`` estimates."""
    if costs.is_symlink() or not costs.is_file():
        return
    record = json.loads(costs.read_text())
    record["run_seconds"] = round(seconds, 3)
    partial = costs.with_name(f".{costs.name}.{os.getpid()}")
    partial.write_text(json.dumps(record))
    os.replace(partial, costs)


def chapter_stamp(chapter: str, config: Config, label: str, upstream: dict[str, str] | None = None) -> str:
    """The stamp of running ``chapter`` under ``config`` (``robinterp.stamps``); a chapter that
    reads the others' results takes their stamps from ``upstream``, or else as executed."""
    spec = get_chapter(chapter)
    if spec.reads_others and upstream is None:
        upstream = stamps.upstream(build_root() / "executed", readers(), labels_read(label))
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
