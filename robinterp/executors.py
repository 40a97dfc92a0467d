"""Where chapter runs execute: in this process, one after another (the default); on a local
Dask cluster (``--workers N``); or on an existing Dask distributed scheduler (``--scheduler
ADDRESS``), which is how a SLURM, PBS or Kubernetes cluster runs them (dask-jobqueue,
dask-kubernetes), with no change here.

A task is one papermill run of one chapter under one config. Tasks meet only through the
cache and the build folder, both of which are safe to share: a cache entry is computed under
its own file lock and written atomically, so two workers never train one model at the same time
(the second waits, then loads it), and a chapter's tables are published only when its run
succeeds. A task lost with its worker is run again by the scheduler (up to its
``distributed.scheduler.allowed-failures``); the lost run's kernel exits with its worker
(ipykernel watches its parent) and its half-written files are removed by the next run.

Dask's nanny sets OMP_NUM_THREADS and MKL_NUM_THREADS to 1 in its workers, and a kernel started
by a worker would inherit that; so every task sets its kernel's threads explicitly (by default
the worker machine's cores shared by the workers on it) and the page's provenance records them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from robinterp import RobinterpError
from robinterp.config import Config

# a worker that dies this many times running one task fails the run (Dask's default is 3)
ALLOWED_FAILURES = 3


@dataclasses.dataclass(frozen=True)
class Task:
    """One chapter run: the chapter, its validated config, the label it runs under, and where
    its executed notebook goes. ``after``: indices of tasks that must finish first, whatever
    their outcome (the synthesis chapter reads the verdicts the others saved)."""

    chapter: str
    config: Config
    label: str
    output: Path
    after: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Executor:
    """How to run tasks: ``workers`` (a local Dask cluster of that many single-task workers) or
    ``scheduler`` (the address of a running one), neither for this process; ``threads`` per
    task (None: this process's own in process; on Dask, the worker machine's cores over the
    workers on it)."""

    workers: int | None = None
    scheduler: str | None = None
    threads: int | None = None
    scheduler_file: str | None = None
    """The JSON file a running scheduler wrote (``dask scheduler --scheduler-file``): the usual HPC
    hand-off, in place of its address."""
    connect_timeout: float = 60.0
    """Seconds to reach a running scheduler and hear it answer."""
    min_workers: int = 1
    """On a running scheduler, the workers to wait for before submitting (SLURM jobs may still be
    queued): up to ``wait`` seconds."""
    wait: float = 600.0
    cell_timeout: float | None = None
    """Seconds one notebook cell may run before its chapter fails (None: no limit)."""

    def __post_init__(self) -> None:
        chosen = [self.workers is not None, self.scheduler is not None, self.scheduler_file is not None]
        if sum(chosen) > 1:
            raise RobinterpError(
                "give one of --workers (a local Dask cluster), --scheduler or --scheduler-file (a running one)"
            )
        if self.workers is not None and not 1 <= self.workers <= 256:
            raise RobinterpError(f"--workers must be between 1 and 256, got {self.workers}")
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise RobinterpError(f"--threads must be between 1 and 1024, got {self.threads}")

        if not 1 <= self.min_workers <= 4096:
            raise RobinterpError(f"--min-workers must be between 1 and 4096, got {self.min_workers}")
        if self.cell_timeout is not None and not 0 < self.cell_timeout <= 7 * 24 * 3600:
            raise RobinterpError(f"--cell-timeout must be between 0 and a week in seconds, got {self.cell_timeout:g}")
        if not 0 < self.wait <= 7 * 24 * 3600:
            raise RobinterpError(f"--wait must be between 0 and a week in seconds, got {self.wait:g}")

    @property
    def remote(self) -> bool:
        return self.scheduler is not None or self.scheduler_file is not None

    @property
    def distributed(self) -> bool:
        return self.workers is not None or self.remote


IN_PROCESS = Executor()


Execute = Callable[..., Path]
"""How one task runs: ``execute(chapter, config, label, output, echo=..., threads=..., cell_timeout=...)`` returns
the executed notebook's path (``robinterp.runner.execute``, passed in: the runner drives the
executors, not the other way round). On Dask it is sent to the workers by reference, so it must be
a module-level function."""


def run(tasks: Sequence[Task], executor: Executor, execute: Execute, echo: bool = False) -> list[Path | RobinterpError]:
    """Run ``tasks`` through ``execute``; per task, its executed notebook's path or the error that
    stopped it (one failed chapter does not stop the others). ``echo``: the notebooks' progress
    lines on this terminal (in process; on Dask a line per finished task)."""
    if not executor.distributed:
        outcomes: list[Path | RobinterpError] = []
        for task in tasks:  # in order, so every task's ``after`` is done before it starts
            try:
                outcomes.append(
                    execute(
                        task.chapter,
                        task.config,
                        task.label,
                        task.output,
                        echo=echo,
                        threads=executor.threads,
                        cell_timeout=executor.cell_timeout,
                    )
                )
            except RobinterpError as err:
                outcomes.append(err)
        return outcomes
    return _run_on_dask(tasks, executor, execute)


def _run_on_dask(tasks: Sequence[Task], executor: Executor, execute: Execute) -> list[Path | RobinterpError]:
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise RobinterpError(
            "--workers and --scheduler need Dask: pip install 'dask[distributed]' (it is in requirements.txt)"
        ) from None
    roots = {name: str(root().resolve()) for name, root in _roots().items()}
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        if executor.remote:
            where = executor.scheduler or f"the scheduler file {executor.scheduler_file}"
            try:
                client = _within(
                    lambda: Client(executor.scheduler, scheduler_file=executor.scheduler_file),
                    executor.connect_timeout,
                )
            except (OSError, TimeoutError, ValueError) as err:
                raise RobinterpError(f"cannot reach the Dask scheduler at {where}: {err}") from None
            except (MemoryError, EOFError, TypeError, KeyError) as err:
                # a service that is not a Dask scheduler answers with bytes Dask reads as a huge frame
                raise RobinterpError(f"{where} does not answer as a Dask scheduler ({type(err).__name__})") from None
            cluster = None
            try:
                client.wait_for_workers(executor.min_workers, timeout=executor.wait)
            except TimeoutError:
                joined = len(client.scheduler_info(n_workers=-1)["workers"])
                client.close()
                raise RobinterpError(
                    f"{joined} of the {executor.min_workers} Dask worker(s) asked for joined {where} in "
                    f"{executor.wait:g} s; start more, or wait longer (--wait)"
                ) from None
        else:
            # one task per worker process: a chapter run is a kernel of its own, and a second
            # thread in the worker would only share its environment
            cluster = LocalCluster(
                n_workers=executor.workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        # its reconnection attempts end in a logged traceback; what happened is the one line below
        client_log = logging.getLogger("distributed.client")
        level, client_log.level = client_log.level, logging.CRITICAL
        try:
            futures: list[Any] = []
            workers = client.scheduler_info(n_workers=-1)["workers"].values()  # all, not the first few
            if not workers:
                raise RobinterpError("the Dask scheduler has no workers left")
            if any(info["nthreads"] != 1 for info in workers):
                raise RobinterpError(
                    "every Dask worker must run one task at a time: start them with --nthreads 1 "
                    f"({sum(info['nthreads'] != 1 for info in workers)} of {len(workers)} have more threads)"
                )
            per_host: dict[str, int] = {}
            for info in workers:
                per_host[info["host"]] = per_host.get(info["host"], 0) + 1
            scheduler = f"the Dask scheduler at {where}" if executor.remote else "the local Dask cluster's scheduler"
            watch = _Watch(client, scheduler, len(tasks), executor.connect_timeout)
            # unique per run: two users' sweeps on one shared scheduler must never share a key (the
            # second would be handed the first's result)
            run_id = uuid.uuid4().hex[:12]
            for task in tasks:
                if task.after:
                    watch.until_done([futures[i] for i in task.after])
                futures.append(
                    client.submit(
                        _execute_on_worker,
                        execute,
                        task,
                        roots,
                        executor.threads,
                        per_host,
                        executor.cell_timeout,
                        key=f"robinterp-{run_id}-{task.chapter}-{task.label}-{len(futures)}",
                        pure=False,
                        # a remote scheduler keeps its own allowed-failures; retries are the client's
                        retries=ALLOWED_FAILURES - 1 if executor.remote else 0,
                    )
                )
                watch.names[futures[-1].key] = f"{task.chapter} under {task.label}"
            watch.until_done(futures)
            return [watch.outcomes[future.key] for future in futures]
        finally:
            client.close()
            client_log.setLevel(level)
            if cluster is not None:
                cluster.close()


def _within(make: Callable[[], Any], seconds: float) -> Any:
    """``make()`` (a Dask client, or a question to its scheduler) within ``seconds``: a server that
    accepts the connection and then says nothing holds Dask's handshake forever, whatever its
    connect timeout. The waiting thread is a daemon, so a process that gives up here still exits."""
    made: dict[str, Any] = {}

    def attempt() -> None:
        try:
            made["client"] = make()
        except BaseException as err:  # handed to the caller's thread
            made["error"] = err

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in made:
        raise made["error"]
    return made["client"]


def _roots() -> dict[str, Callable[[], Path]]:
    from robinterp import paths

    return {"ROBINTERP_CACHE": paths.cache_root, "ROBINTERP_BUILD": paths.build_root, "ROBINTERP_DATA": paths.data_root}


HEARTBEAT = 60.0
"""Seconds without a finished task after which the scheduler is asked whether it still answers: a
scheduler that stopped (SIGSTOP, a hung node) keeps its connections open and would hold the sweep
forever."""


class _Watch:
    """Waits for submitted tasks and records each one's outcome the moment it is known, so that a
    scheduler lost later costs only the runs still pending (finished ones are published already);
    prints a line per finished task. Ends with one line when the scheduler vanishes or stops
    answering."""

    def __init__(self, client: Any, scheduler: str, total: int, answer_within: float) -> None:
        self.client, self.scheduler, self.total, self.answer_within = client, scheduler, total, answer_within
        self.names: dict[str, str] = {}
        self.outcomes: dict[str, Path | RobinterpError] = {}

    def until_done(self, futures: Sequence[Any]) -> None:
        from distributed import wait
        from distributed.client import FuturesCancelledError

        pending = [future for future in futures if future.key not in self.outcomes]
        while pending:
            try:
                done, _ = wait(pending, timeout=HEARTBEAT, return_when="FIRST_COMPLETED")
            except TimeoutError:
                self._still_answering()
                continue
            except FuturesCancelledError:  # the client lost its scheduler and cancelled what it waited for
                raise self._lost("went away") from None
            for future in done:
                self._record(future)
            pending = [future for future in pending if future.key not in self.outcomes]

    def _still_answering(self) -> None:
        try:
            _within(lambda: self.client.scheduler_info(n_workers=-1), self.answer_within)
        except Exception as err:
            raise self._lost(f"stopped answering ({err})" if isinstance(err, TimeoutError) else "went away") from None

    def _record(self, future: Any) -> None:
        if future.status == "cancelled" and self.client.status != "running":
            raise self._lost("went away")
        self.outcomes[future.key] = _outcome(future)
        took = f" in {future.result()[1] / 60:.1f} min" if future.status == "finished" else ""
        print(f"[{len(self.outcomes)}/{self.total}] {self.names[future.key]}: {future.status}{took}", flush=True)

    def _lost(self, what: str) -> RobinterpError:
        finished = [self.names[key] for key, outcome in self.outcomes.items() if isinstance(outcome, Path)]
        named = f" ({'; '.join(finished)})" if 0 < len(finished) <= 2 else ""
        return RobinterpError(
            f"{self.scheduler} {what} with {self.total - len(self.outcomes)} of {self.total} runs unfinished; "
            f"{len(finished)} finished and are published{named}: the same command runs only the rest"
        )


def _outcome(future: Any) -> Path | RobinterpError:
    try:
        return Path(future.result()[0])
    except RobinterpError as err:
        return err
    except Exception as err:  # the worker died ALLOWED_FAILURES times running it
        first = str(err).splitlines()[0] if str(err) else ""
        return RobinterpError(f"the task {future.key} was lost: {type(err).__name__}: {first}")


def _execute_on_worker(
    execute: Execute,
    task: Task,
    roots: dict[str, str],
    threads: int | None,
    per_host: dict[str, int],
    cell_timeout: float | None = None,
) -> tuple[str, float]:
    """One task on a Dask worker, which runs one at a time (so setting its environment is safe):
    the client's cache, build and data folders (a cluster shares them), and the kernel's threads.
    Returns the executed notebook's path and the seconds the task took on the worker."""
    from distributed import get_worker

    worker = get_worker()
    if worker.state.nthreads != 1:  # checked here too: a worker may join after the sweep started
        raise RobinterpError(
            f"the Dask worker {worker.address} runs {worker.state.nthreads} tasks at a time; start workers "
            "with --nthreads 1 (every chapter run is a kernel of its own)"
        )
    os.environ.update(roots)
    if threads is None:
        host = worker.address.split("://")[-1].rsplit(":", 1)[0]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // per_host.get(host, 1))
    start = time.perf_counter()
    output = execute(
        task.chapter, task.config, task.label, task.output, echo=False, threads=threads, cell_timeout=cell_timeout
    )
    return str(output), time.perf_counter() - start
