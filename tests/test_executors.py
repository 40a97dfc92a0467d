"""Chapter runs on Dask: a running scheduler and a local cluster give the tables of the
in-process executor; a worker killed mid-run loses and duplicates nothing; bad input fails
as it does in process, before any cluster starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, run_cli
from tests.test_faults import SWEEP_CONFIG

# Columns that measure the run, not its result: wall time (and whether a model came from the
# cache, which depends on which of two parallel runs reached a shared model first).
RUN_COLUMNS = ("train_minutes", "from_cache")


def configs(folder: Path) -> list[str]:
    arguments = []
    for name, eps in (("first", 0.1), ("second", 0.2)):
        path = folder / f"{name}.yml"
        path.write_text(SWEEP_CONFIG.format(eps=eps))
        arguments += ["--config", str(path)]
    return arguments


def command(folder: Path, *extra: str) -> tuple[list[str], dict[str, str]]:
    """The sweep of both configs through the CLI, with its own cache and build folders."""
    env = {**os.environ, "ROBINTERP_CACHE": str(folder / "cache"), "ROBINTERP_BUILD": str(folder / "build")}
    return [sys.executable, "-m", "robinterp", "sweep", "robust_models", *configs(folder), *extra], env


def tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Every result table of both configs, without the columns that measure the run."""
    found = {}
    for path in sorted((folder / "build" / "results").glob("config-*/robust_models/*.csv")):
        table = pd.read_csv(path)
        found[str(path.relative_to(folder / "build" / "results"))] = table.drop(
            columns=[c for c in RUN_COLUMNS if c in table]
        )
    return found


def assert_same_tables(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    assert sorted(got) == sorted(want) and len(want) >= 6
    for name, table in want.items():
        # exact: the same seeds and the same threads per kernel give the same floats
        pd.testing.assert_frame_equal(got[name], table, check_exact=True, obj=name)


def assert_nothing_left_over(folder: Path) -> None:
    build = folder / "build"
    assert sorted(p.name for p in (build / "sweeps" / "robust_models").iterdir()) == [
        "config-first.ipynb",
        "config-first.stamp",
        "config-second.ipynb",
        "config-second.stamp",
    ], "a temporary notebook was left, or a result is missing"
    assert sorted(p.name for p in (build / "results").iterdir()) == ["config-first", "config-second"], (
        "a staging folder was left"
    )
    models = [p for p in (folder / "cache" / "models").iterdir() if not p.name.endswith(".lock")]
    # standard training is the same spec in both configs: one entry; PGD-AT differs by eps: two
    assert len(models) == 3 and all((p / "meta.json").exists() for p in models), sorted(p.name for p in models)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("in_process")
    args, env = command(folder, "--threads", "1")
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return tables(folder)


@pytest.mark.slow
@pytest.mark.xdist_group("in_process_reference")  # one worker computes the reference once
def test_a_running_scheduler_gives_the_tables_of_the_in_process_run(in_process, tmp_path):
    from distributed import LocalCluster

    # the workers' own environment names other folders: the client's must be the ones used
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        args, env = command(tmp_path, "--scheduler", cluster.scheduler_address, "--threads", "1")
        result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[2/2] robust_models under config-" in result.stdout
    assert_same_tables(tables(tmp_path), in_process)
    assert_nothing_left_over(tmp_path)


def kernels_of(pid: int) -> list:
    import psutil

    found = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if any("ipykernel" in part for part in process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.slow
@pytest.mark.xdist_group("in_process_reference")  # one worker computes the reference once
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(in_process, tmp_path):
    args, env = command(tmp_path, "--workers", "2", "--threads", "1")
    child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while len(kernels_of(child.pid)) < 2:
            assert child.poll() is None and time.monotonic() < deadline, "the two runs never started"
            time.sleep(0.2)
        time.sleep(3)  # into the kernels' imports or training
        kernel = kernels_of(child.pid)[0]
        worker = kernel.parent()
        os.kill(worker.pid, signal.SIGKILL)  # the worker, not the kernel: its parent poller ends it
        out, err = child.communicate(timeout=600)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err[-2000:]
    assert not kernel.is_running() or kernel.status() == "zombie", "the dead worker's kernel lived on"
    assert_same_tables(tables(tmp_path), in_process)
    assert_nothing_left_over(tmp_path)


@pytest.mark.parametrize(
    "extra,message",
    [
        ((), "unknown"),
        (("--workers", "2"), "unknown"),
        (("--workers", "0"), "--workers must be between 1 and 256, got 0"),
        (("--workers", "2", "--threads", "0"), "--threads must be between 1 and 1024, got 0"),
    ],
)
def test_bad_input_fails_as_in_process_before_any_cluster_starts(tmp_path, extra, message):
    bad = tmp_path / "bad.yml"
    bad.write_text("robust_models:\n  sedes: [0]\n")
    args = ("sweep", "robust_models", "--config", str(bad))
    result = run_cli(*args, *extra)  # the cache and build folders are tmp_path's (conftest)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    if message == "unknown":  # the same line as in process
        assert result.stderr == run_cli(*args).stderr
    assert not (tmp_path / "build" / "sweeps").exists() and not (tmp_path / "cache").exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    good = tmp_path / "good.yml"
    good.write_text("robust_models: {}\n")
    args = [sys.executable, "-m", "robinterp", "sweep", "robust_models", "--config", str(good)]
    args += ["--scheduler", "tcp://127.0.0.1:9", "--threads", "1"]  # port 9 (discard): nothing listens
    env = {**os.environ, "ROBINTERP_CACHE": str(tmp_path / "cache"), "ROBINTERP_BUILD": str(tmp_path / "build")}
    env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = (
        "2s"  # Dask's setting: the message is tested, not 30 s of retries
    )
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr


def test_a_book_that_cannot_reach_its_scheduler_leaves_the_published_book_standing(tmp_path):
    """It deleted the built HTML before it failed, even with every chapter current."""
    published = tmp_path / "build" / "html" / "index.html"
    published.parent.mkdir(parents=True)
    published.write_text("the last book")
    args = [sys.executable, "-m", "robinterp", "book", "--profile", "smoke", "--scheduler", "tcp://127.0.0.1:9"]
    env = {**os.environ, "ROBINTERP_CACHE": str(tmp_path / "cache"), "ROBINTERP_BUILD": str(tmp_path / "build")}
    env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "2s"
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "cannot reach the Dask scheduler" in result.stderr, result.stderr
    assert published.read_text() == "the last book"


@pytest.mark.slow
def test_a_task_after_others_starts_when_they_are_done(tmp_path):
    """How a book runs its synthesis chapter on Dask: after the chapters whose verdicts it reads."""
    import json

    from robinterp import chapters, executors, notebooks

    arguments = configs(tmp_path)
    resolved = [chapters.resolve_config("robust_models", config_file=Path(f)) for f in arguments[1::2]]
    tasks = [
        executors.Task("robust_models", config, label, tmp_path / "build" / f"{label}.ipynb", after=after)
        for (config, label), after in zip(resolved, [(), (0,)])
    ]
    outcomes = executors.run(tasks, executors.Executor(workers=2, threads=1), notebooks.execute)
    assert all(isinstance(o, Path) for o in outcomes), outcomes
    first, second = (json.loads(o.read_text())["metadata"]["papermill"] for o in outcomes)
    assert second["start_time"] >= first["end_time"]


def record_task(chapter, config, label, output, echo=False, threads=None, cell_timeout=None):
    """A stand-in for ``notebooks.execute`` (the executor's own behaviour is under test): it writes
    its output file and returns its path."""
    Path(output).write_text(f"{chapter} {label} threads {threads}")
    return Path(output)


def test_a_sweep_waits_for_workers_that_join_after_it_was_submitted(tmp_path):
    """With SLURM jobs still queued the scheduler has no workers: the sweep waits for them (up to
    --wait), found through the scheduler's file, then runs; too few in time is one line."""
    import json
    import threading

    from distributed import LocalCluster

    from robinterp import RobinterpError, executors
    from robinterp.configs.robust_models import RobustModelsConfig

    with LocalCluster(n_workers=0, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        scheduler_file = tmp_path / "scheduler.json"
        scheduler_file.write_text(json.dumps({"address": cluster.scheduler_address}))
        tasks = [
            executors.Task("robust_models", RobustModelsConfig(), f"run{i}", tmp_path / f"out{i}.txt") for i in range(2)
        ]
        too_soon = executors.Executor(scheduler=cluster.scheduler_address, threads=1, wait=1.0)
        with pytest.raises(RobinterpError, match="0 of the 1 Dask worker"):
            executors.run(tasks, too_soon, record_task)
        threading.Timer(2.0, lambda: cluster.scale(1)).start()  # a worker arrives after the submission
        started = time.monotonic()
        outcomes = executors.run(
            tasks, executors.Executor(scheduler_file=str(scheduler_file), threads=1, wait=60.0), record_task
        )
        assert time.monotonic() - started >= 1.5
        assert [o.read_text() for o in outcomes] == ["robust_models run0 threads 1", "robust_models run1 threads 1"]


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"])
def test_a_service_that_is_not_a_dask_scheduler_is_one_line(tmp_path, answer):
    """A web server at the scheduler address ended in 'unexpected MemoryError: Unable to allocate
    3.07 EiB'; a server that accepts and says nothing held the sweep forever."""
    import socket
    import threading

    from robinterp import RobinterpError, executors
    from robinterp.configs.robust_models import RobustModelsConfig

    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            if answer:
                connection.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    task = executors.Task("robust_models", RobustModelsConfig(), "x", tmp_path / "out.txt")
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        started = time.monotonic()
        with pytest.raises(RobinterpError, match="Dask scheduler") as err:
            executors.run([task], executors.Executor(scheduler=address, threads=1, connect_timeout=5.0), record_task)
        assert time.monotonic() - started < 30
        assert len(str(err.value)) < 300 and "\n" not in str(err.value)
    finally:
        server.close()
        for connection in held:
            connection.close()


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_scheduler_lost_mid_sweep_is_one_line_and_keeps_the_finished_runs(tmp_path, monkeypatch, how):
    """A scheduler killed in the middle of a sweep (its connections close) or stopped (SIGSTOP, a
    hung node: its connections stay open and it says nothing) held the sweep forever. Now the
    sweep ends in one line within seconds of the loss, and the run that had finished is kept."""
    from robinterp import RobinterpError, executors
    from robinterp.configs.robust_models import RobustModelsConfig

    monkeypatch.setattr(executors, "HEARTBEAT", 1.0)
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m"]
    scheduler = subprocess.Popen(
        # port 0: the two cases of this test may run at once on two pytest workers, and the default
        # port would let only one scheduler start
        [
            *dask,
            "distributed.cli.dask_scheduler",
            "--scheduler-file",
            str(scheduler_file),
            "--port",
            "0",
            "--no-dashboard",
        ],
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        for _ in range(1200):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            assert scheduler.poll() is None, "the test's Dask scheduler did not start"
            time.sleep(0.1)
        else:
            raise AssertionError("the test's Dask scheduler wrote no scheduler file in 120 s")
        worker = subprocess.Popen(
            [
                *dask,
                "distributed.cli.dask_worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stderr=subprocess.DEVNULL,
        )
        from distributed import Client

        # the worker joined before the sweep: its start is not what is tested here
        with Client(scheduler_file=str(scheduler_file), timeout="120s") as probe:
            probe.wait_for_workers(1, timeout=120)

        def first_quick_then_slow(chapter, config, label, output, echo=False, threads=None, cell_timeout=None):
            if label != "quick":
                time.sleep(600)
            Path(output).write_text(label)
            return Path(output)

        tasks = [
            executors.Task("robust_models", RobustModelsConfig(), label, tmp_path / f"{label}.txt")
            for label in ("quick", "slow")
        ]
        # 15 s to connect and to answer: on a loaded CI machine the first answer took over 3 s
        executor = executors.Executor(scheduler_file=str(scheduler_file), threads=1, connect_timeout=15.0, wait=60.0)

        def lose_the_scheduler() -> None:
            while not (tmp_path / "quick.txt").exists():
                time.sleep(0.1)
            time.sleep(0.5)
            scheduler.send_signal(signal.SIGKILL if how == "killed" else signal.SIGSTOP)

        import threading

        threading.Thread(target=lose_the_scheduler, daemon=True).start()
        with pytest.raises(RobinterpError) as err:
            executors.run(tasks, executor, first_quick_then_slow)
        message = str(err.value)
        assert "\n" not in message and len(message) < 300
        assert ("went away" if how == "killed" else "stopped answering") in message, message
        assert (
            "1 of 2 runs unfinished" in message
            and "1 finished and are published (robust_models under quick)" in message
        )
        assert (tmp_path / "quick.txt").read_text() == "quick"
    finally:
        scheduler.send_signal(signal.SIGCONT)
        scheduler.kill()
        if worker is not None:
            worker.kill()


def test_a_worker_that_runs_several_tasks_at_once_is_refused_when_it_takes_a_task(tmp_path):
    """Workers are checked as they take a task, not only those present when the sweep started: one
    that joins later with --nthreads 2 would run two kernels sharing one environment."""
    from distributed import Client, LocalCluster

    from robinterp import RobinterpError, executors
    from robinterp.configs.robust_models import RobustModelsConfig

    task = executors.Task("robust_models", RobustModelsConfig(), "x", tmp_path / "out.txt")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            future = client.submit(executors._execute_on_worker, record_task, task, {}, 1, {})
            with pytest.raises(RobinterpError, match="runs 2 tasks at a time; start workers with --nthreads 1"):
                future.result()
    assert not (tmp_path / "out.txt").exists()


def slow_record_task(chapter, config, label, output, echo=False, threads=None, cell_timeout=None):
    """``record_task`` that takes a second, so that two sweeps' tasks overlap on the scheduler."""
    time.sleep(1.0)
    return record_task(chapter, config, label, output, echo, threads, cell_timeout)


def test_two_sweeps_on_one_shared_scheduler_never_share_a_task(tmp_path):
    """Task keys were chapter-label-index: a second user's sweep of the same chapter under the same
    label, submitted while the first's ran, was handed the first's result. Keys are unique per sweep."""
    import threading

    from distributed import LocalCluster

    from robinterp import executors
    from robinterp.configs.robust_models import RobustModelsConfig

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        outcomes: dict[int, list] = {}

        def sweep(user: int) -> None:
            task = executors.Task("robust_models", RobustModelsConfig(), "default", tmp_path / f"user{user}.txt")
            executor = executors.Executor(scheduler=cluster.scheduler_address, threads=1)
            outcomes[user] = executors.run([task], executor, slow_record_task)

        users = [threading.Thread(target=sweep, args=(user,)) for user in (1, 2)]
        for thread in users:
            thread.start()
        for thread in users:
            thread.join(120)
    assert outcomes == {user: [tmp_path / f"user{user}.txt"] for user in (1, 2)}
    assert all((tmp_path / f"user{user}.txt").exists() for user in (1, 2))
